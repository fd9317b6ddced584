"""Argument errors a model can act on, for every server of the suite, and the tool surface a
model reads: closed input schemas, one refusal wording, compact results.

The SDK validates tool arguments with pydantic and returns the raw report ("1 validation error
for moveArguments ... For further information visit https://errors.pydantic.dev/..."), and it
drops an argument the tool does not take without a word (`move` with `speed` flies, ignoring
it). A model does better with one line: each bad argument by name, the allowed values or range
(read from the tool's own input schema, so both bounds show even when only one was crossed),
what it sent, and whether anything happened: "distance_cm must be between 20 and 500 (got 600);
nothing was sent"; "move takes direction, distance_cm; unknown: speed (set_speed sets the
speed); nothing was sent".

One engine words every argument error (`word`): pydantic's errors on a server of the suite
(`explain_error`), and a JSON-schema check where the tool lives elsewhere (`schema_problems`,
which the Search and Code modes run over an upstream's tools).

`StrictToolsServer` is `MCPServer` with that surface on every tool it will ever have, added
before or after it is built: `tools/list` shows each input schema closed
(`additionalProperties: false`) and each description dedented; `call_tool` refuses an unknown
argument before the tool runs, words a refusal without the SDK's "Error executing tool X:"
prefix, and sends a structured result's text as compact JSON.

`ReadableArgumentsServer` adds access control, where it meets every tool call and resource
read: the scopes a server declares (`servers.auth.scopes`) and the per-client rate limit on
flight actions are enforced here, before anything runs. Every path to a tool goes through this
`call_tool` - a client's `tools/call`, and the tool modes' inner calls (`invoke_tool`, a
`run_code` script), which `tool_modes.catalog.ServerCatalog` makes through this server's own
handler - so no mode can call what its caller may not.
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, cast

from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, InputRequiredResult, TextContent, Tool
from pydantic import AnyUrl, ValidationError
from pydantic_core import ErrorDetails

from servers.auth.scopes import authorize_resource, authorize_tool
from servers.sdk import has_output_schema, has_tool, registered_tools, tool_schema

_MAX_SHOWN = 60
MAX_PROBLEMS: Final = 10
"""Problems an argument error lists; the rest are counted. 87,000 wrong keys once made a 5.6 MB
error that no transport would carry, so the agent learnt nothing."""
MAX_PROBLEM_CHARS: Final = 300


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


def _cut(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 3] + "..."


def properties_of(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    props = schema.get("properties") if schema is not None else None
    return cast(dict[str, Any], props) if isinstance(props, dict) else {}


def _concrete(prop: Mapping[str, Any]) -> Mapping[str, Any]:
    """Optional[X]'s schema is anyOf [X, null]: X carries the type, bounds and choices."""
    variants = prop.get("anyOf")
    if isinstance(variants, list):
        typed = [cast(Mapping[str, Any], v) for v in cast(list[Any], variants) if isinstance(v, Mapping)]
        concrete = [v for v in typed if v.get("type") != "null"]
        if len(concrete) == 1:
            return {**{k: v for k, v in prop.items() if k != "anyOf"}, **concrete[0]}
    return prop


def _property(schema: Mapping[str, Any] | None, loc: Sequence[int | str]) -> Mapping[str, Any]:
    """The JSON schema of the argument at `loc` (first level only; {} when unknown)."""
    if not loc:
        return {}
    prop = properties_of(schema).get(str(loc[0]), {})
    return _concrete(cast(Mapping[str, Any], prop)) if isinstance(prop, Mapping) else {}


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


_TYPE_WORDS: Final = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def _type_word(prop: Mapping[str, Any]) -> str | None:
    kind = prop.get("type")
    if isinstance(kind, str):
        return _TYPE_WORDS.get(kind, kind)
    if isinstance(kind, list):
        return " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in cast(list[Any], kind))
    return None


def _choices(prop: Mapping[str, Any]) -> str | None:
    allowed = prop.get("enum")
    if isinstance(allowed, list):
        return "one of " + ", ".join(_shown(v) for v in cast(list[Any], allowed))
    if "const" in prop:
        return _shown(prop["const"])
    return None


def describe(prop: Mapping[str, Any]) -> str:
    """What an argument takes, in a few words: its choices, or its type and range or pattern."""
    prop = _concrete(prop)
    choices = _choices(prop)
    if choices is not None:
        return choices
    words = _type_word(prop) or "a value"
    bounds = _range(prop)
    if bounds is not None:
        words += f" {bounds}"
    if "pattern" in prop:
        words += f" matching {prop['pattern']}"
        if isinstance(prop.get("description"), str):
            words += f" ({prop['description']})"
    return words


def word(kind: str, name: str, got: object, prop: Mapping[str, Any], detail: str = "") -> str:
    """One bad argument, in words: the one wording of every argument error of the suite.

    `kind` is what is wrong: missing, range, choice, type, pattern, length or other (`detail`
    then says how, in the validator's words)."""
    shown = _shown(got)
    if kind == "missing":
        return f"{name} is required: {describe(prop)}"
    if kind == "range":
        bounds = _range(prop)
        if bounds is not None:
            return f"{name} must be {bounds} (got {shown})"
    if kind == "choice":
        choices = _choices(prop)
        if choices is not None:
            return f"{name} must be {choices} (got {shown})"
    if kind == "type":
        expected = _type_word(prop)
        if expected is not None:
            return f"{name} must be {expected} (got {shown})"
    if kind == "pattern" and "pattern" in prop:
        described = prop.get("description")
        what = f" ({described})" if isinstance(described, str) else ""
        return f"{name} must match {prop['pattern']}{what} (got {shown})"
    if kind == "length" and detail:
        return f"{name}: {detail} (got {shown})"
    return f"{name}: {detail or 'not valid'} (got {shown})"


_PYDANTIC_KINDS: Final = {
    "missing": "missing",
    "greater_than_equal": "range",
    "less_than_equal": "range",
    "greater_than": "range",
    "less_than": "range",
    "literal_error": "choice",
    "enum": "choice",
    "string_pattern_mismatch": "pattern",
    "string_too_long": "length",
    "string_too_short": "length",
    "too_long": "length",
    "too_short": "length",
    "int_parsing": "type",
    "int_type": "type",
    "int_from_float": "type",
    "float_parsing": "type",
    "float_type": "type",
    "string_type": "type",
    "bool_parsing": "type",
    "bool_type": "type",
    "dict_type": "type",
    "list_type": "type",
}


def explain_error(error: ErrorDetails, schema: Mapping[str, Any] | None) -> str:
    """One bad argument as pydantic reported it, in the engine's words."""
    loc = error["loc"]
    name = ".".join(str(part) for part in loc) or "arguments"
    kind = _PYDANTIC_KINDS.get(error["type"], "other")
    return word(kind, name, error.get("input"), _property(schema, loc), error["msg"].lower())


def explain(exc: ValidationError, schema: Mapping[str, Any] | None) -> str:
    """The bad arguments of a call, one per line: the first `MAX_PROBLEMS` distinct ones, then
    how many more (an object of 87,000 wrong keys must not become a 5 MB error)."""
    problems: dict[str, None] = {}
    read = 0
    for error in exc.errors(include_url=False):
        read += 1
        problems[_cut(explain_error(error, schema))] = None
        if len(problems) == MAX_PROBLEMS:
            break
    text = "; ".join(problems)
    more = exc.error_count() - read
    return f"{text}; and {more} more" if more > 0 else text


_SCHEMA_KINDS: Final = {
    "minimum": "range",
    "maximum": "range",
    "exclusiveMinimum": "range",
    "exclusiveMaximum": "range",
    "enum": "choice",
    "const": "choice",
    "type": "type",
    "pattern": "pattern",
    "minLength": "length",
    "maxLength": "length",
    "minItems": "length",
    "maxItems": "length",
}


def _schema_error(error: SchemaError, schema: Mapping[str, Any]) -> str:
    """One JSON-schema violation in the engine's words; Optional[X] is judged as X."""
    if error.validator == "anyOf" and error.context:
        concrete = [e for e in error.context if cast(Mapping[str, Any], e.schema).get("type") != "null"]
        if concrete:
            error = concrete[0]
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        name = f"{path}.{missing}" if path else missing
        owner = cast(Mapping[str, Any], error.schema)
        return word("missing", name, None, _concrete(properties_of(owner).get(missing, {})))
    kind = _SCHEMA_KINDS.get(str(error.validator), "other")
    empty: Mapping[str, Any] = {}
    prop: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else empty
    top = _property(schema, list(error.absolute_path)[:1]) if error.absolute_path else empty
    if kind == "range" and "description" in top and len(error.absolute_path) == 1:
        prop = {**top, **prop}
    return word(kind, path or "arguments", error.instance, prop, str(error.message))


def schema_problems(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> list[str]:
    """How `arguments` breaks `schema` (a tool's input schema), beyond unknown arguments: the
    first `MAX_PROBLEMS`, each cut to `MAX_PROBLEM_CHARS`, then that there are more."""
    checked = {k: v for k, v in schema.items() if k != "additionalProperties"}
    validator_class: type[Validator] = validator_for(checked)
    found = list(itertools.islice(validator_class(checked).iter_errors(dict(arguments)), MAX_PROBLEMS + 1))
    errors = sorted(found[:MAX_PROBLEMS], key=lambda e: [str(p) for p in e.absolute_path])
    problems = list(dict.fromkeys(_cut(_schema_error(e, schema)) for e in errors))
    if len(found) > MAX_PROBLEMS:
        problems.append("and more problems of the same kind")
    return problems


Sibling = tuple[str, Mapping[str, Any]]
"""Another tool of the same server: its name and input schema (where an unknown argument may
belong)."""


def _belongs(argument: str, tool: str, siblings: Iterable[Sibling]) -> str | None:
    """Which other tool an unknown argument is for: one named after it (`speed`: set_speed),
    else one that takes it."""
    others = [(name, schema) for name, schema in siblings if name != tool]
    for name, _ in others:
        if argument in name.replace("-", "_").split("_"):
            return f"{name} sets the {argument}" if name.startswith("set_") else f"see {name}"
    for name, schema in others:
        if argument in properties_of(schema):
            return f"{name} takes {argument}"
    return None


def is_closed(schema: Mapping[str, Any]) -> bool:
    """Whether a tool refuses arguments its schema does not name: closed, or silent about it
    (the SDK's schemas say nothing and its tools drop what they do not know)."""
    return schema.get("additionalProperties", False) is False


def unknown_arguments(
    tool: str, schema: Mapping[str, Any], arguments: Mapping[str, Any], siblings: Iterable[Sibling] = ()
) -> str | None:
    """ "move takes direction, distance_cm; unknown: speed (set_speed sets the speed)", or None."""
    if not is_closed(schema):
        return None
    props = properties_of(schema)
    unknown = [k for k in arguments if k not in props]
    if not unknown:
        return None
    named = list(siblings)
    shown: list[str] = []
    for key in unknown[:MAX_PROBLEMS]:
        belongs = _belongs(key, tool, named) if len(shown) < 3 else None
        label = key if len(key) <= _MAX_SHOWN else key[: _MAX_SHOWN - 3] + "..."
        shown.append(f"{label} ({belongs})" if belongs else label)
    if len(unknown) > MAX_PROBLEMS:
        shown.append(f"and {len(unknown) - MAX_PROBLEMS} more")
    return f"{tool} takes {', '.join(props) or 'no arguments'}; unknown: {', '.join(shown)}"


def argument_problems(
    tool: str, schema: Mapping[str, Any], arguments: Mapping[str, Any], siblings: Iterable[Sibling] = ()
) -> list[str]:
    """Everything wrong with a call's arguments against the tool's input schema: unknown
    arguments first, then each bad or missing one."""
    unknown = unknown_arguments(tool, schema, arguments, siblings)
    return ([unknown] if unknown else []) + schema_problems(schema, arguments)


def refusal(problems: Sequence[str], nothing: str) -> str:
    """The one wording of an argument refusal: the problems, then that nothing happened."""
    return "; ".join([*problems, nothing])


class ArgumentsRefused(ToolError):
    """A call refused for its arguments, before the tool ran."""

    nothing_sent = True


# ---- what a model reads: closed schemas, dedented descriptions, compact results ----


def close_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as a model reads it: `additionalProperties: false` where an object schema says
    nothing about arguments it does not name (the SDK's never do; a tool that takes any says so
    itself), and without the titles pydantic makes up from names ("moveArguments", "Distance
    Cm"), which say nothing the names do not and cost tokens on every listing."""
    if schema.get("type") != "object":
        return schema
    out = {k: v for k, v in schema.items() if not (k == "title" and str(v).endswith("Arguments"))}
    props = properties_of(schema)
    if props:
        out["properties"] = {name: _untitled(name, prop) for name, prop in props.items()}
    if "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _untitled(name: str, prop: object) -> object:
    if not isinstance(prop, dict):
        return prop
    fields = cast(dict[str, Any], prop)
    if fields.get("title") != name.replace("_", " ").title():
        return fields
    return {k: v for k, v in fields.items() if k != "title"}


def dedent(text: str | None) -> str | None:
    """A docstring-derived description without its source indentation (it costs tokens)."""
    return inspect.cleandoc(text) if text else text


def compact_result(result: CallToolResult) -> CallToolResult:
    """`result` with the text copy of its structured content as compact JSON (the SDK indents
    it: a `rotate` result is 1,030 characters indented, 649 compact); other text unchanged."""
    structured = result.structured_content
    if structured is None:
        return result
    content = list(result.content)
    changed = False
    for i, block in enumerate(content):
        if isinstance(block, TextContent) and "\n" in block.text and block.text[:1] in ("{", "["):
            try:
                same = json.loads(block.text) == structured
            except ValueError:
                continue
            if same:
                text = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
                content[i] = block.model_copy(update={"text": text})
                changed = True
    return result.model_copy(update={"content": content}) if changed else result


ArgumentHint = Callable[[Mapping[str, Any]], str | None]
"""What a tool adds to an argument refusal, knowing its domain ("to turn the other way, ...")."""


class StrictToolsServer(MCPServer[Any]):
    """`MCPServer` whose tools are closed, refused in one wording and answered compactly, for
    every tool it has or will have (see the module's docstring). `refused` says that nothing
    happened, in the server's domain ("nothing was sent")."""

    refused: str = "the tool did not run"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.argument_hints: dict[str, ArgumentHint] = {}

    def add_argument_hint(self, tool: str, hint: ArgumentHint) -> None:
        self.argument_hints[tool] = hint

    async def list_tools(self) -> list[Tool]:
        return [
            t.model_copy(
                update={"input_schema": close_schema(t.input_schema), "description": dedent(t.description)}
            )
            for t in await super().list_tools()
        ]

    def _refuse(self, name: str, problems: list[str], arguments: Mapping[str, Any]) -> ArgumentsRefused:
        hint = self.argument_hints.get(name)
        extra = hint(arguments) if hint is not None else None
        return ArgumentsRefused(refusal([*problems, *([extra] if extra else [])], self.refused))

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        schema = tool_schema(self, name)
        if schema is not None:
            unknown = unknown_arguments(name, close_schema(schema), arguments, registered_tools(self))
            if unknown is not None:
                raise self._refuse(name, [unknown], arguments)
        try:
            result = await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:  # a crash: its text stays in the server's log
            raise UnexpectedToolError(
                f"{name} failed on an unexpected error (the server logged it); "
                "whether it did anything is not known"
            ) from exc.__cause__
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise self._refuse(name, [explain(cause, schema)], arguments) from cause
            prefix = f"Error executing tool {name}: "
            text = str(exc)
            if text.startswith(prefix):  # the SDK's prefix: the tool's own words are the refusal
                raise ToolError(text[len(prefix) :]) from cause
            raise
        if isinstance(result, CallToolResult) and has_output_schema(self, name):
            return compact_result(result)
        return result  # a facade's result is the inner tool's own, unchanged


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


class ReadableArgumentsServer(StrictToolsServer):
    """`StrictToolsServer` that enforces the scopes and rate limit a server declares."""

    enforces_scopes: bool = True
    """`servers.auth.scopes.declare_scopes` accepts this class: it enforces a declared policy."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        refund = authorize_tool(self, name, refused=self.refused) if has_tool(self, name) else None
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if refund is not None and _did_nothing(exc):  # refused before it ran: nothing to count
                refund()
            raise

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        authorize_resource(self, str(uri))
        return await super().read_resource(uri, context)
