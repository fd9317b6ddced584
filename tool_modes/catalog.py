"""The inner tool set a mode presents: its tool definitions, and a way to call one.

Two implementations of one protocol:

* `ServerCatalog` - an `MCPServer` in this process. A call goes through the inner server's own
  `tools/call` handler with the *outer* request's context, so the inner tool reports progress
  and elicits on the outer request exactly as it would in Standard mode: mid-call in the
  handshake era; in 2026-07-28 its `InputRequiredResult` travels out as the outer result, and
  the client's retry (with `input_responses`/`request_state`) is handed back to the inner tool.
* `UpstreamCatalog` - another MCP server over a client session (streamable HTTP or stdio),
  for proxy mode. Progress is forwarded. The upstream's questions (elicitation, sampling,
  roots) go to the outer client: passed through as `input_required` rounds to a 2026-07-28
  client, asked mid-call of a handshake-era one; declined (elicitation) or refused (the
  others) when the outer client did not declare the capability. A handshake-era upstream asks
  mid-call, which a 2026-07-28 outer request cannot wait for: declined.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

import structlog
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import StdioServerParameters
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    INVALID_REQUEST,
    CallToolRequestParams,
    CallToolResult,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    ElicitRequest,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
    InputRequest,
    InputRequiredResult,
    InputResponse,
    ListRootsRequest,
    ListRootsResult,
    TextContent,
    Tool,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from servers.validation import StrictToolsServer

__all__ = [
    "ServerCatalog",
    "ToolCatalog",
    "Upstream",
    "UpstreamCatalog",
    "connect_upstream",
    "error_result",
    "terminal",
]

_log = structlog.get_logger("tool_modes.catalog")

MAX_INPUT_ROUNDS: Final = 10
"""`input_required` rounds a proxied call may take before it is given up as an error (the SDK
clients' default; a staged tool may take a round per stage, with or without questions)."""


def error_result(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def terminal(result: CallToolResult | InputRequiredResult, name: str) -> CallToolResult:
    """A result that needs no further round: where a call cannot be resumed (inside a script),
    a tool that still asks for input fails with a message saying what would have been asked."""
    if isinstance(result, CallToolResult):
        return result
    questions = [
        r.params.message for r in (result.input_requests or {}).values() if isinstance(r, ElicitRequest)
    ]
    asked = f" (it asked: {'; '.join(questions)})" if questions else ""
    return error_result(
        f"{name} needs an answer from the user that cannot be collected here{asked}. "
        "Call it directly (invoke_tool, or the tool itself), or pass the arguments that make the "
        "answer unnecessary."
    )


def model_may_see(meta: Mapping[str, Any] | None) -> bool:
    """Whether a tool with this `_meta` is the model's: MCP Apps marks a tool for its app only
    with `_meta.ui.visibility` leaving out "model" (absent means both)."""
    ui: object = (meta or {}).get("ui")
    if not isinstance(ui, Mapping):
        return True
    visibility: object = cast("Mapping[str, object]", ui).get("visibility")
    return not isinstance(visibility, list) or "model" in cast("list[object]", visibility)


def for_the_model(tools: list[Tool]) -> list[Tool]:
    """A catalog is what a mode shows its model (search results, a script's API), so app-only
    tools are not in it."""
    return [t for t in tools if model_may_see(t.meta)]


class ToolCatalog(Protocol):
    """The tools behind a mode, and how to call one on behalf of an outer request."""

    async def list_tools(self) -> list[Tool]: ...

    async def call(
        self,
        name: str,
        arguments: dict[str, Any],
        ctx: Context[Any, Any] | None = None,
        *,
        resumable: bool = True,
    ) -> CallToolResult | InputRequiredResult:
        """Call `name`. With `ctx`, progress and elicitation go to that outer request's client.

        `resumable` is whether an `InputRequiredResult` may be returned (and the outer
        request's `input_responses`/`request_state` belong to this call): true for a direct
        facade call like `invoke_tool`, false for calls made from inside a script.
        """
        ...


def _is_modern(ctx: Context[Any, Any]) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


class ServerCatalog:
    """The tools of an in-process `MCPServer`, called with the outer request's context."""

    def __init__(self, server: MCPServer[Any]) -> None:
        self.server = server
        self.checks_arguments = isinstance(server, StrictToolsServer)
        """A server of the suite refuses bad arguments itself, in its own Standard words."""

    async def list_tools(self) -> list[Tool]:
        return for_the_model(await self.server.list_tools())

    async def call(
        self,
        name: str,
        arguments: dict[str, Any],
        ctx: Context[Any, Any] | None = None,
        *,
        resumable: bool = True,
    ) -> CallToolResult | InputRequiredResult:
        if ctx is None:
            try:
                return await self.server.call_tool(name, arguments)
            except ToolError as exc:
                return error_result(str(exc))
        # The inner server's own tools/call handler (its error mapping and any extension
        # interceptors included), on the outer request: the session it reports progress and
        # elicits on is scoped to that request.
        entry = self.server._lowlevel_server.get_request_handler("tools/call")  # pyright: ignore[reportPrivateUsage]
        if entry is None:
            return error_result(f"Unknown tool: {name}")
        params = CallToolRequestParams(
            name=name,
            arguments=arguments,
            input_responses=ctx.input_responses if resumable else None,
            request_state=ctx.request_state if resumable else None,
        )
        result = await entry.handler(ctx.request_context, params)
        if isinstance(result, CallToolResult | InputRequiredResult):
            return result if resumable else terminal(result, name)
        return CallToolResult.model_validate(result)


@dataclass(frozen=True, slots=True)
class Upstream:
    """An MCP server to re-serve: a streamable HTTP URL, or a command speaking stdio."""

    url: str | None = None
    command: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    mode: str = "auto"
    """`Client(mode=...)` towards the upstream: "auto" probes and falls back to the handshake."""

    def __post_init__(self) -> None:
        if (self.url is None) == (not self.command):
            raise ValueError("an upstream is either a URL or a command, exactly one of them")

    @classmethod
    def http(cls, url: str, *, mode: str = "auto") -> Upstream:
        return cls(url=url, mode=mode)

    @classmethod
    def stdio(
        cls, *command: str, env: Mapping[str, str] | None = None, cwd: str | None = None, mode: str = "auto"
    ) -> Upstream:
        return cls(command=tuple(command), env=env, cwd=cwd, mode=mode)

    def target(self) -> str | StdioServerParameters:
        if self.url is not None:
            return self.url
        return StdioServerParameters(
            command=self.command[0],
            args=list(self.command[1:]),
            env=dict(self.env) if self.env is not None else None,
            cwd=self.cwd,
        )

    def __str__(self) -> str:
        return self.url if self.url is not None else " ".join(self.command)


class UpstreamCatalog:
    """The tools of an upstream MCP server, over one client session (see `connect_upstream`).

    The session declares elicitation, sampling and roots, so the upstream's tools ask as
    they would ask any capable client; each question goes to the outer client, and is
    declined (or refused) when that client did not declare the capability.
    """

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.tools: list[Tool] = []
        self._callers: list[Context[Any, Any]] = []
        self.client = Client(
            upstream.target(),
            mode=upstream.mode,
            elicitation_callback=self._elicitation,
            sampling_callback=self._sampling,
            list_roots_callback=self._list_roots,
        )

    async def refresh(self) -> None:
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(1000):  # pages; bounded against a server that never stops paging
            page = await self.client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if cursor is None:
                break
        self.tools = tools

    async def list_tools(self) -> list[Tool]:
        return for_the_model(self.tools)

    async def call(
        self,
        name: str,
        arguments: dict[str, Any],
        ctx: Context[Any, Any] | None = None,
        *,
        resumable: bool = True,
    ) -> CallToolResult | InputRequiredResult:
        async def progress(progress: float, total: float | None, message: str | None) -> None:
            if ctx is not None:
                await ctx.report_progress(progress, total, message)

        responses = ctx.input_responses if ctx is not None and resumable else None
        state = ctx.request_state if ctx is not None and resumable else None
        if ctx is not None:
            self._callers.append(ctx)
        try:
            for _ in range(MAX_INPUT_ROUNDS):
                result = await self.client.session.call_tool(
                    name,
                    arguments,
                    progress_callback=progress,
                    input_responses=responses,
                    request_state=state,
                    allow_input_required=True,
                )
                if isinstance(result, CallToolResult):
                    return result
                requests = (result.input_requests or {}).values()
                if (
                    ctx is not None
                    and resumable
                    and _is_modern(ctx)
                    and all(_can_ask(ctx, r) for r in requests)
                ):
                    return result  # the outer client answers and retries; we pass both through
                responses = {key: await _ask(ctx, r) for key, r in (result.input_requests or {}).items()}
                state = result.request_state
            return error_result(f"{name}: gave up after {MAX_INPUT_ROUNDS} rounds of questions")
        finally:
            if ctx is not None:
                self._callers.remove(ctx)

    def _caller(self) -> Context[Any, Any] | None:
        """The outer request a handshake-era upstream's mid-call question belongs to: the one
        call in flight; with several there is no telling whose call asks, so nobody is asked."""
        return self._callers[0] if len(self._callers) == 1 else None

    async def _elicitation(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        return cast(ElicitResult, await _ask(self._caller(), ElicitRequest(params=params)))

    async def _sampling(
        self, context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult | CreateMessageResultWithTools | ErrorData:
        try:
            answer = await _ask(self._caller(), CreateMessageRequest(params=params))
        except ToolError:
            return _REFUSED
        return answer if isinstance(answer, CreateMessageResult | CreateMessageResultWithTools) else _REFUSED

    async def _list_roots(self, context: ClientRequestContext) -> ListRootsResult | ErrorData:
        try:
            answer = await _ask(self._caller(), ListRootsRequest())
        except ToolError:
            return _REFUSED
        return answer if isinstance(answer, ListRootsResult) else _REFUSED


_REFUSED = ErrorData(code=INVALID_REQUEST, message="the proxied client cannot answer this request")


def _can_ask(ctx: Context[Any, Any], request: InputRequest) -> bool:
    caps = ctx.client_capabilities
    if caps is None:
        return False
    if isinstance(request, ElicitRequest):
        return caps.elicitation is not None
    if isinstance(request, CreateMessageRequest):
        return caps.sampling is not None
    return caps.roots is not None


async def _ask(ctx: Context[Any, Any] | None, request: InputRequest) -> InputResponse:
    """Ask the outer client mid-call (handshake era), or answer for a client that cannot be asked:
    an elicitation is declined, anything else refused."""
    if ctx is None or _is_modern(ctx) or not _can_ask(ctx, request):
        if isinstance(request, ElicitRequest):
            return ElicitResult(action="decline")
        raise ToolError(f"the upstream tool needs {request.method}, which this client cannot answer")
    metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
    if isinstance(request, ElicitRequest):
        return await ctx.session.send_request(request, ElicitResult, metadata=metadata)
    if isinstance(request, CreateMessageRequest):
        kind = CreateMessageResultWithTools if request.params.tools else CreateMessageResult
        return await ctx.session.send_request(request, kind, metadata=metadata)
    return await ctx.session.send_request(request, ListRootsResult, metadata=metadata)


@contextlib.asynccontextmanager
async def connect_upstream(upstream: Upstream) -> AsyncGenerator[UpstreamCatalog]:
    """A session to `upstream` with its tool list loaded; closed on exit."""
    catalog = UpstreamCatalog(upstream)
    async with catalog.client:
        await catalog.refresh()
        _log.info("upstream_connected", upstream=str(upstream), tools=len(catalog.tools))
        yield catalog
