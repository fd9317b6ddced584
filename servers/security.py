"""What stands between the network and the app: request size and time limits, and the Host,
Origin and Content-Type checks for the routes the MCP SDK does not guard.

* `RouteGuard` gives every route that is not an MCP endpoint or a probe (`/admin/...`,
  `/drone-status`) the SDK's DNS-rebinding rules: a Host off the allow-list gets 421, a
  browser Origin off it 403. State-changing requests must be `application/json` (415
  otherwise): a cross-origin page can send `text/plain` or a form without a CORS preflight,
  but not JSON, and nothing here answers a preflight. The MCP endpoints check Host and Origin
  themselves (and Content-Type, with 400); the probes stay open because kubelet sends the
  pod IP as Host.
* `BodyLimit` reads every request body before the app sees it: a declared `Content-Length`
  over the cap is answered 413 without reading a byte of the body, a streamed body 413 as
  soon as it passes the cap, and a body that takes longer than `timeout` to arrive (a slow
  drip) 408. Both close the connection, so the rest is never read.
* `header_deadline_h11` is uvicorn's h11 protocol with a deadline on request headers, which
  uvicorn lacks: its keep-alive timer is cancelled by the first byte, so headers dripped a
  byte at a time would hold a connection forever. It also refuses ambiguous message framing
  (RFC 9112 6.3: `Content-Length` with `Transfer-Encoding`, or several differing lengths) with
  400 and closes the connection: h11 alone would frame by `Transfer-Encoding` and keep the
  connection open, so a body a front proxy framed by `Content-Length` would be read here as a
  second, smuggled request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Collection
from typing import Any, Final

import anyio
import h11
import structlog
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BodyLimit", "RouteGuard", "canonical", "framing_problem", "header_deadline_h11", "matches"]

_log = structlog.get_logger("mcp.http.security")

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_MEDIA_TYPE: Final = "application/json"
H11_MAX_HEADER_BYTES: Final = 16 * 1024
"""h11's (and so uvicorn's) default cap on a request's headers, kept when h11 is replaced."""


_AUTHORITY: Final = re.compile(r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def canonical(value: str) -> tuple[str, str, int | None] | None:
    """A Host (`host[:port]`) or Origin (`scheme://host[:port]`) as (scheme or "", host, port),
    or None unless `value` is already in the one canonical form a browser sends.

    Parsing first and comparing parts, rather than prefixes, is what keeps
    `127.0.0.1:19200@evil.example` from passing as `127.0.0.1:*`: userinfo, paths,
    backslashes, percent-encoding, empty or trailing-dot labels, unbracketed or non-canonical
    IPv6, uppercase, out-of-range ports and leading zeros are all refused rather than
    normalised, so no second parser downstream can read the value another way.
    """
    scheme, sep, authority = value.rpartition("://")
    if sep and scheme not in ("http", "https"):
        return None
    found = _AUTHORITY.fullmatch(authority)
    if found is None:
        return None
    host, port_text = found["host"], found["port"]
    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        if f"[{address.compressed}]" != host:
            return None
    elif not all(_LABEL.fullmatch(label) for label in host.split(".")):
        return None
    port: int | None = None
    if port_text is not None:
        port = int(port_text)
        if str(port) != port_text or port > 65535:
            return None
    return scheme, host, port


def matches(value: str, patterns: Collection[str]) -> bool:
    """`value` against the SDK's patterns (exact, or `base:*` for `base:<any port>`), part by
    part after `canonical` parsed it: a value that does not parse matches nothing."""
    parsed = canonical(value)
    if parsed is None:
        return False
    scheme, host, port = parsed
    for pattern in patterns:
        wildcard = pattern.endswith(":*")
        allowed = canonical(pattern[:-2] if wildcard else pattern)
        if allowed is None or allowed[:2] != (scheme, host):
            continue
        if (wildcard and port is not None and allowed[2] is None) or (not wildcard and allowed[2] == port):
            return True
    return False


async def _refuse(send: Send, status: int, message: str) -> None:
    """A JSON error answer that closes the connection, so an unread body is never read."""
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RouteGuard:
    """Host/Origin allow-lists and JSON-only writes for every path but `exempt` ones.

    `patterns` are `(hosts, origins)` in the SDK's forms (see `HttpSettings`), or None when
    DNS-rebinding protection is off; the Content-Type rule holds either way. On `mounts` (the
    MCP endpoints) only Host and Origin are checked here, before the SDK's own check, whose
    prefix match lets `127.0.0.1:1@evil.example` through; the SDK keeps its Content-Type rule.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        patterns: tuple[tuple[str, ...], tuple[str, ...]] | None,
        exempt: Collection[str],
        mounts: Collection[str] = (),
    ) -> None:
        self.app = app
        self.patterns = patterns
        self.exempt = frozenset(exempt)
        self.mounts = frozenset(mounts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope["method"], headers, json_only=scope["path"] not in self.mounts)
        if refusal is not None:
            status, message = refusal
            _log.warning(
                "request_refused",
                path=scope["path"],
                status=status,
                host=headers.get("host"),
                origin=headers.get("origin"),
                content_type=headers.get("content-type"),
            )
            if scope["path"] in self.mounts:  # the SDK's own answer, word for word
                await Response(message, status_code=status)(scope, receive, send)
            else:
                await _refuse(send, status, message)
            return
        await self.app(scope, receive, send)

    def _refusal(self, method: str, headers: Headers, *, json_only: bool) -> tuple[int, str] | None:
        if self.patterns is not None:
            hosts, origins = self.patterns
            if not matches(headers.get("host", ""), hosts):
                return 421, "Invalid Host header"
            origin = headers.get("origin")
            if origin and not matches(origin, origins):
                return 403, "Invalid Origin header"
        if json_only and method not in SAFE_METHODS:
            media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type != JSON_MEDIA_TYPE:
                return 415, f"Content-Type must be {JSON_MEDIA_TYPE}"
        return None


MAX_JSON_CONTAINERS: Final = 5_000
"""Arrays and objects one request body may hold. What a body costs the SDK to validate (on
the event loop, before any handler runs) grows with its containers, deep ones most: 1 MiB of
lists nested 150 deep took 1.4 s of CPU; 5,000 flat objects take ~6 ms. No MCP request of
ours needs more (a tool call's arguments are a handful of values; code is one string)."""
MAX_JSON_VALUES: Final = 20_000
"""Values (array items and object members) one request body may hold: 87,000 keys held the
loop 50-80 ms (validation, then an error over every key); 20,000 stay near 10 ms."""


def json_shape(body: bytes | bytearray) -> tuple[int, int]:
    """Upper bounds of the (containers, values) a JSON text holds, in linear time without
    parsing: brackets and commas counted outside strings. Counting them raw (~0.2 ms a MiB)
    decides almost every body; only one whose raw counts pass a limit is counted exactly,
    with strings cut out (escaped backslashes and quotes first), at ~5-40 ms a MiB."""
    containers = body.count(b"[") + body.count(b"{")
    values = body.count(b",") + containers
    if containers <= MAX_JSON_CONTAINERS and values <= MAX_JSON_VALUES:
        return containers, values
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(plain.split(b'"')[::2])
    containers = outside.count(b"[") + outside.count(b"{")
    return containers, outside.count(b",") + containers


def json_shape_problem(body: bytes | bytearray) -> str | None:
    """Why a request body holds more JSON structure than the server parses, or None."""
    containers, values = json_shape(body)
    if containers > MAX_JSON_CONTAINERS:
        return f"request body holds {containers} JSON arrays/objects (at most {MAX_JSON_CONTAINERS})"
    if values > MAX_JSON_VALUES:
        return f"request body holds {values} JSON values (at most {MAX_JSON_VALUES})"
    return None


class BodyLimit:
    """Every request body whole and within `max_bytes`, read within `timeout` seconds, before
    the app runs; 413 or 408 (and the connection closed) otherwise. A body holding more JSON
    structure than `MAX_JSON_CONTAINERS`/`MAX_JSON_VALUES` also gets 413: parsing it would hold
    the event loop (and so the drone's keepalive) for up to seconds.

    Buffering costs at most `max_bytes` per request in flight, which the SDK's own transport
    spends anyway (it reads the body whole before parsing it).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, send, declared=int(declared))
            return
        body = bytearray()
        complete = False
        with anyio.move_on_after(self.timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away halfway through its body: nobody to answer
                body.extend(message.get("body", b""))
                if len(body) > self.max_bytes:
                    await self._too_large(scope, send, declared=None)
                    return
                if not message.get("more_body", False):
                    complete = True
                    break
        if not complete:
            _log.warning(
                "request_body_too_slow", path=scope["path"], received=len(body), timeout_s=self.timeout
            )
            await _refuse(send, 408, f"request body not received within {self.timeout:g} s")
            return
        problem = json_shape_problem(body)
        if problem is not None:
            _log.warning("request_body_too_complex", path=scope["path"], problem=problem)
            await _refuse(send, 413, problem)
            return
        replay: list[Message] = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replayed() -> Message:
            if replay:
                return replay.pop()
            return await receive()

        await self.app(scope, replayed, send)

    async def _too_large(self, scope: Scope, send: Send, *, declared: int | None) -> None:
        _log.warning(
            "request_body_too_large", path=scope["path"], declared=declared, max_bytes=self.max_bytes
        )
        await _refuse(send, 413, f"request body larger than {self.max_bytes} bytes")


def framing_problem(headers: Collection[tuple[bytes, bytes]]) -> str | None:
    """Why a request's framing headers are ambiguous (RFC 9112 6.3), or None.

    A request carrying `Transfer-Encoding` and `Content-Length` at once is how a request is
    smuggled past a proxy that frames by the other header; the RFC lets a server reject it and
    requires it to close the connection after answering. Several `Content-Length`s that
    disagree are the same trick. h11 itself rejects a `Transfer-Encoding` other than `chunked`.
    """
    lengths = {value.strip() for name, value in headers if name.lower() == b"content-length"}
    if any(name.lower() == b"transfer-encoding" for name, _ in headers) and lengths:
        return "both Transfer-Encoding and Content-Length"
    if len(lengths) > 1:
        return "conflicting Content-Length values"
    return None


class _StrictConnection(h11.Connection):
    """h11 refusing ambiguous framing as a protocol error, which uvicorn answers with 400 and a
    closed connection (so whatever follows in the buffer is never parsed as a request)."""

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        event = super().next_event()
        if isinstance(event, h11.Request):
            problem = framing_problem(event.headers.raw_items())
            if problem is not None:
                _log.warning(
                    "request_framing_refused", problem=problem, target=event.target.decode("latin-1")
                )
                raise h11.RemoteProtocolError(problem, error_status_hint=400)
        return event


class _HeaderDeadline(H11Protocol):
    """h11 with a deadline on each request's headers, from its first byte (or the connection),
    and no ambiguous framing (see `framing_problem`)."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = self.config.h11_max_incomplete_event_size
        self.conn = _StrictConnection(h11.SERVER, limit or H11_MAX_HEADER_BYTES)

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._awaiting_headers():
            self._arm()
        super().data_received(data)
        if not self._awaiting_headers():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _awaiting_headers(self) -> bool:
        # `cycle` is None until the first request's headers are parsed (typed as always set).
        cycle = getattr(self, "cycle", None)
        return cycle is None or cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and not self.transport.is_closing():
            _log.warning("request_headers_too_slow", client=self.client, timeout_s=self.header_timeout)
            self.transport.close()


def header_deadline_h11(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers take over `seconds`
    (an idle keep-alive connection is closed by uvicorn's own keep-alive timeout first)."""

    class HeaderDeadlineH11(_HeaderDeadline):
        header_timeout = seconds

    return HeaderDeadlineH11
