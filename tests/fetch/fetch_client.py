"""Calling the fetch tool through a real MCP client, in memory."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from servers.fetch import FetchSettings, build_fetch_server


def text_of(result: CallToolResult) -> str:
    parts = [c.text for c in result.content if isinstance(c, TextContent)]
    assert len(parts) == 1, result.content
    return parts[0]


async def call(
    target: FetchSettings | MCPServer[Any], url: str, *, mode: str = "legacy", **arguments: Any
) -> CallToolResult:
    server = target if isinstance(target, MCPServer) else build_fetch_server(target)
    async with Client(server, mode=mode) as client:  # pyright: ignore[reportArgumentType]
        return await client.call_tool("fetch", {"url": url, **arguments})


async def fetched(target: FetchSettings | MCPServer[Any], url: str, **arguments: Any) -> str:
    """The tool's text for a fetch that must succeed."""
    result = await call(target, url, **arguments)
    assert not result.is_error, text_of(result)
    return text_of(result)


async def refused(target: FetchSettings | MCPServer[Any], url: str, rule: str, **arguments: Any) -> str:
    """The tool's error text for a fetch that must be refused by `rule` (named in the text)."""
    result = await call(target, url, **arguments)
    text = text_of(result)
    assert result.is_error, text
    assert f"Refused by rule '{rule}'" in text, text
    return text
