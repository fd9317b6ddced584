"""The everything server behind a real `mcp.Client`: in memory or over HTTP, in either era.

Timings are shrunk (`FAST`) so a research query or a long-running operation takes
milliseconds; nothing here sleeps, every wait is an event bounded by `anyio.fail_after`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Final

import anyio
import mcp_types as types
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from servers.everything import EverythingSettings, build_everything_server
from servers.http import HttpSettings, build_app, serve
from tests.support.eras import ERAS

PATH: Final = "/everything"
TRANSPORTS: Final = ("memory-legacy", "memory-2026-07-28", "http-legacy", "http-2026-07-28")
FAST: Final = EverythingSettings(research_stage_s=0.005, long_running_duration_s=0.05)
WAIT: Final = 10.0
"""Real seconds any one test step may take before the test fails."""


def http_settings() -> HttpSettings:
    return HttpSettings(port=0, shutdown_timeout=1.0)


@contextlib.asynccontextmanager
async def serving(*servers: MCPServer[Any], http: HttpSettings | None = None) -> AsyncGenerator[list[str]]:
    """Each server in its own `servers.http` app on 127.0.0.1 (port 0); their MCP URLs."""
    http = http or http_settings()
    async with anyio.create_task_group() as tg:
        urls: list[str] = []
        for server in servers:
            port: int = await tg.start(serve, build_app({PATH: server}, settings=http), http)
            urls.append(f"http://127.0.0.1:{port}{PATH}")
        try:
            yield urls
        finally:
            tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def connect(
    transport: str, url: str | None = None, settings: EverythingSettings = FAST, **client_options: Any
) -> AsyncGenerator[Client]:
    """`transport` is `memory-<era>` (a fresh in-process server with `settings`) or `http-<era>`
    (the server at `url`, or a fresh one with `settings` served by `servers.http`)."""
    kind, mode = transport.split("-", 1)
    assert mode in ERAS, transport
    if kind == "memory":
        async with Client(build_everything_server(settings), mode=mode, **client_options) as client:
            yield client
        return
    assert kind == "http", transport
    if url is not None:
        async with Client(url, mode=mode, **client_options) as client:
            yield client
        return
    async with (
        serving(build_everything_server(settings)) as (fresh,),
        Client(fresh, mode=mode, **client_options) as c,
    ):
        yield c


def mode_of(transport: str) -> str:
    return transport.split("-", 1)[1]


def texts(result: CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, TextContent)]


def ok(result: CallToolResult) -> CallToolResult:
    assert not result.is_error, texts(result)
    return result


async def call(client: Client, name: str, arguments: Mapping[str, Any] | None = None) -> CallToolResult:
    with anyio.fail_after(WAIT):
        return ok(await client.call_tool(name, dict(arguments or {})))


def single_text(result: types.ReadResourceResult) -> types.TextResourceContents:
    (content,) = result.contents
    assert isinstance(content, types.TextResourceContents)
    return content


def single_blob(result: types.ReadResourceResult) -> types.BlobResourceContents:
    (content,) = result.contents
    assert isinstance(content, types.BlobResourceContents)
    return content
