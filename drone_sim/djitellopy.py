"""Run unmodified djitellopy scripts against the simulator on the same machine.

djitellopy binds its command (8889) and state (8890) ports on every interface, in
module-global sockets served by daemon threads that never stop, and without SO_REUSEADDR, so
it cannot share a machine with a simulator on port 8889. `shared_ports()` patches djitellopy's
socket creation to set SO_REUSEADDR (the simulator sets it too), so with the simulator on
another loopback address both sides use port 8889::

    # drone-sim --host 127.0.0.2      (or DroneSimulator(SimConfig(host="127.0.0.2")))
    from drone_sim.djitellopy import shared_ports

    with shared_ports() as session:
        tello = session.Tello(host="127.0.0.2")
        tello.connect()
        ...

On exit it shuts the sockets down (which wakes djitellopy's blocked receiver threads), joins
the threads, closes the sockets and undoes every patch, so the next session starts clean.
djitellopy is not a dependency of this package; it is imported when the session starts.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import types
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Session", "shared_ports"]


@dataclass
class Session:
    """What a `shared_ports()` block hands out, and what it cleans up."""

    Tello: Any
    """djitellopy's `Tello` class (untyped: djitellopy ships no type information)."""
    sockets: list[socket.socket] = field(default_factory=list[socket.socket])
    threads: list[threading.Thread] = field(default_factory=list[threading.Thread])
    tellos: list[Any] = field(default_factory=list[Any])

    def tello(self, host: str) -> Any:
        """A `Tello(host=...)` that the session also ends on exit."""
        tello = self.Tello(host=host)
        self.tellos.append(tello)
        return tello


@contextlib.contextmanager
def shared_ports(control_port: int = 8889, state_port: int = 8890) -> Generator[Session]:
    # djitellopy ships no type information; everything taken from it is Any here.
    import djitellopy.tello as tello_module  # pyright: ignore[reportMissingTypeStubs]

    tello_class: Any = tello_module.Tello
    session = Session(tello_class)

    class ReusableSocket(socket.socket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            session.sockets.append(self)

    class RecordedThread(threading.Thread):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            session.threads.append(self)

    module: Any = tello_module
    saved = {name: getattr(module, name) for name in ("socket", "Thread", "threads_initialized", "drones")}
    saved_ports = (tello_class.CONTROL_UDP_PORT, tello_class.STATE_UDP_PORT)
    saved_level = tello_class.LOGGER.level
    module.socket = types.SimpleNamespace(
        socket=ReusableSocket, AF_INET=socket.AF_INET, SOCK_DGRAM=socket.SOCK_DGRAM
    )
    module.Thread = RecordedThread
    module.threads_initialized = False
    module.drones = {}
    tello_class.CONTROL_UDP_PORT, tello_class.STATE_UDP_PORT = control_port, state_port
    try:
        yield session
    finally:
        # Its receiver threads log an error when their socket is shut down under them.
        tello_class.LOGGER.setLevel(logging.CRITICAL + 1)
        for tello in session.tellos:
            # end() would try to land a drone it believes is flying.
            tello.is_flying = False
            tello.stream_on = False
            tello.end()
            # Tello.__del__ calls end() again when collected, and end() deletes the
            # module-global entry for its host, which by then may be another session's.
            tello.end = lambda: None
        for sock in session.sockets:
            # Wakes the receiver thread blocked in recvfrom (unconnected UDP: ENOTCONN, ignored).
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in session.threads:
            thread.join(timeout=5)
        for sock in session.sockets:
            sock.close()
        for name, value in saved.items():
            setattr(module, name, value)
        tello_class.CONTROL_UDP_PORT, tello_class.STATE_UDP_PORT = saved_ports
        tello_class.LOGGER.setLevel(saved_level)
