"""The hostile-input battery as data: each `Case` is one malformed or abusive request, sent to
every MCP endpoint of the suite in both protocol eras, with the answer each era must give.

A case's body is raw bytes, or a `Msg` that renders itself for the era (the 2026-07-28 era
carries its `_meta` envelope and `Mcp-Method`/`Mcp-Name` headers; the handshake era a session
id), so one line describes the request for every endpoint and era. `TARGET` is the tool each
endpoint's argument cases aim at: one that would reach the drone if anything went wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict

from mcp_types import HEADER_MISMATCH, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR

Era = Literal["legacy", "2026-07-28"]
ERAS: Final[tuple[Era, ...]] = ("legacy", "2026-07-28")
LEGACY_VERSION: Final = "2025-11-25"
MODERN_VERSION: Final = "2026-07-28"

ENDPOINTS: Final = ("/drone", "/drone-search", "/drone-code", "/drone-codesearch", "/everything", "/fetch")

TARGET: Final[Mapping[str, tuple[str, str]]] = {
    "/drone": ("move", "direction"),
    "/drone-search": ("invoke_tool", "name"),
    "/drone-code": ("run_code", "code"),
    "/drone-codesearch": ("run_code", "code"),
    "/everything": ("echo", "message"),
    "/fetch": ("fetch", "url"),
}
"""Per endpoint: a tool and its required string argument."""

MAX_BODY_BYTES: Final = 256 * 1024
"""The served app's body cap (`HttpSettings.max_body_bytes`) in these tests."""

HUGE: Final = "A" * (MAX_BODY_BYTES // 2)

TOOL_ERROR: Final = "tool_error"
"""A JSON-RPC result whose `isError` is true: the tool refused, nothing ran."""
RESULT: Final = "result"
"""A JSON-RPC result, whatever the tool made of its input."""
ANY_BODY: Final = "any"
"""Only the status matters (an error before JSON-RPC: 4xx from HTTP or the transport)."""

Outcome = int | str
"""A JSON-RPC error code, or `TOOL_ERROR`, `RESULT`, `ANY_BODY`."""


@dataclass(frozen=True, slots=True)
class Expect:
    status: int | tuple[int, ...]
    outcome: Outcome = ANY_BODY

    def statuses(self) -> tuple[int, ...]:
        return self.status if isinstance(self.status, tuple) else (self.status,)


@dataclass(frozen=True, slots=True)
class Msg:
    """A JSON-RPC message; `"$tool"`/`"$arg"` in params stand for the endpoint's `TARGET`."""

    method: str
    params: Any = None
    id: Any = 1
    with_id: bool = True
    jsonrpc: str = "2.0"

    def render(self, endpoint: str, era: Era) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": self.jsonrpc, "method": self.method}
        if self.with_id:
            message["id"] = self.id
        params = _substitute(self.params, endpoint)
        if era == MODERN_VERSION and (params is None or isinstance(params, dict)):
            params = {**(params or {}), "_meta": modern_meta()}
        if params is not None:
            message["params"] = params
        return message

    def name(self, endpoint: str) -> str | None:
        params = _substitute(self.params, endpoint)
        return params.get("name") if isinstance(params, dict) else None


def modern_meta() -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "hostile", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }


def _substitute(value: Any, endpoint: str) -> Any:
    tool, arg = TARGET[endpoint]
    if value == "$tool":
        return tool
    if isinstance(value, dict):
        return {(arg if k == "$arg" else k): _substitute(v, endpoint) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, endpoint) for v in value]
    return value


def call(tool: Any = "$tool", arguments: Any = None, **fields: Any) -> Msg:
    params = {"name": tool, "arguments": {} if arguments is None else arguments}
    return Msg("tools/call", params, **fields)


class Raw(bytes):
    """A body sent as these exact bytes (not JSON-RPC, or not even JSON)."""


Body = Msg | list[Msg] | Raw | None


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile request. `headers` override the era's defaults (None removes one);
    `legacy`/`modern` are the answers the two eras must give."""

    name: str
    body: Body
    legacy: Expect
    modern: Expect
    headers: Mapping[str, str | None] = field(default_factory=dict[str, str | None])
    method: str = "POST"
    stateless: Expect | None = None
    """The answer of a stateless endpoint (`/fetch`: no handshake-era sessions) in either era,
    where it differs."""

    def expect(self, era: Era, *, stateless: bool) -> Expect:
        if stateless and self.stateless is not None:
            return self.stateless
        return self.legacy if era == "legacy" else self.modern


class Answers(TypedDict):
    legacy: Expect
    modern: Expect


def both(status: int | tuple[int, ...], outcome: Outcome = ANY_BODY) -> Answers:
    """The same answer in both eras."""
    return {"legacy": Expect(status, outcome), "modern": Expect(status, outcome)}


LIST = Msg("tools/list")

BAD_MESSAGE: Final = Answers(legacy=Expect(400, INVALID_PARAMS), modern=Expect(400, INVALID_REQUEST))
"""Not a JSON-RPC request: the SDK's handshake-era transport reports the failed validation as
-32602 (JSON-RPC says -32600, which the 2026-07-28 entry uses); 400 in both."""

CASES: Final[tuple[Case, ...]] = (
    # ---- not JSON, not JSON-RPC ----
    Case("invalid JSON", Raw(b'{"jsonrpc": "2.0", "id": 1, "method": '), **both(400, PARSE_ERROR)),
    Case("invalid UTF-8", Raw(b"\xff\xfe\x00{"), **both(400, PARSE_ERROR)),
    Case("empty body", Raw(b""), **both(400, PARSE_ERROR)),
    Case("JSON scalar", Raw(b"42"), **BAD_MESSAGE),
    Case("JSON null", Raw(b"null"), **BAD_MESSAGE),
    Case("not JSON-RPC", Raw(b'{"hello": "world"}'), **BAD_MESSAGE),
    Case("JSON-RPC 1.0", Msg("tools/list", jsonrpc="1.0"), **BAD_MESSAGE),
    Case("method is a number", Raw(b'{"jsonrpc": "2.0", "id": 1, "method": 7}'), **BAD_MESSAGE),
    Case("params is a string", Msg("tools/list", params="x"), **BAD_MESSAGE),
    # An id that is no JSON-RPC id: the handshake era reads a notification and drops it.
    Case("flight call, id an object", call("takeoff", id={"a": 1}), legacy=Expect(202), modern=Expect(400)),
    # ---- batches (removed from the protocol in 2025-06-18) ----
    Case("batch of two", [LIST, Msg("tools/list", id=2)], **BAD_MESSAGE),
    Case("batch of flight calls", [call("takeoff"), call("land", id=2)], **BAD_MESSAGE),
    Case("empty batch", Raw(b"[]"), **BAD_MESSAGE),
    # ---- HTTP framing ----
    Case("text/plain", call("takeoff"), headers={"content-type": "text/plain"}, **both(400)),
    Case(
        "form post",
        call("takeoff"),
        headers={"content-type": "application/x-www-form-urlencoded"},
        **both(400),
    ),
    Case("no content type", call("takeoff"), headers={"content-type": None}, **both(400)),
    Case("accepts only HTML", LIST, headers={"accept": "text/html"}, **both(406)),
    Case("accepts only SSE", LIST, headers={"accept": "text/event-stream"}, **both(406)),
    Case("no Accept: anything goes (RFC 9110)", LIST, headers={"accept": None}, **both(200, RESULT)),
    Case("PUT", LIST, method="PUT", **both(405)),
    Case("PATCH", LIST, method="PATCH", **both(405)),
    Case("oversized body", call(arguments={"$arg": "A" * MAX_BODY_BYTES}), **both(413)),
    # ---- Host and Origin (DNS rebinding, CSRF) ----
    Case("foreign Origin", call("takeoff"), headers={"origin": "http://evil.example"}, **both(403)),
    Case("null Origin", call("takeoff"), headers={"origin": "null"}, **both(403)),
    Case("foreign Host", call("takeoff"), headers={"host": "evil.example"}, **both(421)),
    Case("rebound Host", call("takeoff"), headers={"host": "evil.example:8000"}, **both(421)),
    # An allowed Host or Origin dressed up: "$host" is the suite's own `127.0.0.1:<port>`. A prefix
    # match reads each as allowed; a browser, a proxy or a resolver may read it as another host.
    *(
        Case(f"Host {name}", call("takeoff"), headers={"host": value}, **both(421))
        for name, value in {
            "with userinfo": "$host@evil.example",
            "with a backslash": "$host\\@evil.example",
            "with a path": "$host/evil",
            "with a trailing dot": "localhost.:80",
            "percent-encoded": "%31%32%37.0.0.1",
            "in uppercase": "LOCALHOST",
            "unbracketed IPv6": "::1",
            "non-canonical IPv6": "[0:0::1]",
            "IPv6 bracket junk": "[::1]evil.example",
            "port out of range": "127.0.0.1:65536",
            "port with leading zero": "127.0.0.1:080",
            "empty port": "127.0.0.1:",
            "two ports": "$host:1",
        }.items()
    ),
    *(
        Case(f"Origin {name}", call("takeoff"), headers={"origin": value}, **both(403))
        for name, value in {
            "with userinfo": "http://$host@evil.example",
            "with a path": "http://$host/",
            "with a trailing dot": "http://localhost.",
            "in uppercase": "HTTP://LOCALHOST",
            "of another scheme": "file://localhost",
            "IPv6 with zone": "http://[::1%25eth0]",
        }.items()
    ),
    # ---- protocol version, routing headers, session ----
    Case(
        "unknown protocol version",
        call("takeoff"),
        headers={"mcp-protocol-version": "1999-01-01"},
        **both(400),
    ),
    Case("garbage protocol version", call("takeoff"), headers={"mcp-protocol-version": "x;y"}, **both(400)),
    Case(
        "no protocol version",
        LIST,
        headers={"mcp-protocol-version": None},
        legacy=Expect(200, RESULT),  # the SDK assumes a handshake-era version
        modern=Expect(400, INVALID_REQUEST),  # without the header it is a sessionless handshake-era request
        stateless=Expect(200, RESULT),
    ),
    Case(
        "Mcp-Method disagrees with the body",
        LIST,
        headers={"mcp-method": "tools/call"},
        legacy=Expect(200, RESULT),
        modern=Expect(400, HEADER_MISMATCH),
    ),
    Case(
        "unknown session",
        LIST,
        headers={"mcp-session-id": "0" * 32},
        legacy=Expect(404, INVALID_REQUEST),
        modern=Expect(200, RESULT),  # the 2026-07-28 era has no sessions: the header means nothing
        stateless=Expect(200, RESULT),
    ),
    Case(
        "session of another endpoint",
        LIST,
        headers={"mcp-session-id": "$other"},
        legacy=Expect(404, INVALID_REQUEST),
        modern=Expect(200, RESULT),
        stateless=Expect(200, RESULT),
    ),
    Case("no id: a notification", call("takeoff", with_id=False), **both(202)),
    Case(
        "DELETE an unknown session",
        None,
        method="DELETE",
        headers={"mcp-session-id": "0" * 32},
        legacy=Expect(404),
        modern=Expect(405),
        stateless=Expect(405),
    ),
    Case(
        "GET, no SSE in Accept",
        None,
        method="GET",
        headers={"accept": "application/json"},
        legacy=Expect(406),
        modern=Expect(405),  # no standalone stream in the 2026-07-28 era
    ),
    Case(
        "unknown method",
        Msg("drone/fly"),
        legacy=Expect(200, METHOD_NOT_FOUND),
        modern=Expect(404, METHOD_NOT_FOUND),
    ),
    # ---- tools and their arguments ----
    Case("unknown tool", call("no_such_tool"), **both(200, TOOL_ERROR)),
    Case(
        "tool name not a string",
        call(42),
        legacy=Expect(200, INVALID_PARAMS),
        modern=Expect(400, HEADER_MISMATCH),  # Mcp-Name cannot carry it
    ),
    Case(
        "arguments not an object",
        call(arguments=[1, 2]),
        legacy=Expect(200, INVALID_PARAMS),
        modern=Expect(400, INVALID_PARAMS),
    ),
    Case("argument of the wrong type", call(arguments={"$arg": 12345}), **both(200, TOOL_ERROR)),
    Case("argument is an object", call(arguments={"$arg": {"x": 1}}), **both(200, TOOL_ERROR)),
    Case("required argument missing", call(arguments={"zz": 1}), **both(200, TOOL_ERROR)),
    Case("huge string argument", call(arguments={"$arg": HUGE}), **both(200, RESULT)),
    Case("nested 150 deep", call(arguments={"$arg": "$nest150"}), **both(200, TOOL_ERROR)),
    # Refused unparsed: more containers than a body may hold (`servers.security.json_shape`).
    Case("nested 50 000 deep", call(arguments={"$arg": "$nest50000"}), **both(413)),
    Case("5 000 lists in one body", call(arguments={"$arg": [[]] * 5000}), **both(413)),
)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    headers: dict[str, str]
    content: bytes


def render(
    case: Case, endpoint: str, era: Era, *, host: str, session: str | None, other_session: str | None
) -> Request:
    """The HTTP request `case` makes against `endpoint` in `era` (`session`: this endpoint's
    handshake-era session, `other_session` another endpoint's)."""
    headers = {
        "host": host,
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    if era == "legacy":
        headers["mcp-protocol-version"] = LEGACY_VERSION
        if session is not None:
            headers["mcp-session-id"] = session
    else:
        headers["mcp-protocol-version"] = MODERN_VERSION
        if isinstance(case.body, Msg):
            headers["mcp-method"] = case.body.method
            name = case.body.name(endpoint)
            if isinstance(name, str):
                headers["mcp-name"] = name
    for key, value in case.headers.items():
        if value is None:
            headers.pop(key, None)
        elif value == "$other":
            if other_session is not None:
                headers[key] = other_session
        else:
            headers[key] = value.replace("$host", host)
    return Request(case.method, headers, _content(case.body, endpoint, era))


def _content(body: Body, endpoint: str, era: Era) -> bytes:
    if body is None:
        return b""
    if isinstance(body, Raw):
        return bytes(body)
    if isinstance(body, list):
        return json.dumps([m.render(endpoint, era) for m in body]).encode()
    text = json.dumps(body.render(endpoint, era))
    for depth in (150, 50_000):  # as raw text: too deep to build as a Python object
        text = text.replace(f'"$nest{depth}"', "[" * depth + "]" * depth)
    return text.encode()
