"""The CPU time of every callback one asyncio event loop runs, and a server on a loop of its own.

Why CPU time: a callback that holds the loop for 50 ms of CPU delays everything else the
process serves (the drone's keepalive, a `stop` from another agent) by at least that much, on
any machine. Wall time cannot tell that apart from a loaded machine that merely ran the loop
late, so a stall guard judged on wall time fails at random on a busy CI host.

Why a thread of its own: the test's MCP clients parse and build requests on the test's loop; with
the server on another thread's loop, only the server's own work is measured. Every asyncio
callback (task steps, protocol reads, timers) runs through `asyncio.events.Handle._run`, which
`LoopCpuMeter` wraps; it records callbacks of its own thread only.

What it cannot see: work done while holding the GIL in another thread of the process delays the
loop without costing the loop thread CPU. The suite's servers run untrusted code in worker
processes, and the few things they hand to worker threads (HTML extraction) release the GIL
often, so that gap is acceptable here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

T = TypeVar("T")

STALL_S: Final = 0.050
"""The most CPU one callback may take on the loop (issue 18: "holds the loop > 50 ms")."""


@dataclass(frozen=True, slots=True)
class Callback:
    """One callback the loop ran: its CPU seconds, what it was, and what the test was doing."""

    cpu_s: float
    what: str
    during: str

    def __str__(self) -> str:
        return f"{self.cpu_s * 1e3:.1f} ms of CPU during {self.during!r}: {self.what}"


@dataclass
class LoopCpuMeter:
    """Records callbacks of the loop on thread `ident` that took at least `record_s` of CPU.

    `during(label)` names what the test is driving, so that a slow callback says which input
    caused it. The label is set from the test's thread and read on the loop's: a callback that
    finishes just after a call returned is charged to the next label, never lost."""

    ident: int
    record_s: float = 0.005
    label: str = "(idle)"
    slow: list[Callback] = field(default_factory=list[Callback])
    longest: Callback = field(default_factory=lambda: Callback(0.0, "nothing yet", "(idle)"))
    callbacks: int = 0

    def observe(self, handle: asyncio.Handle, cpu_s: float) -> None:
        self.callbacks += 1
        if cpu_s < self.record_s and cpu_s <= self.longest.cpu_s:
            return
        seen = Callback(cpu_s, _describe(handle), self.label)
        if cpu_s > self.longest.cpu_s:
            self.longest = seen
        if cpu_s >= self.record_s:
            self.slow.append(seen)

    def reset(self, label: str) -> None:
        self.label = label
        self.slow = []
        self.longest = Callback(0.0, "nothing yet", label)
        self.callbacks = 0

    @contextlib.contextmanager
    def during(self, label: str) -> Iterator[None]:
        previous, self.label = self.label, label
        try:
            yield
        finally:
            self.label = previous

    def stalls(self, limit_s: float = STALL_S) -> list[Callback]:
        return sorted((c for c in self.slow if c.cpu_s > limit_s), key=lambda c: -c.cpu_s)

    def report(self, limit_s: float = STALL_S) -> str:
        worst = self.stalls(limit_s) or sorted(self.slow, key=lambda c: -c.cpu_s)
        lines = [f"{self.callbacks} callbacks; longest {self.longest}"]
        lines += [f"  {c}" for c in worst[:8]]
        return "\n".join(lines)


def _describe(handle: asyncio.Handle) -> str:
    """The callback, and for a task step the coroutine it belongs to."""
    callback: Any = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        task: asyncio.Task[Any] = owner
        return f"task {task.get_name()} running {task.get_coro()!r}"
    return repr(callback)[:300]


_meters: list[LoopCpuMeter] = []
_original_run: Callable[[asyncio.Handle], None] | None = None


def _measured_run(self: asyncio.Handle) -> None:
    assert _original_run is not None
    ident = threading.get_ident()
    meter = next((m for m in _meters if m.ident == ident), None)
    if meter is None:
        _original_run(self)
        return
    start = time.thread_time()
    try:
        _original_run(self)
    finally:
        meter.observe(self, time.thread_time() - start)


@contextlib.contextmanager
def metering(ident: int, **options: Any) -> Iterator[LoopCpuMeter]:
    """A meter on the loop of thread `ident`, for the block (`Handle._run` wrapped meanwhile)."""
    global _original_run
    meter = LoopCpuMeter(ident, **options)
    if not _meters:
        _original_run = asyncio.events.Handle._run  # pyright: ignore[reportPrivateUsage]
        asyncio.events.Handle._run = _measured_run  # pyright: ignore[reportAttributeAccessIssue]
    _meters.append(meter)
    try:
        yield meter
    finally:
        _meters.remove(meter)
        if not _meters:
            asyncio.events.Handle._run = _original_run  # pyright: ignore[reportAttributeAccessIssue]
            _original_run = None


@dataclass
class LoopThread(Generic[T]):
    """A value made inside an async context that lives on another thread's event loop."""

    value: T
    loop: asyncio.AbstractEventLoop
    ident: int

    def run(self, make: Callable[[T], Awaitable[Any]], timeout: float = 30.0) -> Any:
        """`make(value)` awaited on the loop thread; blocks the caller (use from the test thread
        only for quick set-up steps)."""

        async def call() -> Any:
            return await make(self.value)

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)


@contextlib.contextmanager
def on_own_loop(
    opened: Callable[[], contextlib.AbstractAsyncContextManager[T]], start_timeout: float = 60.0
) -> Iterator[LoopThread[T]]:
    """Enter `opened()` on a fresh asyncio loop in a new thread, and leave it at the block's end.

    Objects already alive are frozen out of the garbage collector's generations once the server
    is up (`gc.freeze`), so a full collection triggered on the server's loop does not walk the
    whole test session's heap and charge it to whichever request happened to allocate."""
    box: dict[str, Any] = {}
    up = threading.Event()

    async def main() -> None:
        stop = asyncio.Event()
        async with opened() as value:
            box["value"] = LoopThread(value, asyncio.get_running_loop(), threading.get_ident())
            box["stop"] = stop
            up.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the test's thread
            box["error"] = exc
        finally:
            up.set()

    thread = threading.Thread(target=run, name="served-loop", daemon=True)
    thread.start()
    if not up.wait(start_timeout) or "value" not in box:
        thread.join(5.0)
        raise RuntimeError("the server's loop did not start") from box.get("error")
    served: LoopThread[T] = box["value"]
    gc.collect()
    gc.freeze()
    try:
        yield served
    finally:
        gc.unfreeze()
        served.loop.call_soon_threadsafe(box["stop"].set)
        thread.join(30.0)
        if "error" in box:
            raise box["error"]
        assert not thread.is_alive(), "the server's loop did not stop"
