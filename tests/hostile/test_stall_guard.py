"""The stall guard (issue 18): no server of the suite runs one event-loop callback for more than
50 ms of CPU. This first part proves the guard itself: it fails on a handler that holds the loop,
and only then (not on work handed to a thread, nor on a handler that merely waits)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from servers.http import HttpSettings, build_app, serve
from tests.support.loop_cpu import STALL_S, metering, on_own_loop

pytestmark = pytest.mark.anyio


async def settle(base: str) -> None:
    """A round trip after a call: callbacks the call left queued on the server's loop (the end
    of a response, a session's clean-up) run before `/healthz` is answered, so they are charged
    to the call that left them."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        (await http.get("/healthz")).raise_for_status()


# ---- the guard itself: it fails on a handler that holds the loop, and only then ----


def burn(seconds: float) -> None:
    """Spin the calling thread's CPU for `seconds` of CPU time (not wall time)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def build_heavy_server() -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("heavy")

    @server.tool()
    async def on_the_loop(ms: int) -> str:  # pyright: ignore[reportUnusedFunction]
        """Burn `ms` of CPU on the event loop (the bug the guard exists for)."""
        burn(ms / 1000)
        return "done"

    @server.tool()
    async def off_the_loop(ms: int) -> str:  # pyright: ignore[reportUnusedFunction]
        """Burn the same CPU in a worker thread, as the fetcher simplifies HTML."""
        await anyio.to_thread.run_sync(burn, ms / 1000)
        return "done"

    @server.tool()
    async def waiting(ms: int) -> str:  # pyright: ignore[reportUnusedFunction]
        """Take `ms` of wall time without CPU."""
        await anyio.sleep(ms / 1000)
        return "done"

    return server


@contextlib.asynccontextmanager
async def serving_heavy() -> AsyncGenerator[int]:
    settings = HttpSettings(port=0, shutdown_timeout=1.0)
    app = build_app({"/heavy": build_heavy_server()}, settings=settings)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, settings)
        yield port
        tg.cancel_scope.cancel()


async def test_the_guard_catches_a_handler_that_holds_the_loop(anyio_backend: str) -> None:
    with on_own_loop(serving_heavy) as served, metering(served.ident) as guard:
        async with Client(f"http://127.0.0.1:{served.value}/heavy", mode="2026-07-28") as client:
            await client.call_tool("waiting", {"ms": 1})  # warm up
            verdicts: dict[str, list[float]] = {}
            for name in ("on_the_loop", "off_the_loop", "waiting"):
                since = len(guard.slow)
                with guard.during(name), anyio.fail_after(30):
                    result = await client.call_tool(name, {"ms": 120})
                    await settle(f"http://127.0.0.1:{served.value}")
                assert not result.is_error
                verdicts[name] = [c.cpu_s for c in guard.slow[since:] if c.cpu_s > STALL_S]
    [held] = verdicts["on_the_loop"]
    assert 0.120 <= held < 0.5, held
    assert verdicts["off_the_loop"] == []
    assert verdicts["waiting"] == []
    assert all(c.during != "(idle)" for c in guard.stalls()), guard.report()
