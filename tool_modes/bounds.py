"""Size, depth and encoding bounds on what the tool modes take from and hand to an agent.

Why: the facades run on the event loop that keeps the drone link alive, and their input and
output come from an untrusted agent (a query, a script, the values a script logs or returns).
Work that grows with that input (tokenising, ranking, serialising) must stay a few
milliseconds, and a result must be something every transport can serialise: a lone UTF-16
surrogate cannot be encoded as UTF-8, and values nested a few hundred deep exceed the
serialiser's recursion limit, and either makes the whole response vanish, trace included.
So every mode result goes through `transportable`, and a `run_code` result through
`bound_run`, which cuts it to the output cap and says what was cut.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, cast

__all__ = [
    "ARGUMENT_PREVIEW_CHARS",
    "MAX_DEPTH",
    "MAX_NAME_CHARS",
    "MAX_QUERY_CHARS",
    "bound_run",
    "json_size",
    "too_long",
    "transportable",
]

MAX_QUERY_CHARS: Final = 1000
"""`get_tool`'s query: tokenising and ranking 1,000 characters takes well under a millisecond."""
MAX_NAME_CHARS: Final = 200
"""`invoke_tool`'s tool name (a name that is no tool is ranked to suggest the closest)."""
MAX_DEPTH: Final = 64
"""Nesting kept in a result; deeper values are replaced by a note (pydantic's serialiser stops
at a few hundred levels, and no tool result needs 64)."""
ARGUMENT_PREVIEW_CHARS: Final = 300
"""How much of a trace entry's arguments (as JSON) is kept when the whole result is too big."""
ERROR_CHARS: Final = 2000
"""A trace entry's error message is cut to this many characters when the result is too big."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_CUT = f"(nested deeper than {MAX_DEPTH} levels: cut)"


def too_long(field: str, value: str, limit: int, *, nothing: str) -> str | None:
    """The refusal for a string field over `limit` characters, or None when it fits."""
    if len(value) <= limit:
        return None
    return f"{field} must be at most {limit} characters (got {len(value)}); {nothing}"


def transportable(value: Any) -> Any:
    """`value` with lone surrogates replaced (U+FFFD) and anything deeper than `MAX_DEPTH` cut.

    The walk stops at `MAX_DEPTH`, so it is linear in the value's size and never recurses
    deeper than that; callers bound the size first."""
    return _walk(value, 0)


def _walk(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return _CUT
    if isinstance(value, dict):
        return {_walk(str(k), depth): _walk(v, depth + 1) for k, v in cast(dict[Any, Any], value).items()}
    if isinstance(value, list):
        return [_walk(v, depth + 1) for v in cast(list[Any], value)]
    return value


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON (as `run_code` writes it)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def bound_run(structured: dict[str, Any], cap: int, argument_sizes: list[int]) -> dict[str, Any]:
    """`structured` (a `run_code` result: result, logs, trace, error) cut to fit `cap` bytes of
    JSON, with a `truncated` note saying what was cut. Cuts, in order, until it fits: each trace
    entry's arguments to a preview (every entry stays: name, outcome and order are what tells
    the agent which actions ran), trace errors, the logs (the last lines first), then the result
    (to a prefix of its JSON). `argument_sizes` are the trace arguments' JSON sizes, measured
    when each call was made, so a fitting result is measured without serialising them again."""
    rest = {k: v for k, v in structured.items() if k != "trace"}
    trace = cast(list[dict[str, Any]], structured.get("trace", []))
    fixed = json_size({**rest, "trace": [{k: v for k, v in e.items() if k != "arguments"} for e in trace]})
    if fixed + sum(argument_sizes) + 20 * len(trace) <= cap:
        return structured
    cuts: list[str] = []
    shown = [_preview_arguments(e, size) for e, size in zip(trace, argument_sizes, strict=True)]
    if any(a is not b for a, b in zip(shown, trace, strict=True)):
        cuts.append(f"trace arguments over {ARGUMENT_PREVIEW_CHARS} characters of JSON")
    out: dict[str, Any] = {**rest, "trace": shown}
    note_room = 400
    if json_size(out) + note_room > cap:
        out["trace"] = [_cut_error(e) for e in shown]
        cuts.append(f"trace errors over {ERROR_CHARS} characters")
    for key, cut in (("logs", _cut_logs), ("result", _cut_result), ("error", _cut_error_text)):
        over = json_size(out) + note_room - cap
        if over > 0 and key in out:
            out[key], what = cut(out[key], over)
            cuts.append(what)
    out["truncated"] = (
        f"the whole result is capped at {cap} bytes of JSON; cut to fit: {'; '.join(cuts)}. "
        "Every tool call is still listed in trace, in order"
    )
    return out


def _preview_arguments(entry: dict[str, Any], size: int) -> dict[str, Any]:
    if size <= ARGUMENT_PREVIEW_CHARS:
        return entry
    text = json.dumps(entry.get("arguments"), ensure_ascii=False)
    preview = f"{text[:ARGUMENT_PREVIEW_CHARS]}... ({size} bytes of JSON in all; cut)"
    return {**entry, "arguments": {"truncated": preview}}


def _cut_error(entry: dict[str, Any]) -> dict[str, Any]:
    error = entry.get("error")
    if isinstance(error, str) and len(error) > ERROR_CHARS:
        return {**entry, "error": f"{error[:ERROR_CHARS]}... ({len(error)} characters; cut)"}
    return entry


def _cut_logs(logs: Any, over: int) -> tuple[Any, str]:
    lines = list(cast(list[Any], logs)) if isinstance(logs, list) else []
    dropped = 0
    freed = 0
    while lines and freed < over:
        freed += json_size(lines.pop()) + 1
        dropped += 1
    if freed < over:
        return [], "every log line"
    return lines, f"the last {dropped} log lines"


def _cut_result(result: Any, over: int) -> tuple[Any, str]:
    text = json.dumps(result, ensure_ascii=False)
    keep = max(0, len(text.encode()) - over - 200)
    prefix = text.encode()[:keep].decode(errors="ignore")
    return (
        f"{prefix}... (the result's JSON was {len(text.encode())} bytes; only its first {len(prefix)} "
        "characters are shown)",
        "the result (now a prefix of its JSON, as a string)",
    )


def _cut_error_text(error: Any, over: int) -> tuple[Any, str]:
    text = str(error)
    keep = max(200, len(text) - over - 100)
    return f"{text[:keep]}... (cut)", "the error message"
