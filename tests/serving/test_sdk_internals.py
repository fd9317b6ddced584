"""The SDK internals `servers/sdk.py` reaches into still exist and have the types we rely on.

An SDK upgrade that moves them fails here, naming the access, instead of silently breaking
handshake-era resource subscriptions."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import EmptyResult, SubscribeRequestParams

from servers.sdk import connection_of, has_tool, lowlevel

pytestmark = pytest.mark.anyio


def test_lowlevel_server_is_reachable() -> None:
    assert isinstance(lowlevel(MCPServer(name="probe")), Server)


def test_has_tool_sees_registered_tools_only() -> None:
    server = MCPServer(name="probe")

    @server.tool()
    def ping() -> str:  # pyright: ignore[reportUnusedFunction]
        return "pong"

    assert has_tool(server, "ping")
    assert not has_tool(server, "pong")


async def test_connection_of_a_request_is_stable_across_requests() -> None:
    server = MCPServer(name="probe")
    seen: list[Connection] = []

    async def subscribe(ctx: ServerRequestContext[Any], params: SubscribeRequestParams) -> EmptyResult:
        seen.append(connection_of(ctx))
        return EmptyResult()

    lowlevel(server).add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    async with Client(server, mode="legacy") as client:
        with anyio.fail_after(10):
            for uri in ("probe://a", "probe://b"):
                with pytest.warns(MCPDeprecationWarning):  # the handshake era's way
                    await client.subscribe_resource(uri)
    assert len(seen) == 2
    assert seen[0] is seen[1]
