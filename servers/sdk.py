"""The MCP SDK internals the suite reaches into, and nothing else does.

`MCPServer` has no public way to serve `resources/subscribe` (its low-level server does), a
request's `ServerSession` is a per-request proxy with no public path to the connection that
identifies a subscriber, and there is no public "is this tool registered" short of listing
them all, nor a count of the open sessions. These accesses live here, checked by type, and
`tests/serving/test_sdk_internals.py` exercises them: an SDK upgrade that moves them fails
there, loudly, not somewhere in a subscription.
"""

from __future__ import annotations

from typing import Any

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager


class SdkChanged(RuntimeError):
    """An SDK internal we rely on is gone or changed type."""


def lowlevel(server: MCPServer[Any]) -> Server[Any]:
    """The low-level server behind `server` (for request handlers MCPServer does not offer)."""
    low: object = getattr(server, "_lowlevel_server", None)
    if not isinstance(low, Server):
        raise SdkChanged(f"MCPServer._lowlevel_server is {type(low).__name__}, not mcp Server")
    return low  # pyright: ignore[reportUnknownVariableType]


def has_tool(server: MCPServer[Any], name: str) -> bool:
    """Whether `server` has a tool called `name` (without building the whole tools list)."""
    manager: object = getattr(server, "_tool_manager", None)
    get_tool: object = getattr(manager, "get_tool", None)
    if not callable(get_tool):
        raise SdkChanged(f"MCPServer._tool_manager.get_tool is missing (manager: {type(manager).__name__})")
    return get_tool(name) is not None


def connection_of(ctx: ServerRequestContext[Any]) -> Connection:
    """The connection behind a request: stable for a handshake-era session's lifetime."""
    connection: object = getattr(ctx.session, "_connection", None)
    if not isinstance(connection, Connection):
        raise SdkChanged(f"ServerSession._connection is {type(connection).__name__}, not Connection")
    return connection


def session_count(manager: StreamableHTTPSessionManager) -> int:
    """Handshake-era sessions a mount's session manager holds open (for `/metrics`)."""
    sessions: object = getattr(manager, "_server_instances", None)
    if not isinstance(sessions, dict):
        raise SdkChanged(f"StreamableHTTPSessionManager._server_instances is {type(sessions).__name__}")
    return len(sessions)  # pyright: ignore[reportUnknownArgumentType]
