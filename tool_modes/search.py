"""Search mode: `get_tool` finds tools by name or need, `invoke_tool` calls one.

Both work on any `ToolCatalog`. A mistake in `invoke_tool`'s arguments comes back as one
`isError` result naming every bad field and how to fix it, and nothing is called, in the words
the tool's own server uses (`servers.validation`): a server of the suite refuses them itself,
exactly as on its Standard path; any other catalog's calls are checked here first against the
tool's input schema by the same engine. A valid call returns the inner result unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import structlog
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult, TextContent, Tool
from pydantic import BaseModel, Field

from servers.validation import argument_problems, dedent, refusal
from tool_modes.bounds import MAX_NAME_CHARS, MAX_QUERY_CHARS, too_long, transportable
from tool_modes.catalog import ToolCatalog, error_result
from tool_modes.ranking import ToolIndex

__all__ = [
    "DEFAULT_MATCHES",
    "MAX_MATCHES",
    "SearchFacade",
    "ToolMatch",
    "ToolMatches",
    "argument_refusal",
    "check_arguments",
]

DEFAULT_MATCHES: Final = 3
MAX_MATCHES: Final = 10

_log = structlog.get_logger("tool_modes.search")


class ToolMatch(BaseModel):
    name: str
    call_as: str | None = Field(default=None, description="the script function, where it differs from name")
    title: str | None = None
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any] | None = Field(default=None, description="behaviour hints (read-only, ...)")


class ToolMatches(BaseModel):
    query: str
    matches: list[ToolMatch]
    note: str | None = Field(default=None, description="why nothing (or little) matched, and what to try")
    tool_names: list[str] | None = Field(default=None, description="every tool, when nothing matched")


def _match(tool: Tool, call_as: str | None = None) -> ToolMatch:
    return ToolMatch(
        name=tool.name,
        call_as=call_as if call_as != tool.name else None,
        title=tool.title,
        description=dedent(tool.description) or "",
        input_schema=tool.input_schema,
        annotations=tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
        if tool.annotations is not None
        else None,
    )


class SearchFacade:
    """`get_tool` and `invoke_tool` over one catalog; the ranking index follows its tool list."""

    def __init__(
        self, catalog: ToolCatalog, *, call_as: Callable[[Sequence[Tool]], Mapping[str, str]] | None = None
    ) -> None:
        """`call_as` names each tool as scripts call it (CodeSearch: JavaScript identifiers)."""
        self.catalog = catalog
        self._call_as = call_as
        self._aliases: Mapping[str, str] = {}
        self._index: ToolIndex | None = None
        self._indexed: tuple[Tool, ...] = ()

    async def index(self) -> ToolIndex:
        tools = tuple(await self.catalog.list_tools())
        if self._index is None or tools != self._indexed:
            self._index, self._indexed = ToolIndex(tools), tools
            self._aliases = self._call_as(tools) if self._call_as is not None else {}
        return self._index

    def refuse_query(self, query: str) -> CallToolResult | None:
        """The refusal of a query too long to rank on the event loop in a few milliseconds."""
        problem = too_long("query", query, MAX_QUERY_CHARS, nothing="nothing was searched")
        return error_result(f"get_tool: {problem}") if problem else None

    async def get_tool(self, query: str, limit: int = DEFAULT_MATCHES) -> ToolMatches:
        if len(query) > MAX_QUERY_CHARS:
            raise ValueError(f"query must be at most {MAX_QUERY_CHARS} characters (got {len(query)})")
        index = await self.index()
        limit = max(1, min(limit, MAX_MATCHES))
        found = index.search(query, limit=limit)
        names = [t.name for t in index.tools]
        _log.info("get_tool", query=query, matches=[m.tool.name for m in found])
        if not found:
            what = "an empty query" if not query.strip() else f"nothing matches {query!r}"
            return ToolMatches(
                query=query,
                matches=[],
                note=f"{what}: search with a tool name or a few words for what you need done, "
                "or pick one of tool_names",
                tool_names=names,
            )
        note = None
        if not found[0].exact and found[0].score == 0.0:
            note = f"no tool is described by {query!r}; these names are spelled like it"
        matches = [_match(m.tool, self._aliases.get(m.tool.name)) for m in found]
        return ToolMatches(query=query, matches=matches, note=note)

    async def invoke_tool(
        self, name: str, arguments: Mapping[str, Any] | None, ctx: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        problem = too_long("name", name, MAX_NAME_CHARS, nothing="nothing was called")
        if problem:
            return error_result(f"invoke_tool: {problem}")
        index = await self.index()
        tool = next((t for t in index.tools if t.name == name), None)
        if tool is None:
            closest = [m.tool.name for m in index.search(name, limit=DEFAULT_MATCHES)]
            hint = f" Did you mean {', '.join(closest)}?" if closest else ""
            return error_result(
                f"invoke_tool: there is no tool named {name!r}.{hint} "
                "Call get_tool with the name or what you need done to find the right one."
            )
        args = dict(arguments or {})
        refused = argument_refusal(self.catalog, tool, args, index.tools)
        if refused is not None:
            _log.info("invoke_tool_rejected", tool=name)
            return error_result(refused)
        result = await self.catalog.call(name, args, ctx)
        if isinstance(result, CallToolResult):
            return _transportable_result(result)
        return result


def _transportable_result(result: CallToolResult) -> CallToolResult:
    """`result` unchanged unless a transport could not send it: lone surrogates in its text
    or structured content are replaced, values nested deeper than `MAX_DEPTH` are cut."""
    content = [
        c.model_copy(update={"text": transportable(c.text)}) if isinstance(c, TextContent) else c
        for c in result.content
    ]
    structured = transportable(result.structured_content) if result.structured_content is not None else None
    return result.model_copy(update={"content": content, "structured_content": structured})


def check_arguments(tool: Tool, arguments: Mapping[str, Any], tools: Sequence[Tool] = ()) -> list[str]:
    """How `arguments` breaks `tool`'s input schema, in the words a server of the suite uses for
    its own tools (`servers.validation`): unknown arguments first (and which of `tools` they
    may belong to), then each bad or missing one, at most `servers.validation.MAX_PROBLEMS`."""
    siblings = [(t.name, t.input_schema) for t in tools]
    return argument_problems(tool.name, tool.input_schema, arguments, siblings)


def argument_refusal(
    catalog: ToolCatalog, tool: Tool, arguments: Mapping[str, Any], tools: Sequence[Tool]
) -> str | None:
    """Why a call cannot go ahead, worded once for every path (Standard, `invoke_tool`,
    `run_code`), or None. A catalog that checks its own calls (a server of the suite) is left to
    refuse them itself, in exactly its Standard words; any other is checked here first."""
    if getattr(catalog, "checks_arguments", False):
        return None
    problems = check_arguments(tool, arguments, tools)
    return refusal(problems, NOTHING_CALLED) if problems else None


NOTHING_CALLED: Final = "nothing was called"


def matches_result(matches: ToolMatches) -> CallToolResult:
    """`get_tool`'s result: the matches as JSON text, and as structured content."""
    data = matches.model_dump(mode="json", exclude_none=True)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)
