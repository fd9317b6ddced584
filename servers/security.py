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
  byte at a time would hold a connection forever.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from typing import Final

import anyio
import structlog
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BodyLimit", "RouteGuard", "header_deadline_h11", "matches"]

_log = structlog.get_logger("mcp.http.security")

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_MEDIA_TYPE: Final = "application/json"


def matches(value: str, patterns: Collection[str]) -> bool:
    """`value` against the SDK's patterns: exact, or `base:*` for `base:<any port>`."""
    if value in patterns:
        return True
    return any(p.endswith(":*") and value.startswith(p[:-1]) for p in patterns)


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
    DNS-rebinding protection is off; the Content-Type rule holds either way.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        patterns: tuple[tuple[str, ...], tuple[str, ...]] | None,
        exempt: Collection[str],
    ) -> None:
        self.app = app
        self.patterns = patterns
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope["method"], headers)
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
            await _refuse(send, status, message)
            return
        await self.app(scope, receive, send)

    def _refusal(self, method: str, headers: Headers) -> tuple[int, str] | None:
        if self.patterns is not None:
            hosts, origins = self.patterns
            if not matches(headers.get("host", ""), hosts):
                return 421, "Invalid Host header"
            origin = headers.get("origin")
            if origin and not matches(origin, origins):
                return 403, "Invalid Origin header"
        if method not in SAFE_METHODS:
            media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type != JSON_MEDIA_TYPE:
                return 415, f"Content-Type must be {JSON_MEDIA_TYPE}"
        return None


class BodyLimit:
    """Every request body whole and within `max_bytes`, read within `timeout` seconds, before
    the app runs; 413 or 408 (and the connection closed) otherwise.

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


class _HeaderDeadline(H11Protocol):
    """h11 with a deadline on each request's headers, from its first byte (or the connection)."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

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
