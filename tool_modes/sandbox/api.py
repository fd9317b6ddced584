"""The tool set as the script sees it: JavaScript names, and the typed API `run_code` documents."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

from mcp_types import Tool

from tool_modes.sandbox.limits import MIB, SandboxLimits

_RESERVED_WORDS: Final = """
await break case catch class const continue debugger default delete do else enum export extends
false finally for function if implements import in instanceof interface let new null package
private protected public return static super switch this throw true try typeof var void while
with yield async of get set arguments eval undefined NaN Infinity globalThis console Object
Function Array Number Boolean String Symbol BigInt Math JSON Reflect Proxy Promise Date RegExp
Error EvalError RangeError ReferenceError SyntaxError TypeError URIError InternalError
AggregateError Map Set WeakMap WeakSet WeakRef ArrayBuffer SharedArrayBuffer DataView Atomics
parseInt parseFloat isNaN isFinite queueMicrotask performance Iterator
"""
RESERVED: Final = frozenset(_RESERVED_WORDS.split())
_IDENTIFIER: Final = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def js_names(tools: Sequence[Tool]) -> dict[str, str]:
    """Tool name -> the global JavaScript function that calls it (unique, never a built-in).

    MCP tool names may contain `-` and `.`; those become `_`, a leading digit gets a `_`, and a
    name that would shadow a keyword or built-in (or another tool) gets a trailing `_`.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for tool in tools:
        name = re.sub(r"[^A-Za-z0-9_$]", "_", tool.name) or "_"
        if not _IDENTIFIER.match(name):
            name = "_" + name
        while name in RESERVED or name in taken:
            name += "_"
        taken.add(name)
        out[tool.name] = name
    return out


# ---- JSON Schema -> TypeScript-ish types --------------------------------------------------------


def _literal(value: object) -> str:
    return json.dumps(value)


def ts_type(schema: object, defs: Mapping[str, Any], depth: int = 0) -> str:
    """A one-line TypeScript type for a JSON schema (good enough to write correct calls)."""
    if not isinstance(schema, dict) or depth > 6:
        return "any"
    s = cast(dict[str, Any], schema)
    ref = s.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        return ts_type(target, defs, depth + 1) if target is not None else "any"
    if "const" in s:
        return _literal(s["const"])
    enum = s.get("enum")
    if isinstance(enum, list):
        return " | ".join(_literal(v) for v in cast(list[object], enum)) or "never"
    for key in ("anyOf", "oneOf"):
        options = s.get(key)
        if isinstance(options, list):
            parts: list[str] = []
            for option in cast(list[object], options):
                part = ts_type(option, defs, depth + 1)
                if part not in parts:
                    parts.append(part)
            return " | ".join(parts) or "any"
    kind = s.get("type")
    if isinstance(kind, list):
        kinds = cast(list[object], kind)
        return " | ".join(ts_type({**s, "type": k}, defs, depth + 1) for k in kinds) or "any"
    if kind in ("integer", "number"):
        return "number"
    if kind in ("string", "boolean", "null"):
        return cast(str, kind)
    if kind == "array":
        inner = ts_type(s.get("items"), defs, depth + 1)
        return f"({inner})[]" if " " in inner else f"{inner}[]"
    if kind == "object" or "properties" in s:
        props = s.get("properties")
        if not isinstance(props, dict) or not props:
            return "Record<string, any>" if s.get("additionalProperties", True) is not False else "{}"
        required = set(cast(list[str], s.get("required", [])))
        fields = [
            f"{_key(k)}{'' if k in required else '?'}: {ts_type(v, defs, depth + 1)}"
            for k, v in cast(dict[str, object], props).items()
        ]
        return "{ " + "; ".join(fields) + " }"
    return "any"


def _key(name: str) -> str:
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def constraints(schema: object) -> str:
    """Ranges, lengths, patterns and defaults, in words, for a parameter's doc comment."""
    if not isinstance(schema, dict):
        return ""
    s = cast(dict[str, Any], schema)
    parts: list[str] = []
    branches = [s] + [
        cast(dict[str, Any], b)
        for key in ("anyOf", "oneOf")
        for b in cast(list[object], s.get(key, []))
        if isinstance(b, dict)
    ]
    for b in branches:
        if b.get("type") == "integer":
            parts.append("integer")
        low, high = b.get("minimum", b.get("exclusiveMinimum")), b.get("maximum", b.get("exclusiveMaximum"))
        if low is not None and high is not None:
            parts.append(f"{low}..{high}")
        elif low is not None:
            parts.append(f">= {low}")
        elif high is not None:
            parts.append(f"<= {high}")
        if "minLength" in b or "maxLength" in b:
            parts.append(f"length {b.get('minLength', 0)}..{b.get('maxLength', '')}".rstrip("."))
        if "pattern" in b:
            parts.append(f"pattern {b['pattern']}")
    if "default" in s:
        parts.append(f"default {_literal(s['default'])}")
    seen: list[str] = []
    for p in parts:
        if p not in seen:
            seen.append(p)
    return ", ".join(seen)


def _doc(text: str, indent: str) -> list[str]:
    lines = [line.rstrip() for line in inspect.cleandoc(text).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        return []
    if len(lines) == 1:
        return [f"{indent}/** {lines[0]} */"]
    return [f"{indent}/**", *(f"{indent} * {line}".rstrip() for line in lines), f"{indent} */"]


def signature(tool: Tool, js_name: str) -> list[str]:
    """`declare function name(args: {...}): Promise<...>;` with doc comments."""
    schema: dict[str, Any] = tool.input_schema or {}
    defs = cast(dict[str, Any], schema.get("$defs", schema.get("definitions", {})))
    props = cast(dict[str, object], schema.get("properties", {}) or {})
    required = set(cast(list[str], schema.get("required", [])))
    out_schema: dict[str, Any] = tool.output_schema or {}
    out_defs = cast(dict[str, Any], out_schema.get("$defs", out_schema.get("definitions", {})))
    output = ts_type(out_schema, out_defs) if out_schema else "any"
    doc = tool.description or tool.title or ""
    if js_name != tool.name:
        doc = f"Tool {json.dumps(tool.name)}. {doc}"
    lines = _doc(doc, "")
    if not props:
        lines.append(f"declare function {js_name}(args?: {{}}): Promise<{output}>;")
        return lines
    optional_only = not (required & set(props))
    lines.append(f"declare function {js_name}(args{'?' if optional_only else ''}: {{")
    for key, prop in props.items():
        p = cast(dict[str, Any], prop) if isinstance(prop, dict) else {}
        words = " ".join(
            x for x in (str(p.get("description", "")).strip(), f"({constraints(p)})") if x != "()"
        )
        lines.extend(_doc(words, "  "))
        lines.append(f"  {_key(key)}{'' if key in required else '?'}: {ts_type(p, defs)};")
    lines.append(f"}}): Promise<{output}>;")
    return lines


def _summary(tool: Tool) -> str:
    text = " ".join(inspect.cleandoc(tool.description or tool.title or "").split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return sentence if len(sentence) <= 120 else sentence[:117] + "..."


def example_call(tools: Sequence[Tool], names: Mapping[str, str]) -> str:
    """A call of one of `tools` as a script writes it, with plausible arguments from its schema
    (`get_sensor({sensor: 'height'})`): the first tool that takes arguments, else the first."""
    if not tools:
        return "tool({})"
    takes = [t for t in tools if (t.input_schema or {}).get("properties")]
    tool = (takes or list(tools))[0]
    props = cast(dict[str, Any], (tool.input_schema or {}).get("properties") or {})
    required = [k for k in cast(list[str], (tool.input_schema or {}).get("required") or []) if k in props]
    shown = required or list(props)[:1]
    args = ", ".join(f"{_key(k)}: {_example_value(props[k])}" for k in shown[:3])
    return f"{names.get(tool.name, tool.name)}({{{args}}})"


def _example_value(schema: object) -> str:
    fields = cast(dict[str, Any], schema) if isinstance(schema, dict) else {}
    if "default" in fields and fields["default"] is not None:
        return _js_literal(fields["default"])
    if isinstance(fields.get("enum"), list) and fields["enum"]:
        return _js_literal(fields["enum"][0])
    kind = fields.get("type")
    if kind in ("integer", "number"):
        low = fields.get("minimum")
        return _js_literal(low if low is not None else 1)
    if kind == "boolean":
        return "true"
    if kind == "array":
        return "[]"
    if kind == "object":
        return "{}"
    return "'text'"


def _js_literal(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


def describe_api(tools: Sequence[Tool], *, index_only: bool, limits: SandboxLimits | None = None) -> str:
    """The `run_code` tool description: how scripts work, then the tools as a typed API.

    `index_only` (CodeSearch mode) lists one line per tool and points at `get_tool`.
    """
    lim = limits or SandboxLimits()
    names = js_names(tools)
    head = [
        "Run JavaScript in a sandbox (QuickJS) that calls the tools below. Each tool is an async",
        f"global function taking one object: `const r = await {example_call(tools, names)}`.",
        "Top-level `await` works; the value of the last expression (or a top-level `return`) is",
        "the result. console.log/info/warn/error are captured. Returns JSON {result, logs, trace}",
        "(trace: every tool call with its arguments, outcome and ms). A failing tool throws an",
        "Error named ToolError (catch it to react). A tool resolves to its structured result if it",
        "has one, else its text (parsed if JSON); images come back beside the result and appear in",
        "the script as {type: 'image', mimeType, image: n}.",
        f"Limits per run: {lim.exec_s:g} s of script CPU, {lim.tool_wait_s:g} s awaiting tools,",
        f"{lim.memory_bytes // MIB} MiB memory, {lim.max_tool_calls} tool calls, "
        f"{lim.max_output_bytes // 1024} KiB result (logs and trace included; cut to fit) and as much",
        "in tool-call arguments altogether. No network, files, require/import or",
        "timers; nothing persists between runs.",
        "",
    ]
    if index_only:
        lines = ["Tools (call get_tool for a tool's parameters and full documentation):"]
        for tool in tools:
            schema: dict[str, Any] = tool.input_schema or {}
            props = cast(dict[str, object], schema.get("properties", {}) or {})
            args = "{" + ", ".join(props) + "}" if props else ""
            lines.append(f"- {names[tool.name]}({args}): {_summary(tool)}")
        return "\n".join(head + lines)
    body = ["```ts"]
    for tool in tools:
        body.extend(signature(tool, names[tool.name]))
        body.append("")
    if body[-1] == "":
        body.pop()
    body.append("```")
    return "\n".join(head + body)
