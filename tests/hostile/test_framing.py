"""Request smuggling and dressed-up Host headers against the operator's route, over a raw socket:
a request framed two ways (RFC 9112 6.3) is answered 400 and its connection closed, so a second
request hidden in its body never reaches the app; an allowed Host with userinfo or other
decoration is refused, not prefix-matched."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import anyio
import pytest

from servers.drone.app import ADMIN_ADDRESS_PATH
from tests.drone_server.harness import assert_nothing_sent, mark
from tests.hostile.suite import Suite, serving_suite

pytestmark = pytest.mark.anyio

REPOINT = json.dumps({"host": "127.0.0.9", "port": 8889}).encode()


@pytest.fixture(scope="module")
async def suite(anyio_backend: str) -> AsyncGenerator[Suite]:
    async with serving_suite() as served:
        yield served


def _post(suite: Suite, body: bytes, *framing: str, host: str | None = None) -> bytes:
    head = [
        f"POST {ADMIN_ADDRESS_PATH} HTTP/1.1",
        f"Host: {host or suite.host}",
        "Content-Type: application/json",
        *framing,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _exchange(suite: Suite, data: bytes) -> tuple[bytes, bool]:
    """Everything the server answers to `data` on one connection, and whether it closed it."""
    received = b""
    async with await anyio.connect_tcp("127.0.0.1", suite.port) as stream:
        await stream.send(data)
        with anyio.move_on_after(5):
            while True:
                try:
                    received += await stream.receive()
                except anyio.EndOfStream:
                    return received, True
    return received, False


SMUGGLED = "POST /admin/drone-address HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(("Content-Length: {n}", "Transfer-Encoding: chunked"), id="CL then TE"),
        pytest.param(("Transfer-Encoding: chunked", "Content-Length: {n}"), id="TE then CL"),
        pytest.param(("Content-Length: {n}", "Content-Length: 0"), id="two Content-Lengths"),
    ],
)
async def test_a_request_framed_two_ways_is_refused_and_its_connection_closed(
    suite: Suite, framing: tuple[str, ...]
) -> None:
    hidden = _post(suite, REPOINT, f"Content-Length: {len(REPOINT)}")
    chunked = b"0\r\n\r\n"
    headers = [line.format(n=len(chunked)) for line in framing]
    before, since = suite.runtime.link.drone_address, mark(suite.truth)
    answer, closed = await _exchange(suite, _post(suite, chunked, *headers) + hidden)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # the hidden request got no answer: never read
    assert closed
    assert suite.runtime.link.drone_address == before
    assert_nothing_sent(suite.truth, since)


async def test_pipelined_requests_framed_one_way_are_both_answered(suite: Suite) -> None:
    """The refusal is for ambiguous framing only: keep-alive and pipelining still work."""
    current = suite.runtime.link.drone_address
    host, port = current.rsplit(":", 1)
    same = json.dumps({"host": host, "port": int(port)}).encode()
    one = _post(suite, same, f"Content-Length: {len(same)}")
    chunked = f"{len(same):x}\r\n".encode() + same + b"\r\n0\r\n\r\n"
    two = _post(suite, chunked, "Transfer-Encoding: chunked", "Connection: close")
    answer, closed = await _exchange(suite, one + two)
    assert answer.count(b"HTTP/1.1 200 ") == 2, answer
    assert closed


@pytest.mark.parametrize(
    "host",
    ["{host}@evil.example", "{host}\\@evil.example", "{host}:1", "LOCALHOST", "localhost.", "[::1]x"],
)
async def test_a_dressed_up_host_cannot_re_point_the_drone(suite: Suite, host: str) -> None:
    before = suite.runtime.link.drone_address
    request = _post(suite, REPOINT, f"Content-Length: {len(REPOINT)}", host=host.format(host=suite.host))
    answer, _ = await _exchange(suite, request)
    assert answer.startswith(b"HTTP/1.1 421 "), answer
    assert suite.runtime.link.drone_address == before
