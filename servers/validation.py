"""Argument errors a model can act on, for every server of the suite.

The SDK validates tool arguments with pydantic and returns the raw report ("1 validation error
for moveArguments ... For further information visit https://errors.pydantic.dev/..."). A model
does better with one line per bad argument, naming it, the allowed values or range (read from
the tool's own input schema, so both bounds show even when only one was crossed) and what it
sent: "distance_cm must be between 20 and 500 (got 600); nothing was done".

`ReadableArgumentsServer` is `MCPServer` with that wording on `call_tool`; servers of the suite
are built from it. It is also where access control meets every tool call and resource read:
the scopes a server declares (`servers.auth.scopes`) and the per-client rate limit on flight
actions are enforced here, before anything runs. Every path to a tool goes through this
`call_tool` - a client's `tools/call`, and the tool modes' inner calls (`invoke_tool`, a
`run_code` script), which `tool_modes.catalog.ServerCatalog` makes through this server's own
handler - so no mode can call what its caller may not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, cast

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import AnyUrl, ValidationError
from pydantic_core import ErrorDetails

from servers.auth.scopes import authorize_resource, authorize_tool
from servers.sdk import has_tool

_MAX_SHOWN = 60


def _shown(value: object) -> str:
    """A bad value as the error quotes it: at most `_MAX_SHOWN` characters, and only what is
    shown is ever serialised (a 1 MiB list costs what its first items cost)."""
    suffix = ""
    if isinstance(value, str):
        text = repr(value[:_MAX_SHOWN])
    elif isinstance(value, dict):
        members = cast(dict[object, object], value)
        text = json.dumps(dict(list(members.items())[:_MAX_SHOWN]), default=repr)
        suffix = f" ({len(members)} members)" if len(members) > _MAX_SHOWN // 10 else ""
    elif isinstance(value, list | tuple):
        items = cast(list[object] | tuple[object, ...], value)
        text = json.dumps(list(items[:_MAX_SHOWN]), default=repr)
        suffix = f" ({len(items)} items)" if len(items) > _MAX_SHOWN // 10 else ""
    else:
        text = json.dumps(value, default=repr)
    room = _MAX_SHOWN - len(suffix)
    return (text if len(text) <= room else text[: room - 3] + "...") + suffix


def _property(schema: Mapping[str, Any] | None, loc: Sequence[int | str]) -> Mapping[str, Any]:
    """The JSON schema of the argument at `loc` (first level only; {} when unknown)."""
    if schema is None or not loc:
        return {}
    properties = cast(Mapping[str, Any], schema.get("properties", {}))
    prop = properties.get(str(loc[0]), {})
    if not isinstance(prop, Mapping):
        return {}
    prop = cast(Mapping[str, Any], prop)
    variants = prop.get("anyOf")
    if isinstance(variants, list):  # Optional[X]: the non-null variant carries the bounds
        typed = [cast(Mapping[str, Any], v) for v in cast(list[Any], variants) if isinstance(v, Mapping)]
        concrete = [v for v in typed if v.get("type") != "null"]
        if len(concrete) == 1:
            return concrete[0]
    return prop


def _range(prop: Mapping[str, Any]) -> str | None:
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    high = prop.get("maximum", prop.get("exclusiveMaximum"))
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if low is not None:
        return f"at least {low}" if "minimum" in prop else f"greater than {low}"
    if high is not None:
        return f"at most {high}" if "maximum" in prop else f"less than {high}"
    return None


def explain_error(error: ErrorDetails, schema: Mapping[str, Any] | None) -> str:
    """One bad argument, in words."""
    loc = error["loc"]
    name = ".".join(str(part) for part in loc) or "arguments"
    kind = error["type"]
    got = error.get("input")
    prop = _property(schema, loc)
    if kind == "missing":
        return f"{name} is required"
    if kind == "extra_forbidden":
        return f"{name} is not an argument of this tool"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bounds = _range(prop)
        if bounds is not None:
            return f"{name} must be {bounds} (got {_shown(got)})"
    if kind in ("literal_error", "enum"):
        allowed = prop.get("enum")
        if isinstance(allowed, list):
            options = ", ".join(_shown(v) for v in cast(list[Any], allowed))
            return f"{name} must be one of {options} (got {_shown(got)})"
    if kind == "string_pattern_mismatch":
        described = prop.get("description")
        what = f" ({described})" if isinstance(described, str) else ""
        return f"{name} must match {prop.get('pattern')}{what} (got {_shown(got)})"
    if kind in ("string_too_long", "string_too_short", "too_long", "too_short"):
        return f"{name}: {error['msg'].lower()} (got {_shown(got)})"
    return f"{name}: {error['msg']} (got {_shown(got)})"


_MAX_PROBLEMS: Final = 10


def explain(exc: ValidationError, schema: Mapping[str, Any] | None) -> str:
    """The bad arguments of a call, one per line: the first `_MAX_PROBLEMS` distinct ones, then
    how many more (an object of 87,000 wrong keys must not become a 5 MB error)."""
    problems: dict[str, None] = {}
    read = 0
    for error in exc.errors(include_url=False):
        read += 1
        problems[explain_error(error, schema)] = None
        if len(problems) == _MAX_PROBLEMS:
            break
    text = "; ".join(problems)
    more = exc.error_count() - read
    return f"{text}; and {more} more" if more > 0 else text


def _did_nothing(exc: BaseException) -> bool:
    """Whether a failed call did nothing: its arguments were refused, or an error on its cause
    chain says it never reached what it acts on (`nothing_sent`, e.g. the drone's envelope and
    link refusals), so a rate limit should not count it."""
    seen: BaseException | None = exc
    for _ in range(8):  # the SDK wraps a tool's error once or twice
        if seen is None:
            return False
        if isinstance(seen, ValidationError) or getattr(type(seen), "nothing_sent", False) is True:
            return True
        seen = seen.__cause__
    return False


class ReadableArgumentsServer(MCPServer[Any]):
    """`MCPServer` whose argument errors name the argument, the allowed values and the input,
    and say that the tool did not run (`refused`, which a server may word for its domain)."""

    refused: str = "the tool did not run"
    enforces_scopes: bool = True
    """`servers.auth.scopes.declare_scopes` accepts this class: it enforces a declared policy."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        refund = authorize_tool(self, name, refused=self.refused) if has_tool(self, name) else None
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if refund is not None and _did_nothing(exc):  # refused before it ran: nothing to count
                refund()
            if not isinstance(cause, ValidationError):
                raise
            schema = next((t.input_schema for t in await self.list_tools() if t.name == name), None)
            raise ToolError(f"{explain(cause, schema)}; {self.refused}") from cause

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        authorize_resource(self, str(uri))
        return await super().read_resource(uri, context)
