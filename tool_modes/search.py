"""Search mode: `get_tool` finds tools by name or need, `invoke_tool` calls one.

Both work on any `ToolCatalog`. `invoke_tool` checks the arguments against the inner tool's
input schema first, so a mistake comes back as one `isError` result naming every bad field
and how to fix it, and nothing is called; a valid call returns the inner result unchanged.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

import structlog
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult, TextContent, Tool
from pydantic import BaseModel, Field

from tool_modes.bounds import MAX_NAME_CHARS, MAX_QUERY_CHARS, too_long, transportable
from tool_modes.catalog import ToolCatalog, error_result
from tool_modes.ranking import ToolIndex

__all__ = [
    "DEFAULT_MATCHES",
    "MAX_MATCHES",
    "SearchFacade",
    "ToolMatch",
    "ToolMatches",
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
        description=_dedent(tool.description or ""),
        input_schema=tool.input_schema,
        annotations=tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
        if tool.annotations is not None
        else None,
    )


def _dedent(text: str) -> str:
    """Docstring-derived descriptions carry their source indentation; it costs tokens."""
    return "\n".join(line.strip() for line in text.strip().splitlines())


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
        problems = check_arguments(tool, args)
        if problems:
            _log.info("invoke_tool_rejected", tool=name, problems=len(problems))
            return error_result(
                f"invoke_tool: invalid arguments for {name}; nothing was called.\n"
                + "\n".join(f"- {p}" for p in problems)
                + f"\n{name} takes: {', '.join(_properties(tool.input_schema)) or 'no arguments'} "
                f"(get_tool {json.dumps(name)} shows its full input schema)"
            )
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


MAX_PROBLEMS: Final = 10
"""Problems an argument error lists; the rest are counted. 87,000 wrong keys once made a 5.6 MB
error that no transport would carry, so the agent learnt nothing."""
MAX_PROBLEM_CHARS: Final = 300


def check_arguments(tool: Tool, arguments: Mapping[str, Any]) -> list[str]:
    """How `arguments` breaks `tool`'s input schema, each problem naming the field and the fix:
    the first `MAX_PROBLEMS`, each cut to `MAX_PROBLEM_CHARS`, then a count of the rest."""
    schema = tool.input_schema
    properties = _properties(schema)
    problems: list[str] = []
    unknown = [k for k in arguments if k not in properties]
    if "properties" in schema and schema.get("additionalProperties") is None and unknown:
        takes = ", ".join(properties) or "no arguments"
        problems += [
            f"{k[:60]}: not an argument of {tool.name}; it takes {takes}" for k in unknown[:MAX_PROBLEMS]
        ]
        if len(unknown) > MAX_PROBLEMS:
            problems.append(f"and {len(unknown) - MAX_PROBLEMS} more unknown arguments")
    validator_class: type[Validator] = validator_for(schema)
    found = list(itertools.islice(validator_class(schema).iter_errors(dict(arguments)), MAX_PROBLEMS + 1))
    errors = sorted(found[:MAX_PROBLEMS], key=lambda e: list(e.absolute_path))
    problems += [_cut(_explain(e, properties)) for e in errors]
    if len(found) > MAX_PROBLEMS:
        problems.append("and more problems of the same kind")
    return problems


def _cut(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 3] + "..."


def _properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    props = schema.get("properties")
    return cast("dict[str, Any]", props) if isinstance(props, dict) else {}


def _explain(error: ValidationError, properties: Mapping[str, Any]) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{missing}: required but missing; pass {missing} ({_describe(properties.get(missing))})"
    field = path or "(arguments)"
    top = str(error.absolute_path[0]) if error.absolute_path else ""
    allowed = _describe(properties.get(top)) if top else ""
    fix = f"; expected {allowed}" if allowed else ""
    return f"{field}: {error.message}{fix}"


def _describe(schema: object) -> str:
    """A field's schema in a few words: type, range or choices, and its description."""
    if not isinstance(schema, dict):
        return "see the input schema"
    fields = cast("dict[str, Any]", schema)
    parts: list[str] = []
    options = fields.get("anyOf")
    if isinstance(options, list):
        parts.append(" or ".join(_type_words(cast("dict[str, Any]", o)) for o in cast("list[Any]", options)))
    else:
        parts.append(_type_words(fields))
    if "description" in fields:
        parts.append(str(fields["description"]))
    return ", ".join(p for p in parts if p)


def _type_words(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in cast("Sequence[Any]", schema["enum"]))
    if "const" in schema:
        return json.dumps(schema["const"])
    words = str(schema.get("type", ""))
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        words += f" {low}..{high}"
    elif low is not None:
        words += f" >= {low}"
    elif high is not None:
        words += f" <= {high}"
    if "pattern" in schema:
        words += f" matching {schema['pattern']}"
    return words.strip()


def matches_result(matches: ToolMatches) -> CallToolResult:
    """`get_tool`'s result: the matches as JSON text, and as structured content."""
    data = matches.model_dump(mode="json", exclude_none=True)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)
