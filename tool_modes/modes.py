"""`build_mode_server`: one MCP server's tools presented in a tool mode, as a new MCP server.

| mode | tools the agent sees |
|---|---|
| standard | every inner tool, unchanged (the inner server itself) |
| search | `get_tool`, `invoke_tool` |
| code | `run_code` |
| codesearch | `get_tool`, `run_code` |

A mode server is a facade: it owns no tools of its own. Resources, resource templates,
prompts, completions and subscriptions (`resources/subscribe` in the handshake era,
`subscriptions/listen` in 2026-07-28) are the inner server's handlers, served unchanged, so
a resource update published by the inner server reaches subscribers of every mode path.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, get_args

import structlog
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import (
    CallToolResult,
    GetPromptRequestParams,
    InputRequiredResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    Tool,
    ToolAnnotations,
)
from pydantic import Field

from servers.auth.scopes import refuse_mode_tool
from servers.validation import StrictToolsServer
from tool_modes.catalog import ServerCatalog, ToolCatalog, error_result, terminal
from tool_modes.search import (
    DEFAULT_MATCHES,
    MAX_MATCHES,
    NOTHING_CALLED,
    SearchFacade,
    argument_refusal,
    matches_result,
)

if TYPE_CHECKING:
    # Only the caller builds and starts the sandbox; search mode never loads it.
    from tool_modes.code import CodeRunner

__all__ = [
    "MODES",
    "Mode",
    "build_catalog_server",
    "build_mode_server",
    "mode_mounts",
    "share_resources",
]

Mode = Literal["standard", "search", "code", "codesearch"]
MODES: Final[tuple[Mode, ...]] = get_args(Mode)

SHARED_METHODS: Final = (
    "resources/subscribe",
    "resources/unsubscribe",
    "subscriptions/listen",
    "completion/complete",
    "logging/setLevel",
)
"""Requests a mode server answers with the inner server's own handler."""

Refusal = Callable[[str], str | None]
"""Why the caller may not use a mode tool (by its name), or None when it may."""

INDEX_NAMES_UP_TO: Final = 40
"""`get_tool`'s description lists every tool name while there are at most this many."""

_log = structlog.get_logger("tool_modes.modes")

RUN_CODE_ARG = "JavaScript to run; the tools are async global functions (see the API above)"

GET_TOOL = """\
Find the right tool among this server's {count} tools. Give a tool name or a few words \
saying what you need done{examples}. Returns the best matches, \
best first, each with its full description and input schema, so you can call it straight \
away with {caller}{how}.{names}"""

INVOKE_TOOL = """\
Call one of this server's tools by name. `arguments` must match the input schema that \
get_tool returned for it; a mismatch comes back as an error naming the field and the fix, \
and nothing is called. Returns the tool's own result unchanged (text, images, structured \
content, errors)."""

_MODE_NOTE = {
    "search": "Here the tools are reached through get_tool (find a tool and its schema) and "
    "invoke_tool (call it).",
    "code": "Here the tools are called from JavaScript with run_code.",
    "codesearch": "Here the tools are found with get_tool and called from JavaScript with run_code.",
}


def build_mode_server(
    inner: MCPServer[Any],
    mode: Mode,
    *,
    name: str | None = None,
    code_runner: CodeRunner | None = None,
) -> MCPServer[Any]:
    """`inner`'s tools in `mode`, over `inner`'s resources and prompts.

    Standard returns `inner` itself. Code modes need a started `tool_modes.code.CodeRunner`
    (its worker pool outlives the server; one runner can serve several mode servers).
    """
    if mode == "standard":
        return inner
    server = build_catalog_server(
        ServerCatalog(inner),
        mode,
        name=name or f"{inner.name}-{mode}",
        title=inner.title,
        instructions=inner.instructions,
        version=inner.version,
        code_runner=code_runner,
        refuse=lambda tool: refuse_mode_tool(inner, tool),
    )
    share_resources(inner, server)
    return server


def mode_mounts(
    inner: MCPServer[Any],
    path: str,
    *,
    modes: Sequence[Mode] = MODES,
    code_runner: CodeRunner | None = None,
) -> dict[str, MCPServer[Any]]:
    """`inner` at `path` and each other mode at `path-mode` (`/drone`, `/drone-search`, ...),
    for `servers.http.build_app`. Code modes are left out when there is no `code_runner`."""
    mounts: dict[str, MCPServer[Any]] = {}
    for mode in modes:
        if mode in ("code", "codesearch") and code_runner is None:
            continue
        at = path if mode == "standard" else f"{path}-{mode}"
        mounts[at] = build_mode_server(inner, mode, code_runner=code_runner)
    return mounts


def build_catalog_server(
    catalog: ToolCatalog,
    mode: Mode,
    *,
    name: str,
    title: str | None = None,
    instructions: str | None = None,
    version: str = "",
    code_runner: CodeRunner | None = None,
    refuse: Refusal | None = None,
) -> MCPServer[Any]:
    """A server presenting `catalog`'s tools in `mode` (no resources or prompts of its own).

    `refuse(tool)` says why the caller may not use a mode tool (its scope), or None; the
    inner tools are still checked one by one by the catalog's own server."""
    allowed: Refusal = refuse or (lambda _tool: None)
    if mode == "standard":
        raise ValueError("standard mode serves the inner server itself; there is no facade to build")
    if mode in ("code", "codesearch") and code_runner is None:
        raise ValueError(f"{mode} mode needs a started tool_modes.code.CodeRunner (code_runner=...)")
    note = _MODE_NOTE[mode]
    # Strict: the facade's own tools are closed and refuse in the suite's one wording too.
    server = StrictToolsServer(
        name=name,
        title=title,
        instructions=f"{instructions.rstrip()}\n\n{note}" if instructions else note,
        version=version,
        subscriptions=False,
    )
    server.refused = NOTHING_CALLED
    search = SearchFacade(catalog, call_as=_js_names() if mode == "codesearch" else None)
    descriptions: dict[str, Callable[[list[Tool]], str]] = {}

    if mode in ("search", "codesearch"):
        _add_get_tool(
            server, search, "invoke_tool" if mode == "search" else "run_code", descriptions, allowed
        )

    if mode == "search":

        @server.tool(
            name="invoke_tool", title="Call a tool", description=INVOKE_TOOL, structured_output=False
        )
        async def invoke_tool(  # pyright: ignore[reportUnusedFunction]
            name: Annotated[str, Field(description="the tool's exact name, as get_tool returned it")],
            ctx: Context[Any, Any],
            arguments: Annotated[
                dict[str, Any] | None, Field(description="the tool's arguments, matching its input schema")
            ] = None,
        ) -> CallToolResult | InputRequiredResult:
            refused = allowed("invoke_tool")
            if refused is not None:
                return error_result(refused)
            return await search.invoke_tool(name, arguments, ctx)

    if mode in ("code", "codesearch") and code_runner is not None:
        _add_run_code(server, catalog, code_runner, allowed)
        runner = code_runner
        descriptions["run_code"] = lambda tools: runner.describe(tools, index_only=mode == "codesearch")

    _describe_tools_at_list_time(server, catalog, descriptions)
    _log.debug("mode_server_built", name=name, mode=mode)
    return server


def _js_names() -> Callable[[Sequence[Tool]], Mapping[str, str]]:
    """The sandbox's tool-name -> JavaScript-function mapping (`get-sum` is `get_sum()`)."""
    from tool_modes.sandbox.api import js_names

    return js_names


def _add_get_tool(
    server: MCPServer[Any],
    search: SearchFacade,
    caller: str,
    descriptions: dict[str, Callable[[list[Tool]], str]],
    allowed: Refusal,
) -> None:
    @server.tool(
        name="get_tool",
        title="Find a tool",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
        structured_output=False,
    )
    async def get_tool(  # pyright: ignore[reportUnusedFunction]
        query: Annotated[str, Field(description="a tool name, or a few words for what you need done")],
        limit: Annotated[
            int, Field(ge=1, le=MAX_MATCHES, description=f"how many matches at most (1..{MAX_MATCHES})")
        ] = DEFAULT_MATCHES,
    ) -> CallToolResult:
        denied = allowed("get_tool")
        if denied is not None:
            return error_result(denied)
        refused = search.refuse_query(query)
        if refused is not None:
            return refused
        return matches_result(await search.get_tool(query, limit))

    how = " (in a script, as the function `call_as` or else `name`)" if caller == "run_code" else ""
    descriptions["get_tool"] = lambda tools: GET_TOOL.format(
        count=len(tools), caller=caller, how=how, names=_names(tools), examples=_examples(tools)
    )


def _add_run_code(server: MCPServer[Any], catalog: ToolCatalog, runner: CodeRunner, allowed: Refusal) -> None:
    @server.tool(
        name="run_code", title="Run a script", description="(described at list time)", structured_output=False
    )
    async def run_code(  # pyright: ignore[reportUnusedFunction]
        code: Annotated[str, Field(description=RUN_CODE_ARG)], ctx: Context[Any, Any]
    ) -> CallToolResult:
        refused = allowed("run_code")
        if refused is not None:
            return error_result(refused)
        tools = await catalog.list_tools()
        by_name = {t.name: t for t in tools}

        async def call(name: str, arguments: dict[str, Any]) -> CallToolResult:
            tool = by_name.get(name)
            if tool is None:
                return error_result(f"there is no tool named {name!r}")
            refused = argument_refusal(catalog, tool, arguments, tools)
            if refused is not None:
                return error_result(refused)
            # A script cannot be suspended for an input_required round: such a call fails.
            return terminal(await catalog.call(name, arguments, ctx, resumable=False), name)

        async def on_progress(calls: float, message: str) -> None:
            await ctx.report_progress(calls, None, message)

        outcome = await runner.run(code, tools, call, on_progress=on_progress)
        return outcome.to_result()


def _examples(tools: list[Tool]) -> str:
    """` (e.g. "battery level", "take off")`: what two of the served tools do, in their own
    titles where those say more than the name, so the example fits any server."""

    def spaced(name: str) -> str:
        return " ".join(w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+|\d+", name))

    telling = [t.title.lower() for t in tools if t.title and t.title.lower() != spaced(t.name)]
    words = (telling + [spaced(t.name) for t in tools])[:2]
    return " (e.g. " + ", ".join(f'"{w}"' for w in words) + ")" if words else ""


def _names(tools: list[Tool]) -> str:
    if not tools or len(tools) > INDEX_NAMES_UP_TO:
        return ""
    return " Tools: " + ", ".join(t.name for t in tools) + "."


def _describe_tools_at_list_time(
    server: MCPServer[Any], catalog: ToolCatalog, descriptions: dict[str, Callable[[list[Tool]], str]]
) -> None:
    """Fill the facade tools' descriptions from the catalog's tools as they are when listed
    (counts, names, a generated API), so a changing inner tool set is never described stale."""
    low = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    entry = low.get_request_handler("tools/list")
    assert entry is not None, "MCPServer always serves tools/list"
    listed: Callable[[ServerRequestContext[Any], PaginatedRequestParams | None], Awaitable[Any]] = (
        entry.handler
    )

    async def list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        result = ListToolsResult.model_validate(await listed(ctx, params))
        inner = await catalog.list_tools()
        tools = [
            t.model_copy(update={"description": descriptions[t.name](inner)}) if t.name in descriptions else t
            for t in result.tools
        ]
        return result.model_copy(update={"tools": tools})

    low.add_request_handler("tools/list", PaginatedRequestParams, list_tools)


def share_resources(inner: MCPServer[Any], outer: MCPServer[Any]) -> None:
    """Serve `inner`'s resources, templates, prompts, completions and subscriptions on `outer`.

    Resources and prompts registered on `outer` itself (a mode's own skill text) are served
    beside the inner ones, and win when a URI or prompt name is on both.
    """
    source = inner._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    target = outer._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    for method in SHARED_METHODS:
        entry = source.get_request_handler(method)
        if entry is not None:
            target.add_request_handler(method, entry.params_type, entry.handler)

    list_inner_resources = _handler(inner, "resources/list")
    list_inner_templates = _handler(inner, "resources/templates/list")
    list_inner_prompts = _handler(inner, "prompts/list")

    # The inner handlers answer (with their own paging, if any); the outer server's own entries
    # go in front of the first page.
    async def list_resources(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        page = ListResourcesResult.model_validate(await list_inner_resources(ctx, params))
        own = await outer.list_resources() if params is None or params.cursor is None else []
        mine = {r.uri for r in own}
        return page.model_copy(
            update={"resources": [*own, *(r for r in page.resources if r.uri not in mine)]}
        )

    async def list_templates(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListResourceTemplatesResult:
        page = ListResourceTemplatesResult.model_validate(await list_inner_templates(ctx, params))
        own = await outer.list_resource_templates() if params is None or params.cursor is None else []
        mine = {t.uri_template for t in own}
        theirs = [t for t in page.resource_templates if t.uri_template not in mine]
        return page.model_copy(update={"resource_templates": [*own, *theirs]})

    async def list_prompts(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListPromptsResult:
        page = ListPromptsResult.model_validate(await list_inner_prompts(ctx, params))
        own = await outer.list_prompts() if params is None or params.cursor is None else []
        mine = {p.name for p in own}
        return page.model_copy(update={"prompts": [*own, *(p for p in page.prompts if p.name not in mine)]})

    read_own = _handler(outer, "resources/read")
    read_inner = _handler(inner, "resources/read")
    get_own = _handler(outer, "prompts/get")
    get_inner = _handler(inner, "prompts/get")

    async def read_resource(ctx: ServerRequestContext[Any], params: ReadResourceRequestParams) -> Any:
        own = {str(r.uri) for r in await outer.list_resources()}
        if str(params.uri) in own or await _matches_own_template(outer, str(params.uri)):
            return await read_own(ctx, params)
        return await read_inner(ctx, params)

    async def get_prompt(ctx: ServerRequestContext[Any], params: GetPromptRequestParams) -> Any:
        if params.name in {p.name for p in await outer.list_prompts()}:
            return await get_own(ctx, params)
        return await get_inner(ctx, params)

    target.add_request_handler("resources/list", PaginatedRequestParams, list_resources)
    target.add_request_handler("resources/templates/list", PaginatedRequestParams, list_templates)
    target.add_request_handler("prompts/list", PaginatedRequestParams, list_prompts)
    target.add_request_handler("resources/read", ReadResourceRequestParams, read_resource)
    target.add_request_handler("prompts/get", GetPromptRequestParams, get_prompt)


_Handler = Callable[[ServerRequestContext[Any], Any], Awaitable[Any]]


def _handler(server: MCPServer[Any], method: str) -> _Handler:
    entry = server._lowlevel_server.get_request_handler(method)  # pyright: ignore[reportPrivateUsage]
    assert entry is not None, f"MCPServer always serves {method}"
    return entry.handler


async def _matches_own_template(server: MCPServer[Any], uri: str) -> bool:
    if not await server.list_resource_templates():
        return False
    manager = server._resource_manager  # pyright: ignore[reportPrivateUsage]
    return any(t.matches(uri) is not None for t in manager.list_templates())
