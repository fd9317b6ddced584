"""No delayed-ACK tax on keep-alive connections: every accepted connection carries `TCP_NODELAY`.

A response that leaves the server in several writes (headers, then SSE events) is held back by
Nagle's algorithm until the client ACKs the first piece, and a client with nothing to send
delays that ACK (~40 ms on Linux). On a reused keep-alive connection, which is how gateways
and load generators talk, every call then pays ~40 ms. asyncio switches Nagle off only on
accepted sockets created with `IPPROTO_TCP`, so `servers.http` must bind its listener that way.

Checked for every server the suite hosts (the demo servers of `build_app` and the drone app,
both through the real `servers.http.serve`), in both protocol eras:

* server side: every connection the server accepted has `TCP_NODELAY` set (read with
  `getsockopt` on the server's end of the connection, found among this process's own fds);
* end to end: calls over one keep-alive connection are much faster than the same calls, in the
  same test and alternating with them in blocks, over a second connection whose server end has
  `TCP_NODELAY` switched off by the test. A ratio of lower quartiles, not a millisecond
  threshold, so a loaded machine slows both sides alike; without the fix both connections pay
  the tax and the ratio is ~1.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import sys
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import pytest
from mcp import Client

from servers.http import build_app
from tests.mcp.demo import DemoState, build_demo, demo_settings, running
from tests.support.eras import ACCEPT, ERAS

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads server sockets via /proc/self/fd"),
]

KINDS: Final = ("demo", "drone")
LEGACY_VERSION: Final = "2025-11-25"
MODERN_VERSION: Final = "2026-07-28"

ROUNDS: Final = 3
BLOCK: Final = 6
"""Calls measured back to back on one connection, then as many on the other, `ROUNDS` times.

Blocks, not strictly alternating calls: alternating couples the two connections through the
kernel's delayed-ACK heuristics (a connection idle for longer than the ACK timeout is ACKed at
once), so without the fix one of two no-NODELAY connections can ride free while the other pays.
"""
MIN_SPEEDUP: Final = 2.0
"""The control's lower quartile over ours. Fixed: ~1-5 ms against ~44 ms (x10-40). Not fixed: ~1."""
ATTEMPTS: Final = 5
"""A CPU-starved machine can stretch our calls towards the control's 40 ms (the control's wait
hides its own work), so a miss is measured again. Without the fix no attempt passes: calls on
both connections pay the tax alike (measured ratio 0.8-1.25, loaded or not)."""


@dataclass(frozen=True)
class Hosted:
    port: int
    path: str
    tool: str
    arguments: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


@contextlib.asynccontextmanager
async def hosted(kind: str) -> AsyncGenerator[Hosted]:
    """One of the suite's servers behind the real `serve`, on 127.0.0.1, port 0."""
    if kind == "demo":
        app = build_app({"/alpha": build_demo("demo-alpha", DemoState())}, settings=demo_settings())
        async with running(app, demo_settings()) as port:
            yield Hosted(port, "/alpha", "move", {"distance_cm": 40})
    else:
        from tests.drone_server.harness import serving

        async with serving() as served:
            yield Hosted(served.port, "/drone", "get_state", {})


# ---- the server's end of each connection, found among this process's file descriptors ----


@contextlib.contextmanager
def server_ends(port: int) -> Iterator[dict[tuple[str, int], socket.socket]]:
    """Duplicates of the connected sockets whose local port is `port`, by peer address.

    The server runs in this process, so its accepted sockets are among our fds; a duplicate
    shares the socket, and with it the `TCP_NODELAY` option, with the server's own.
    """
    found: dict[tuple[str, int], socket.socket] = {}
    try:
        for name in os.listdir("/proc/self/fd"):
            sock = _socket_of(int(name))
            if sock is None:
                continue
            try:
                local, peer = sock.getsockname(), sock.getpeername()
            except OSError:  # a listener, or not connected
                sock.close()
                continue
            if sock.family == socket.AF_INET and local[1] == port and peer not in found:
                found[peer] = sock
            else:
                sock.close()
        yield found
    finally:
        for sock in found.values():
            sock.close()


def _socket_of(fd: int) -> socket.socket | None:
    """A socket object on a duplicate of `fd`, or None if `fd` is gone or is no TCP socket."""
    try:
        duplicate = os.dup(fd)
    except OSError:
        return None
    try:
        sock = socket.socket(fileno=duplicate)  # family and type detected from the fd
    except OSError:
        os.close(duplicate)
        return None
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        sock.close()
        return None
    return sock


def nodelay(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ERAS)
async def test_accepted_connections_carry_nodelay(kind: str, mode: str) -> None:
    with anyio.fail_after(20):
        async with hosted(kind) as target, Client(target.url, mode=mode) as client:
            result = await client.call_tool(target.tool, target.arguments)
            assert not result.is_error, result
            with server_ends(target.port) as ends:
                assert ends, "found no accepted connection on the server's port"
                without = sorted(peer for peer, sock in ends.items() if not nodelay(sock))
                assert without == [], f"accepted connections without TCP_NODELAY: {without}"


# ---- end to end: calls over a keep-alive connection against a deliberate no-NODELAY control ----


class KeepAlive:
    """One MCP client on exactly one keep-alive HTTP connection, speaking raw JSON-RPC.

    Raw rather than `mcp.Client` so each call is one POST on the same connection in both eras,
    the way a gateway or a load generator sends them.
    """

    def __init__(self, http: httpx.AsyncClient, target: Hosted, mode: str) -> None:
        self._http = http
        self._target = target
        self._mode = mode
        self._headers: dict[str, str] = dict(ACCEPT)
        self._next_id = 0
        self.local: tuple[str, int] | None = None

    async def open(self) -> None:
        if self._mode == "legacy":
            response = await self._post(
                "initialize",
                {
                    "protocolVersion": LEGACY_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "nodelay-test", "version": "0"},
                },
            )
            self._headers["mcp-session-id"] = response.headers["mcp-session-id"]
            self._headers["mcp-protocol-version"] = LEGACY_VERSION
            note = await self._http.post(
                self._target.url,
                headers=self._headers,
                json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            )
            assert note.status_code == 202, note.text
        await self.call()

    async def call(self) -> float:
        """Seconds for one `tools/call`, response body read to its end."""
        start = time.perf_counter()
        response = await self._post(
            "tools/call", {"name": self._target.tool, "arguments": self._target.arguments}
        )
        elapsed = time.perf_counter() - start
        assert '"isError":false' in response.text.replace(" ", ""), response.text
        return elapsed

    async def _post(self, method: str, params: dict[str, Any]) -> httpx.Response:
        self._next_id += 1
        headers = dict(self._headers)
        if self._mode == MODERN_VERSION:
            headers |= {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method}
            if method == "tools/call":
                headers["Mcp-Name"] = params["name"]
            params = {
                **params,
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                    "io.modelcontextprotocol/clientInfo": {"name": "nodelay-test", "version": "0"},
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            }
        body = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        response = await self._http.post(self._target.url, headers=headers, json=body)
        assert response.status_code == 200, response.text
        local = response.extensions["network_stream"].get_extra_info("client_addr")
        assert self.local in (None, local), "the client opened a second connection"
        self.local = local
        return response


async def quartile_ms(fast: KeepAlive, control: KeepAlive) -> tuple[float, float]:
    """Lower-quartile milliseconds per call on each connection, measured in alternating blocks."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(ROUNDS):
        for client, into in ((fast, ours), (control, theirs)):
            await client.call()  # the connection sat idle: its first call may be ACKed at once
            into.extend([await client.call() for _ in range(BLOCK)])
    return lower_quartile(ours) * 1e3, lower_quartile(theirs) * 1e3


def lower_quartile(seconds: list[float]) -> float:
    """Robust to a CPU-starved machine: preempted calls stretch the upper part of ours, while
    every call of the control (and, without the fix, of ours) waits out the ACK timer."""
    return statistics.quantiles(seconds, n=4)[0]


def one_connection() -> httpx.AsyncClient:
    return httpx.AsyncClient(limits=httpx.Limits(max_connections=1, max_keepalive_connections=1), timeout=10)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ERAS)
async def test_keepalive_calls_pay_no_delayed_ack(kind: str, mode: str) -> None:
    with anyio.fail_after(30):
        async with hosted(kind) as target, one_connection() as fast_http, one_connection() as slow_http:
            fast, control = KeepAlive(fast_http, target, mode), KeepAlive(slow_http, target, mode)
            await fast.open()
            await control.open()
            with server_ends(target.port) as ends:
                assert control.local is not None
                ends[control.local].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            seen: list[tuple[float, float]] = []
            for _ in range(ATTEMPTS):
                ours_ms, control_ms = await quartile_ms(fast, control)
                seen.append((round(ours_ms, 1), round(control_ms, 1)))
                if control_ms > MIN_SPEEDUP * ours_ms:
                    break
            else:
                pytest.fail(
                    f"lower quartile of ms per call (ours, control with TCP_NODELAY off on the server "
                    f"end), per attempt: {seen}. The control pays the ~40 ms delayed-ACK tax on every "
                    f"call and ours must not, so ours should be > {MIN_SPEEDUP:g}x faster"
                )
