"""Clients that send too much or too slowly, over raw sockets: a body over the cap gets 413
before it is read whole (declared or streamed), a body or headers dripped slower than the
deadline get 408 or a closed connection, and none of it reaches the drone or hurts the server."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Final

import anyio
import pytest
from anyio.abc import SocketStream
from mcp import Client

from servers.drone.app import ADMIN_ADDRESS_PATH
from servers.http import HttpSettings
from tests.drone_server.harness import assert_nothing_sent, freshness_of, mark, structured
from tests.hostile.battery import MODERN_VERSION, call
from tests.hostile.suite import Suite, serving_suite

pytestmark = pytest.mark.anyio

CAP: Final = 64 * 1024
HEADER_TIMEOUT: Final = 1.0
BODY_TIMEOUT: Final = 1.0
DRIP_EVERY: Final = 0.2
"""Seconds between dripped bytes: well inside either deadline, so only a total deadline helps."""
WITHIN: Final = 10.0
"""Real seconds any answer may take on a loaded machine."""

TAKEOFF: Final = json.dumps(call("takeoff").render("/drone", MODERN_VERSION)).encode()


@pytest.fixture(scope="module")
async def suite(anyio_backend: str) -> AsyncGenerator[Suite]:
    async with serving_suite(
        max_body_bytes=CAP, header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT
    ) as s:
        yield s


@pytest.fixture(autouse=True)
async def drone_untouched_and_healthy(suite: Suite) -> AsyncGenerator[None]:
    since = mark(suite.truth)
    yield
    assert_nothing_sent(suite.truth, since)
    async with Client(f"{suite.base}/drone", mode="2026-07-28") as client:
        state = structured(await client.call_tool("get_state", {}))
    assert freshness_of(state)["link"] == "connected"


def head(suite: Suite, path: str = "/drone", **headers: str) -> bytes:
    fields = {
        "Host": suite.host,
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN_VERSION,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "takeoff",
        **headers,
    }
    lines = [f"POST {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_answer(stream: SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = bytearray()
    with anyio.fail_after(WITHIN):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return bytes(received)


async def drip_until_closed(stream: SocketStream, drip: bytes) -> tuple[bytes, float]:
    """Send `drip` a byte at a time, one every `DRIP_EVERY` s while the server stays silent;
    what the server sent before closing, and after how many seconds."""
    start = anyio.current_time()
    received = bytearray()
    with anyio.fail_after(WITHIN):
        for byte in (*drip, *(b" " * 1000)):
            with anyio.move_on_after(DRIP_EVERY):
                try:
                    while True:
                        received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return bytes(received), anyio.current_time() - start
            try:
                await stream.send(bytes([byte]))
            except (anyio.BrokenResourceError, OSError):
                return bytes(received), anyio.current_time() - start
    raise AssertionError("the server never closed the connection")


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("path", ["/drone", ADMIN_ADDRESS_PATH])
async def test_declared_oversized_body_is_refused_before_it_is_sent(suite: Suite, path: str) -> None:
    """Content-Length over the cap: 413 at once, though not one byte of the body was sent
    (waiting for it would have ended in 408 instead)."""
    async with await anyio.connect_tcp("127.0.0.1", suite.port) as stream:
        await stream.send(head(suite, path, **{"Content-Length": str(CAP + 1)}))
        answer = await read_answer(stream)
    assert status_of(answer) == 413, answer


@pytest.mark.parametrize("path", ["/drone", "/everything", ADMIN_ADDRESS_PATH])
async def test_streamed_body_is_cut_off_at_the_cap(suite: Suite, path: str) -> None:
    """A chunked body with no length: 413 once it passes the cap, its end never sent."""
    chunk = b"A" * 4096
    async with await anyio.connect_tcp("127.0.0.1", suite.port) as stream:
        await stream.send(head(suite, path, **{"Transfer-Encoding": "chunked"}))
        answer = b""
        with anyio.fail_after(WITHIN):
            for _ in range(CAP // len(chunk) + 1):
                try:
                    await stream.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except (anyio.BrokenResourceError, OSError):
                    break
            answer = await read_answer(stream)
    assert status_of(answer) == 413, answer


async def test_slow_drip_body_gets_408(suite: Suite) -> None:
    async with await anyio.connect_tcp("127.0.0.1", suite.port) as stream:
        await stream.send(head(suite, **{"Content-Length": str(len(TAKEOFF))}))
        answer, took = await drip_until_closed(stream, TAKEOFF)
    assert status_of(answer) == 408, answer
    assert took >= BODY_TIMEOUT * 0.9


async def test_slow_drip_headers_get_the_connection_closed(suite: Suite) -> None:
    request = head(suite, **{"Content-Length": str(len(TAKEOFF))}) + TAKEOFF
    async with await anyio.connect_tcp("127.0.0.1", suite.port) as stream:
        answer, took = await drip_until_closed(stream, request)
    assert answer == b""
    assert took >= HEADER_TIMEOUT * 0.9


async def test_a_silent_connection_is_closed(suite: Suite) -> None:
    async with await anyio.connect_tcp("127.0.0.1", suite.port) as stream:
        start = anyio.current_time()
        assert await read_answer(stream) == b""
    assert anyio.current_time() - start >= HEADER_TIMEOUT * 0.9


async def test_huge_headers_are_refused(suite: Suite) -> None:
    """Headers beyond h11's limit (16 KiB unless they arrive in one read): 400 and closed."""
    async with await anyio.connect_tcp("127.0.0.1", suite.port) as stream:
        await stream.send(head(suite, **{"X-Junk": "A" * 100})[:-2])
        with anyio.fail_after(WITHIN):
            for _ in range(64):
                try:
                    await stream.send(b"X-Junk: " + b"A" * 4096 + b"\r\n")
                except (anyio.BrokenResourceError, OSError):
                    break
        answer = await read_answer(stream)
    assert answer == b"" or status_of(answer) == 400, answer


@pytest.mark.parametrize(
    "bad",
    [{"max_body_bytes": 0}, {"max_sessions": 0}, {"header_timeout": 0}, {"body_timeout": float("inf")}],
)
def test_limits_must_be_positive_and_finite(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        HttpSettings(**bad)  # pyright: ignore[reportArgumentType]
