"""Time as a dependency.

The drone's own timers (15 s auto-land, state stream stop) and the link's timers (5 s keepalive,
command timeouts, staleness) must run on the *same* clock, or a simulator running faster than
real time loses the drone between keepalives. Everything that waits takes a `Clock`:

* `MonotonicClock`: production, real time.
* `LoopClock`: the event loop's own time. Under trio's `MockClock(autojump_threshold=0)` that is
  *virtual* time, which advances only when every task is waiting: a 60-second flight takes a
  few milliseconds, and a stalled machine cannot make time pass. Logic tests use it.
* `ScaledClock`: wall time sped up, for the few tests that cross a process or a real socket
  boundary (HTTP through uvicorn, the `drone-sim` CLI) and for demos; a stall of the process
  *is* time passing there, so those tests keep wide margins.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import anyio


@runtime_checkable
class Clock(Protocol):
    """Seconds on this clock, and how to wait on them with anyio."""

    def now(self) -> float:
        """Current time on this clock, in (possibly simulated) seconds."""
        ...

    def to_real(self, seconds: float) -> float:
        """A duration on this clock converted to real seconds (for anyio deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_until(self, deadline: float) -> None: ...

    def fail_after(self, seconds: float) -> AbstractContextManager[anyio.CancelScope]: ...

    def move_on_after(self, seconds: float) -> AbstractContextManager[anyio.CancelScope]: ...


class ScaledClock:
    """A clock that runs `speedup` times faster than real time (speedup=1 is real time).

    Simulated time starts at 0 when the clock is created and is derived from the monotonic
    clock, so it is valid inside and outside an event loop and never goes backwards.
    """

    def __init__(self, speedup: float = 1.0) -> None:
        if speedup <= 0:
            raise ValueError(f"speedup must be > 0, got {speedup}")
        self.speedup = float(speedup)
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.speedup

    def to_real(self, seconds: float) -> float:
        return max(0.0, seconds) / self.speedup

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(self.to_real(seconds))

    async def sleep_until(self, deadline: float) -> None:
        await anyio.sleep(self.to_real(deadline - self.now()))

    def fail_after(self, seconds: float) -> AbstractContextManager[anyio.CancelScope]:
        return anyio.fail_after(self.to_real(seconds))

    def move_on_after(self, seconds: float) -> AbstractContextManager[anyio.CancelScope]:
        return anyio.move_on_after(self.to_real(seconds))

    def __repr__(self) -> str:
        return f"ScaledClock(speedup={self.speedup:g})"


class LoopClock:
    """The running event loop's clock (`anyio.current_time()`), in seconds, at real speed.

    Under trio with `MockClock(autojump_threshold=0)` this is virtual time: deadlines fire in
    order and at exactly their time, and time jumps only when every task waits. `now()` must be
    called from inside the event loop.
    """

    def now(self) -> float:
        return anyio.current_time()

    def to_real(self, seconds: float) -> float:
        return max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: float) -> None:
        await anyio.sleep_until(deadline)

    def fail_after(self, seconds: float) -> AbstractContextManager[anyio.CancelScope]:
        return anyio.fail_after(seconds)

    def move_on_after(self, seconds: float) -> AbstractContextManager[anyio.CancelScope]:
        return anyio.move_on_after(seconds)

    def __repr__(self) -> str:
        return "LoopClock()"


class MonotonicClock(ScaledClock):
    """Real time."""

    def __init__(self) -> None:
        super().__init__(1.0)

    def __repr__(self) -> str:
        return "MonotonicClock()"
