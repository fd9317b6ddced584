"""Drone runtimes on virtual time: simulator and link on trio's `MockClock`, in memory.

Use from tests marked `virtual_time` (see tests/conftest.py). The clock is the event loop's
(`LoopClock`), which only moves when every task waits, and datagrams travel through a
`MemoryNetwork`, inside the loop, so the freshness of a reading depends on what the simulator
did, never on how busy the machine is. Production thresholds apply unchanged (stale after 1 s).
"""

from __future__ import annotations

from typing import Any

import sniffio

from servers.drone.config import DroneSettings
from servers.drone.runtime import DroneRuntime
from tello_io.clock import LoopClock
from tello_io.datagram import MemoryNetwork


def in_virtual_time() -> bool:
    """Whether the running event loop is trio with a `MockClock` (a `virtual_time` test)."""
    if sniffio.current_async_library() != "trio":
        return False
    import trio.lowlevel
    from trio.testing import MockClock

    return isinstance(trio.lowlevel.current_clock(), MockClock)


def require_virtual_time() -> None:
    assert in_virtual_time(), "this helper needs a test marked @pytest.mark.virtual_time"


def virtual_runtime(settings: DroneSettings | None = None, **overrides: Any) -> DroneRuntime:
    """A runtime with the embedded simulator on the loop's virtual clock and an in-memory network."""
    require_virtual_time()
    settings = settings or DroneSettings(**{"sim": True, **overrides})
    assert settings.sim, "a virtual runtime flies the embedded simulator"
    return DroneRuntime(settings, clock=LoopClock(), network=MemoryNetwork(), sim_video_in_thread=False)
