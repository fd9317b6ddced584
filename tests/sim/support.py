"""A tiny raw Tello client on real UDP, independent of any driver, for the simulator's tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

import anyio
import anyio.abc

from drone_sim.config import DroneConfig
from drone_sim.faults import Faults
from drone_sim.server import DroneSimulator, SimConfig, VideoFactory
from tello_io.clock import ScaledClock

Address = tuple[str, int]

REPLY_TIMEOUT_S = 5.0
"""Real seconds: a bound on waits that normally end in milliseconds."""


@dataclass
class RawClient:
    """One command socket (replies come back to it) and one state socket, both on `host`."""

    host: str
    command: anyio.abc.UDPSocket
    state: anyio.abc.UDPSocket
    video: anyio.abc.UDPSocket

    @property
    def command_port(self) -> int:
        return self.command.extra(anyio.abc.SocketAttribute.local_port)

    @property
    def state_port(self) -> int:
        return self.state.extra(anyio.abc.SocketAttribute.local_port)

    @property
    def video_port(self) -> int:
        return self.video.extra(anyio.abc.SocketAttribute.local_port)

    async def send(self, text: str, to: Address) -> None:
        await self.command.send((text.encode("ascii"), to))

    async def reply(self) -> tuple[str, Address]:
        with anyio.fail_after(REPLY_TIMEOUT_S):
            data, sender = await self.command.receive()
        return data.decode("ascii"), (sender[0], sender[1])

    async def request(self, text: str, to: Address) -> str:
        await self.send(text, to)
        reply, sender = await self.reply()
        assert sender == to, f"reply to {text!r} came from {sender}, not {to}"
        return reply

    async def state_packet(self) -> tuple[str, Address]:
        with anyio.fail_after(REPLY_TIMEOUT_S):
            data, sender = await self.state.receive()
        return data.decode("ascii"), (sender[0], sender[1])

    async def state_where(self, predicate: Callable[[dict[str, str]], bool]) -> dict[str, str]:
        """The first state packet (old ones queued in the socket included) that satisfies `predicate`."""
        with anyio.fail_after(REPLY_TIMEOUT_S):
            while True:
                data, _ = await self.state.receive()
                fields = parse_state(data.decode("ascii"))
                if predicate(fields):
                    return fields


@contextlib.asynccontextmanager
async def raw_client(host: str = "127.0.0.1") -> AsyncGenerator[RawClient]:
    async with (
        await anyio.create_udp_socket(local_host=host, local_port=0) as command,
        await anyio.create_udp_socket(local_host=host, local_port=0) as state,
        await anyio.create_udp_socket(local_host=host, local_port=0) as video,
    ):
        yield RawClient(host, command, state, video)


def parse_state(packet: str) -> dict[str, str]:
    """`key:value;` pairs of a state packet, by key (the only safe way to read one)."""
    assert packet.endswith(";\r\n"), packet
    fields = [f for f in packet[: -len("\r\n")].split(";") if f]
    return dict(f.split(":", 1) for f in fields)


@contextlib.asynccontextmanager
async def flying_rig(
    *,
    speedup: float = 20.0,
    host: str = "127.0.0.1",
    faults: Faults | None = None,
    drone: DroneConfig | None = None,
    video: VideoFactory | None = None,
    enter_sdk: bool = True,
) -> AsyncGenerator[tuple[DroneSimulator, RawClient]]:
    """A simulator on an ephemeral port of `host` and a raw client whose state socket it feeds."""
    async with raw_client() as client:
        config = SimConfig(
            host=host,
            port=0,
            state_port=client.state_port,
            video_port=client.video_port,
            drone=drone if drone is not None else DroneConfig(),
        )
        sim = DroneSimulator(config, clock=ScaledClock(speedup), faults=faults, video=video)
        async with sim:
            if enter_sdk:
                assert await client.request("command", sim.address) == "ok"
            yield sim, client


async def read_line(stream: anyio.abc.ByteReceiveStream) -> str:
    """One line of a subprocess's output (a byte at a time: nothing past the newline is lost)."""
    data = b""
    with anyio.fail_after(20):
        while not data.endswith(b"\n"):
            data += await stream.receive(1)
    return data.decode()
