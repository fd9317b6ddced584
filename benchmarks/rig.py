"""The shared simulator for the latency benchmarks, and djitellopy made to share a machine with it.

The simulator runs at real speed in its own thread (an anyio blocking portal), so blocking
clients (a bare socket, djitellopy) and the asyncio `DroneLink` in the main thread all talk to
the same instance over real UDP, the way they would talk to a drone.

djitellopy shares the machine with it through `drone_sim.djitellopy.shared_ports`.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
from anyio.abc import Process
from anyio.from_thread import BlockingPortal, start_blocking_portal

from drone_sim import DroneConfig, DroneSimulator, SimConfig
from tello_io.clock import MonotonicClock


@dataclass
class SimThread:
    """A real-speed simulator on `host:port`, running in a portal thread."""

    sim: DroneSimulator
    portal: BlockingPortal
    clock: MonotonicClock

    @property
    def address(self) -> tuple[str, int]:
        return self.sim.address

    def stream_state_to(self, port: int) -> None:
        """Point the state stream at `port` (on the host that sent `command`), in the sim's loop."""

        def set_port() -> None:
            self.sim.state_port = port

        self.portal.call(set_port)

    def battery_pct(self) -> int:
        return self.portal.call(lambda: self.sim.truth.battery_pct)


@contextlib.contextmanager
def simulator(host: str, port: int, state_port: int) -> Iterator[SimThread]:
    clock = MonotonicClock()
    config = SimConfig(host=host, port=port, state_port=state_port, drone=DroneConfig(initial_battery_pct=87))
    sim = DroneSimulator(config, clock=clock, video=None)
    with start_blocking_portal("asyncio") as portal, portal.wrap_async_context_manager(sim):
        yield SimThread(sim, portal, clock)


def free_udp_ports(count: int) -> list[int]:
    """Ports free on every interface right now (for runs that must not touch 8889/8890)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind(("0.0.0.0", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


async def stop_process(process: Process, timeout_s: float) -> None:
    """End `process` for sure: SIGTERM, up to `timeout_s` for it to exit, then SIGKILL."""
    if process.returncode is None:
        process.terminate()
        with anyio.move_on_after(timeout_s):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
    await process.aclose()
