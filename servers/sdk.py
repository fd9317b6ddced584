"""The MCP SDK internals the suite reaches into, and nothing else does.

`MCPServer` has no public way to serve `resources/subscribe` (its low-level server does), a
request's `ServerSession` is a per-request proxy with no public path to the connection that
identifies a subscriber, and there is no public "is this tool registered" short of listing
them all. These accesses live here, checked by type, and
`tests/serving/test_sdk_internals.py` exercises them: an SDK upgrade that moves them fails
there, loudly, not somewhere in a subscription.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, GetPromptRequestParams


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


def _tool_manager_tools(server: MCPServer[Any]) -> list[Any]:
    manager: object = getattr(server, "_tool_manager", None)
    list_tools: object = getattr(manager, "list_tools", None)
    if not callable(list_tools):
        raise SdkChanged(f"MCPServer._tool_manager.list_tools is missing (manager: {type(manager).__name__})")
    return list(cast(Iterable[Any], list_tools()))


def tool_schema(server: MCPServer[Any], name: str) -> dict[str, Any] | None:
    """The input schema `server` registered for tool `name` (None: no such tool), without
    building the whole tools list."""
    manager: object = getattr(server, "_tool_manager", None)
    get_tool: object = getattr(manager, "get_tool", None)
    if not callable(get_tool):
        raise SdkChanged(f"MCPServer._tool_manager.get_tool is missing (manager: {type(manager).__name__})")
    tool: object = get_tool(name)
    if tool is None:
        return None
    schema: object = getattr(tool, "parameters", None)
    if not isinstance(schema, dict):
        raise SdkChanged(f"a registered tool's parameters are {type(schema).__name__}, not a JSON schema")
    return cast(dict[str, Any], schema)


def registered_tools(server: MCPServer[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every tool `server` has, as (name, input schema)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for tool in _tool_manager_tools(server):
        name: object = getattr(tool, "name", None)
        schema: object = getattr(tool, "parameters", None)
        if not isinstance(name, str) or not isinstance(schema, dict):
            raise SdkChanged("a registered tool has no name or no JSON schema")
        out.append((name, cast(dict[str, Any], schema)))
    return out


def has_output_schema(server: MCPServer[Any], name: str) -> bool:
    """Whether `server`'s tool `name` declares structured output (its result is the SDK's)."""
    manager: object = getattr(server, "_tool_manager", None)
    get_tool: object = getattr(manager, "get_tool", None)
    if not callable(get_tool):
        raise SdkChanged(f"MCPServer._tool_manager.get_tool is missing (manager: {type(manager).__name__})")
    tool: object = get_tool(name)
    return tool is not None and getattr(tool, "output_schema", None) is not None


def session_count(manager: StreamableHTTPSessionManager) -> int:
    """Handshake-era sessions a mount's session manager holds open (for `/metrics`)."""
    sessions: object = getattr(manager, "_server_instances", None)
    if not isinstance(sessions, dict):
        raise SdkChanged(f"StreamableHTTPSessionManager._server_instances is {type(sessions).__name__}")
    return len(sessions)  # pyright: ignore[reportUnknownArgumentType]


def set_tool_input_schema(server: MCPServer[Any], name: str, schema: Mapping[str, Any]) -> None:
    """List tool `name` with `schema` as its input schema, verbatim.

    `MCPServer` derives a tool's schema from its signature; a schema using JSON Schema 2020-12
    keywords a signature cannot produce (`$defs` with `$anchor`, `if`/`then`/`else`) is set here.
    The arguments are still validated against the signature's model when the tool runs.
    """
    manager: object = getattr(server, "_tool_manager", None)
    get_tool: object = getattr(manager, "get_tool", None)
    if not callable(get_tool):
        raise SdkChanged(f"MCPServer._tool_manager.get_tool is missing (manager: {type(manager).__name__})")
    tool: object = get_tool(name)
    if tool is None:
        raise KeyError(f"no tool {name!r}")
    if not isinstance(getattr(tool, "parameters", None), dict):
        raise SdkChanged(f"Tool.parameters of {name!r} is not a JSON Schema dict")
    setattr(tool, "parameters", dict(schema))  # noqa: B010 - typed through the checks above


def prompt_errors_as_invalid_params(server: MCPServer[Any]) -> None:
    """Answer `prompts/get` for an unknown prompt or bad arguments with -32602 in both eras.

    `MCPServer` turns every prompt failure into a `ValueError`; the handshake era sends its text
    with a generic code, and 2026-07-28 hides it as "Internal server error". A `ValueError` at
    the root of the chain is what the SDK raises for an unknown name or missing arguments, and
    what our prompts raise for a bad argument, so it becomes invalid-params with that root's
    message (not the SDK's "Error rendering prompt"); any other root (a bug in a prompt) stays
    an internal error.
    """
    low = lowlevel(server)
    entry = low.get_request_handler("prompts/get")
    if entry is None:
        raise SdkChanged("MCPServer registers no prompts/get handler")
    inner = entry.handler

    async def get_prompt(ctx: ServerRequestContext[Any], params: GetPromptRequestParams) -> Any:
        try:
            return await inner(ctx, params)
        except MCPError:
            raise
        except ValueError as exc:
            root: BaseException = exc
            while root.__cause__ is not None:
                root = root.__cause__
            if not isinstance(root, ValueError):
                raise
            raise MCPError(code=INVALID_PARAMS, message=str(root)) from exc

    low.add_request_handler("prompts/get", GetPromptRequestParams, get_prompt)
