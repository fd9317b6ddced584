"""Connect a real MCP client to a mode server: in memory or over HTTP, in either era."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Final

import anyio
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from servers.http import HttpSettings, build_app, serve
from tests.support.eras import ERAS

TRANSPORTS: Final = tuple(f"{where}-{era}" for where in ("memory", "http") for era in ERAS)


@contextlib.asynccontextmanager
async def serving(mounts: Mapping[str, MCPServer[Any]]) -> AsyncGenerator[int]:
    """`mounts` over streamable HTTP on 127.0.0.1 (a free port) for the block; yields the port."""
    settings = HttpSettings(port=0, shutdown_timeout=1.0)
    app = build_app(mounts, settings=settings)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, settings)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def connect(server: MCPServer[Any], transport: str, **client: Any) -> AsyncGenerator[Client]:
    """A `Client` on `server`: `transport` is "memory-<era>" or "http-<era>"."""
    where, era = transport.split("-", 1)
    if where == "memory":
        async with Client(server, mode=era, **client) as connected:
            yield connected
        return
    async with (
        serving({"/mode": server}) as port,
        Client(f"http://127.0.0.1:{port}/mode", mode=era, **client) as connected,
    ):
        yield connected


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def json_of(result: CallToolResult) -> Any:
    return json.loads(text_of(result))
