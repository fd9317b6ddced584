"""The shared simulator for the latency benchmarks, and djitellopy made to share a machine with it.

The simulator runs at real speed in its own thread (an anyio blocking portal), so blocking
clients (a bare socket, djitellopy) and the asyncio `DroneLink` in the main thread all talk to
the same instance over real UDP, the way they would talk to a drone.

djitellopy binds its command and state ports on every interface in module-global sockets served
by daemon threads that never stop. `djitellopy_session` gives those sockets SO_REUSEADDR (so
they share the command port number with the simulator on 127.0.0.2, as `tests/sim/` does), and
on exit shuts them down, which wakes the threads' blocking `recvfrom` so they end, joins them
and closes the sockets.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from drone_sim import DroneConfig, DroneSimulator, SimConfig
from servers.clock import MonotonicClock


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


@contextlib.contextmanager
def djitellopy_session(control_port: int, state_port: int) -> Iterator[type[Any]]:
    """djitellopy's `Tello` class, patched to share ports and to clean up after itself."""
    import djitellopy.tello as tello_module
    from djitellopy import Tello

    sockets: list[socket.socket] = []
    threads: list[threading.Thread] = []

    class ReusableSocket(socket.socket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sockets.append(self)

    class RecordedThread(threading.Thread):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            threads.append(self)

    shim = types.SimpleNamespace(socket=ReusableSocket, AF_INET=socket.AF_INET, SOCK_DGRAM=socket.SOCK_DGRAM)
    saved: dict[str, Any] = {
        name: getattr(tello_module, name) for name in ("socket", "Thread", "threads_initialized", "drones")
    }
    patched: Any = Tello  # its port attributes are typed as their default literals
    saved_ports = (Tello.CONTROL_UDP_PORT, Tello.STATE_UDP_PORT)
    saved_level = Tello.LOGGER.level
    tello_module.socket = shim  # type: ignore[assignment]
    tello_module.Thread = RecordedThread  # type: ignore[misc]
    tello_module.threads_initialized = False
    tello_module.drones = {}
    patched.CONTROL_UDP_PORT, patched.STATE_UDP_PORT = control_port, state_port
    Tello.LOGGER.setLevel(logging.WARNING)  # it logs every command at INFO on stderr
    try:
        yield Tello
    finally:
        # Its receiver threads log an error when their socket is shut down under them.
        Tello.LOGGER.setLevel(logging.CRITICAL + 1)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()
        for name, value in saved.items():
            setattr(tello_module, name, value)
        patched.CONTROL_UDP_PORT, patched.STATE_UDP_PORT = saved_ports
        Tello.LOGGER.setLevel(saved_level)


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
