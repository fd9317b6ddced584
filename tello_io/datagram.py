"""Datagram networks: real UDP, or an in-memory network for tests on virtual time.

The drone link, the video receiver and the simulator each bind sockets through a
`DatagramNetwork` (like an httpx transport, it is injected): `UdpNetwork` in production and in
integration tests, `MemoryNetwork` where a test wants every datagram delivered inside the event
loop, so that a virtual clock (see `tello_io.clock.LoopClock`) sees all activity and nothing
travels through the kernel behind its back.

Sending never waits (`send_nowait`): the emergency path must not queue behind anything. A
datagram to an address nobody listens on, or to a full receive buffer, is lost, as with UDP.
Faults (loss, delay, duplicates) are the simulator's business, not the network's.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import math
import socket
from types import TracebackType
from typing import Protocol, Self

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

Address = tuple[str, int]
"""(host, port), hosts as numeric IP strings."""

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


class DatagramSocket(Protocol):
    """One bound datagram endpoint."""

    @property
    def local_address(self) -> Address: ...

    def send_nowait(self, data: bytes, to: Address) -> None:
        """Hand `data` to the network at once. Raises OSError where UDP's `sendto` would."""
        ...

    async def receive(self) -> tuple[bytes, Address]:
        """The next datagram and its sender. `anyio.EndOfStream` or `anyio.ClosedResourceError`
        once the socket is closed."""
        ...

    def __aiter__(self) -> Self: ...

    async def __anext__(self) -> tuple[bytes, Address]: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class DatagramNetwork(Protocol):
    async def bind(
        self, host: str, port: int = 0, *, reuse_address: bool = False, receive_buffer: int | None = None
    ) -> DatagramSocket:
        """A socket bound to (host, port); port 0 picks a free one (see `local_address`)."""
        ...


class _SocketBase:
    """Iteration and `async with` in terms of `receive` and `aclose`."""

    async def receive(self) -> tuple[bytes, Address]:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[bytes, Address]:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


# ---- UDP ----


class UdpSocket(_SocketBase):
    """A UDP socket: receives through anyio, sends with a plain non-blocking `sendto`."""

    def __init__(self, raw: socket.socket, stream: anyio.abc.UDPSocket) -> None:
        self._raw = raw
        self._stream = stream
        host, port = raw.getsockname()[:2]
        self._local: Address = (str(host), int(port))

    @property
    def local_address(self) -> Address:
        return self._local

    def send_nowait(self, data: bytes, to: Address) -> None:
        self._raw.sendto(data, to)

    async def receive(self) -> tuple[bytes, Address]:
        data, sender = await self._stream.receive()
        return data, (str(sender[0]), int(sender[1]))

    async def aclose(self) -> None:
        # Shielded: an outer cancellation must not leave the socket open halfway.
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()


class UdpNetwork:
    """The machine's real UDP stack."""

    async def bind(
        self, host: str, port: int = 0, *, reuse_address: bool = False, receive_buffer: int | None = None
    ) -> UdpSocket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        raw = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if reuse_address:
                # So a client bound to the wildcard address on the same port number (djitellopy
                # binds 0.0.0.0:8889) can coexist with a simulator on one machine.
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if receive_buffer is not None:
                # Best effort: the default buffer works, with more loss when the loop is busy.
                with contextlib.suppress(OSError):
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            raw.setblocking(False)
            raw.bind((host.strip("[]"), port))
            stream = await anyio.abc.UDPSocket.from_socket(raw)
        except BaseException:
            raw.close()
            raise
        return UdpSocket(raw, stream)

    def __repr__(self) -> str:
        return "UdpNetwork()"


# ---- in memory ----


class MemorySocket(_SocketBase):
    def __init__(self, network: MemoryNetwork, local: Address, buffer: int) -> None:
        self._network = network
        self._local = local
        self._inbox: MemoryObjectSendStream[tuple[bytes, Address]]
        self._outbox: MemoryObjectReceiveStream[tuple[bytes, Address]]
        self._inbox, self._outbox = anyio.create_memory_object_stream[tuple[bytes, Address]](buffer)
        self.dropped = 0
        """Datagrams lost because this socket's buffer was full."""
        self.closed = False

    @property
    def local_address(self) -> Address:
        return self._local

    @property
    def source_address(self) -> Address:
        """What receivers see as the sender: a wildcard bind sends from loopback."""
        host, port = self._local
        return (self._network.loopback if host in WILDCARD_HOSTS else host, port)

    def send_nowait(self, data: bytes, to: Address) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "socket is closed")
        self._network.deliver(bytes(data), self.source_address, to)

    def put(self, data: bytes, sender: Address) -> None:
        try:
            self._inbox.send_nowait((data, sender))
        except anyio.WouldBlock:
            self.dropped += 1

    async def receive(self) -> tuple[bytes, Address]:
        return await self._outbox.receive()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._network.release(self)
        # Closing the sending side first ends a pending `receive` with EndOfStream.
        self._inbox.close()
        self._outbox.close()


class MemoryNetwork:
    """Datagrams delivered synchronously between sockets bound in this object.

    Addresses are whatever the caller binds (`127.0.0.1`, `127.0.0.9`, `0.0.0.0`, ...); a
    datagram goes to the socket bound to exactly its destination, else to one bound to the
    wildcard address on that port, else nowhere. Delivery is immediate and in order: the
    simulator decides about loss, delay and duplicates.
    """

    def __init__(self, *, buffer: int = 1024, loopback: str = "127.0.0.1") -> None:
        self.loopback = loopback
        self._buffer = buffer
        self._bound: dict[Address, MemorySocket] = {}
        self._ports = itertools.count(40000)
        self.delivered = 0
        self.undeliverable = 0

    async def bind(
        self, host: str, port: int = 0, *, reuse_address: bool = False, receive_buffer: int | None = None
    ) -> MemorySocket:
        host = host.strip("[]")
        if port == 0:
            port = next(p for p in self._ports if (host, p) not in self._bound)
        if (host, port) in self._bound:
            raise OSError(errno.EADDRINUSE, f"address already in use: {host}:{port}")
        buffer = self._buffer if receive_buffer is None else max(1, math.ceil(receive_buffer / 1500))
        sock = MemorySocket(self, (host, port), buffer)
        self._bound[(host, port)] = sock
        return sock

    def deliver(self, data: bytes, source: Address, to: Address) -> None:
        host, port = to
        target = self._bound.get((host, port))
        if target is None:
            target = next((self._bound[(w, port)] for w in WILDCARD_HOSTS if (w, port) in self._bound), None)
        if target is None:
            self.undeliverable += 1
            return
        self.delivered += 1
        target.put(data, source)

    def release(self, sock: MemorySocket) -> None:
        if self._bound.get(sock.local_address) is sock:
            del self._bound[sock.local_address]

    def __repr__(self) -> str:
        return f"MemoryNetwork(bound={sorted(self._bound)})"
