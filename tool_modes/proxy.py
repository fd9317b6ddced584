"""Proxy mode: re-serve any MCP server (streamable HTTP URL or stdio command) in a tool mode.

`tello-mcp serve proxy --upstream URL|-- CMD... --mode search` builds on `proxy_server`: one
client session to the upstream for the life of the block, and an `MCPServer` presenting the
upstream's tools in the mode, with its resources, resource templates and prompts forwarded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from mcp import Client
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    GetPromptRequestParams,
    GetPromptResult,
    InputRequiredResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
)

from tool_modes.catalog import Upstream, UpstreamCatalog, connect_upstream
from tool_modes.modes import Mode, build_catalog_server

if TYPE_CHECKING:
    from tool_modes.code import CodeRunner

__all__ = ["Upstream", "proxy_server"]


@contextlib.asynccontextmanager
async def proxy_server(
    upstream: Upstream, mode: Mode, *, name: str | None = None, code_runner: CodeRunner | None = None
) -> AsyncGenerator[MCPServer[Any]]:
    """An `MCPServer` re-serving `upstream` in `mode`, connected for the life of the block."""
    async with connect_upstream(upstream) as catalog:
        info = catalog.client.server_info
        upstream_name = info.name if info is not None else "upstream"
        server_name = name or f"{upstream_name}-{mode}"
        if mode == "standard":
            server: MCPServer[Any] = MCPServer(
                name=server_name, instructions=catalog.client.instructions, subscriptions=False
            )
            _forward_tools(server, catalog)
        else:
            server = build_catalog_server(
                catalog,
                mode,
                name=server_name,
                title=info.title if info is not None else None,
                instructions=catalog.client.instructions,
                code_runner=code_runner,
            )
        _forward_resources_and_prompts(server, catalog.client)
        yield server


def _forward_tools(server: MCPServer[Any], catalog: UpstreamCatalog) -> None:
    low = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]

    async def list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=await catalog.list_tools())

    async def call_tool(
        ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult | InputRequiredResult:
        context: Context[Any, Any] = Context(request_context=ctx, mcp_server=server, input_params=params)
        return await catalog.call(params.name, params.arguments or {}, context)

    low.add_request_handler("tools/list", PaginatedRequestParams, list_tools)
    low.add_request_handler("tools/call", CallToolRequestParams, call_tool)


def _forward_resources_and_prompts(server: MCPServer[Any], client: Client) -> None:
    """The upstream's resources and prompts, asked for on each request (nothing cached)."""
    low = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    caps = client.server_capabilities

    async def list_resources(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        return await client.list_resources(cursor=params.cursor if params else None)

    async def list_templates(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourceTemplatesResult:
        return await client.list_resource_templates(cursor=params.cursor if params else None)

    async def read_resource(
        ctx: ServerRequestContext[Any], params: ReadResourceRequestParams
    ) -> ReadResourceResult:
        return await client.read_resource(str(params.uri))

    async def list_prompts(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListPromptsResult:
        return await client.list_prompts(cursor=params.cursor if params else None)

    async def get_prompt(ctx: ServerRequestContext[Any], params: GetPromptRequestParams) -> GetPromptResult:
        return await client.get_prompt(params.name, params.arguments)

    if caps.resources is not None:
        low.add_request_handler("resources/list", PaginatedRequestParams, list_resources)
        low.add_request_handler("resources/templates/list", PaginatedRequestParams, list_templates)
        low.add_request_handler("resources/read", ReadResourceRequestParams, read_resource)
    if caps.prompts is not None:
        low.add_request_handler("prompts/list", PaginatedRequestParams, list_prompts)
        low.add_request_handler("prompts/get", GetPromptRequestParams, get_prompt)
