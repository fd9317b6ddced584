"""The I/O boundary that the servers and the simulator share, and nothing else.

Both sides of a drone conversation need the same two things from their environment: a clock to
wait on and a datagram network to talk over. Injecting both lets one test run a simulator and a
link on *virtual* time over an in-memory network (exact and immune to machine load), while
production runs on the monotonic clock over UDP. Neither `servers` nor `drone_sim` is imported
here, so the simulator stays a program of its own.
"""

from tello_io.clock import Clock, LoopClock, MonotonicClock, ScaledClock
from tello_io.datagram import (
    Address,
    DatagramNetwork,
    DatagramSocket,
    MemoryNetwork,
    UdpNetwork,
)

__all__ = [
    "Address",
    "Clock",
    "DatagramNetwork",
    "DatagramSocket",
    "LoopClock",
    "MemoryNetwork",
    "MonotonicClock",
    "ScaledClock",
    "UdpNetwork",
]
