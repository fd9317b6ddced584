"""A graceful shutdown's first phase: drain the MCP endpoints before the HTTP server stops.

`Drain` is the state (draining or not, calls in flight, the components' shutdown hooks);
`DrainGate` the ASGI middleware `servers.suite.build_suite_app` puts in front of every route:
once draining, new MCP work gets 503 and a JSON-RPC error saying why, while the calls in flight
and the messages they still need go through; at the drain's deadline the calls still running
are ended with a complete JSON-RPC error. `tello-mcp serve` drives the steps
(`servers.cli._drain`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Final, cast

import anyio
import structlog
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def drain_of(app: Starlette) -> Drain:
    """The `Drain` of an app `build_suite_app` made."""
    drain: object = getattr(app.state, "drain", None)
    if not isinstance(drain, Drain):
        raise TypeError("not an app from build_suite_app: it has no drain")
    return drain


SHUTTING_DOWN: Final = (
    "the server is shutting down and takes no new calls; retry against another replica, or once it is back"
)
QUIET_S: Final = 0.5
"""Seconds without any MCP request in flight that end the drain early (see `Drain.idle`)."""
SHUT_DOWN_MID_CALL: Final = (
    "the server shut down before this call finished (it outlasted the shutdown's drain); "
    "what it did is unknown: check the state before you retry, against another replica or "
    "once the server is back"
)
_SSE: Final = b"text/event-stream"
_PEEK_BYTES: Final = 64 * 1024
_PEEK_S: Final = 5.0
_log = structlog.get_logger("tello_mcp.shutdown")


class Drain:
    """A graceful shutdown's first phase, before the HTTP server stops listening.

    `begin()` (on SIGTERM) turns `/readyz` to 503 at once (the app's own `begin_shutdown`, which
    also ends `subscriptions/listen` streams), refuses new MCP calls with 503 and a JSON-RPC
    error saying why, and runs each component's `on_shutdown` (the drone stops and lands). What
    is already in flight goes on, and so do the messages it still needs (a client's answer to an
    elicitation, notifications, `tools/list`, a session's DELETE). `idle()` returns once no MCP
    request has been in flight for `QUIET_S`; at the drain's deadline `abort()` ends the calls
    still running with a JSON-RPC error; `close_streams()` then ends handshake-era GET streams
    with a complete response, so that the HTTP server's own graceful stop has no open
    connection to wait for. `tello-mcp serve` drives these steps (`servers.cli._drain`).
    """

    def __init__(
        self,
        paths: Collection[str],
        hooks: Sequence[Callable[[], Awaitable[None]]] = (),
        begin_app: Callable[[], object] | None = None,
    ) -> None:
        self.paths = frozenset(paths)
        self.hooks = tuple(hooks)
        self.draining = False
        self.in_flight = 0
        self.entered = 0
        self.refused = 0
        self._begin_app = begin_app
        self._idle: anyio.Event | None = None
        self._cut: anyio.Event | None = None
        self._calls: set[_Call] = set()

    def begin(self) -> None:
        if self.draining:
            return
        self.draining = True
        if callable(self._begin_app):
            self._begin_app()
        _log.info("shutdown_draining", in_flight=self.in_flight)

    async def run_hooks(self) -> None:
        """Every component's `on_shutdown`, concurrently; one failing does not stop the others."""
        async with anyio.create_task_group() as tg:
            for hook in self.hooks:
                tg.start_soon(_logged, hook)

    async def idle(self, quiet_s: float = QUIET_S) -> None:
        """Return once no MCP request has been in flight for `quiet_s` (bound it with a
        deadline). The quiet spell is for a call's own follow-up requests: the SDK's client
        lists the tools right after a call to check its result, on the same session."""
        while True:
            while self.in_flight:
                self._idle = self._idle or anyio.Event()
                await self._idle.wait()
            entered = self.entered
            await anyio.sleep(quiet_s)
            if not self.in_flight and self.entered == entered:
                return

    def close_streams(self) -> None:
        """End the GET streams still open (each with a complete, empty last chunk)."""
        if self._cut is not None:
            self._cut.set()

    def _cut_event(self) -> anyio.Event:
        if self._cut is None:
            self._cut = anyio.Event()
        return self._cut

    def abort(self) -> int:
        """End every MCP request still in flight (the drain's deadline has passed): each gets a
        complete answer, a JSON-RPC error saying the server shut down before the call finished
        (its 503 if nothing was sent yet, else the last event of its SSE stream). Returns how
        many. The work behind them stops when the servers' lifespans exit."""
        for call in self._calls:
            call.scope.cancel()
        return len(self._calls)

    def _enter(self, call: _Call) -> None:
        self.in_flight += 1
        self.entered += 1
        self._calls.add(call)

    def _leave(self, call: _Call) -> None:
        self._calls.discard(call)
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()
            self._idle = None


async def _logged(hook: Callable[[], Awaitable[None]]) -> None:
    try:
        await hook()
    except Exception as exc:
        _log.error("shutdown_hook_failed", hook=getattr(hook, "__qualname__", repr(hook)), error=repr(exc))


class DrainGate:
    """ASGI middleware in front of the MCP endpoints: counts requests in flight, and while the
    `Drain` is draining refuses new calls (503, JSON-RPC error) but lets through what calls
    already in flight still need. GET streams are not counted (they never end by themselves)."""

    def __init__(self, app: ASGIApp, *, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        drain = self.drain
        if scope["type"] != "http" or scope["path"] not in drain.paths:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        if method == "GET":
            if drain.draining:
                await _refuse(send, None)
                return
            await self._stream(scope, receive, send)
            return
        if drain.draining and method == "POST":
            body, complete = await _peek(receive)
            request_id = _new_request_id(body) if complete else _UNKNOWN
            if request_id is not _NOT_A_REQUEST:
                drain.refused += 1
                await _refuse(send, None if request_id is _UNKNOWN else request_id)
                return
            receive = _replay(body, receive)
        call = _Call(send)
        drain._enter(call)  # pyright: ignore[reportPrivateUsage]
        try:
            with call.scope:
                await self.app(scope, call.tee(receive), call.send)
            if call.scope.cancelled_caught:
                await call.fail()
        finally:
            drain._leave(call)  # pyright: ignore[reportPrivateUsage]

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A GET stream that `Drain.close_streams` can end cleanly: the last chunk goes out
        from here, later sends from the app are dropped, and the app hears a disconnect."""
        cut = self.drain._cut_event()  # pyright: ignore[reportPrivateUsage]
        lock = anyio.Lock()
        state = {"started": False, "done": False}

        async def guarded_send(message: Message) -> None:
            async with lock:
                if state["done"]:
                    return
                if message["type"] == "http.response.start":
                    state["started"] = True
                elif message["type"] == "http.response.body" and not message.get("more_body", False):
                    state["done"] = True
                await send(message)

        async def cut_receive() -> Message:
            message: Message = {"type": "http.disconnect"}
            async with anyio.create_task_group() as tg:

                async def client() -> None:
                    nonlocal message
                    message = await receive()
                    tg.cancel_scope.cancel()

                async def closing() -> None:
                    await cut.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(client)
                tg.start_soon(closing)
            return message

        async def finish_when_cut() -> None:
            await cut.wait()
            async with lock:
                if state["started"] and not state["done"]:
                    state["done"] = True
                    with contextlib.suppress(OSError):
                        await send({"type": "http.response.body", "body": b"", "more_body": False})

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish_when_cut)
            await self.app(scope, cut_receive, guarded_send)
            tg.cancel_scope.cancel()


class _Call:
    """One MCP request in flight through the gate: its body as the app read it, what went out,
    and the cancel scope `Drain.abort` uses. No lock: the app's sends are sequential, and
    `fail` runs only once the app has returned."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.scope = anyio.CancelScope()
        self.body = bytearray()
        self.started = False
        self.sse = False
        self.done = False

    def tee(self, receive: Receive) -> Receive:
        async def teed() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(self.body) <= _PEEK_BYTES:
                self.body.extend(message.get("body", b""))
            return message

        return teed

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers: list[tuple[bytes, bytes]] = message.get("headers", [])
            self.sse = any(k.lower() == b"content-type" and v.startswith(_SSE) for k, v in headers)
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.done = True
        await self._send(message)

    async def fail(self) -> None:
        """Finish the response with a JSON-RPC error for the call (shielded: we are cancelled)."""
        if self.done:
            return
        self.done = True
        request_id = _request_id(bytes(self.body))
        with anyio.CancelScope(shield=True), contextlib.suppress(OSError):
            if not self.started:
                await _refuse(self._send, request_id, message=SHUT_DOWN_MID_CALL)
                return
            if self.sse:
                event = json.dumps(_error(request_id, SHUT_DOWN_MID_CALL)).encode()
                chunk = b"event: message\ndata: " + event + b"\n\n"
                await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})


def _request_id(body: bytes) -> object:
    with contextlib.suppress(ValueError):
        parsed: object = json.loads(body)
        if isinstance(parsed, dict):
            request_id = cast("dict[str, object]", parsed).get("id")
            if isinstance(request_id, (str, int)):
                return request_id
    return None


_UNKNOWN: Final = object()
"""A body that could not be read whole and small: treated as a new call."""
_NOT_A_REQUEST: Final = object()
"""Responses, notifications and requests outside `NEW_WORK`: what a call in flight may need."""


async def _peek(receive: Receive) -> tuple[bytes, bool]:
    """Up to `_PEEK_BYTES` of the body within `_PEEK_S` seconds; (body, whether it is complete)."""
    body = bytearray()
    with anyio.move_on_after(_PEEK_S):
        while len(body) <= _PEEK_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                return bytes(body), True
    return bytes(body), False


def _replay(body: bytes, receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


NEW_WORK: Final = frozenset({"initialize", "tools/call", "subscriptions/listen", "resources/subscribe"})
"""Methods refused while draining: what starts a session, a call or a stream. Everything else
(lists, reads, `ping`, completions) is cheap and may be what a call in flight still needs: the
SDK's client lists the tools after a call to validate its structured result."""


def _new_request_id(body: bytes) -> object:
    """The id of the first request in `body` that starts new work (`NEW_WORK`, and not the
    2026-07-28 retry of a call in flight carrying `requestState`), None if its id is not
    readable; `_NOT_A_REQUEST` if there is none; `_UNKNOWN` if `body` is not JSON-RPC."""
    try:
        parsed: object = json.loads(body)
    except ValueError:
        return _UNKNOWN
    messages: list[object] = cast("list[object]", parsed) if isinstance(parsed, list) else [parsed]
    if not messages or not all(isinstance(m, dict) for m in messages):
        return _UNKNOWN
    for raw in messages:
        message = cast("dict[str, object]", raw)
        params: object = message.get("params")
        continuing = isinstance(params, dict) and "requestState" in params
        if message.get("method") in NEW_WORK and "id" in message and not continuing:
            request_id = message["id"]
            return request_id if isinstance(request_id, (str, int)) else None
    return _NOT_A_REQUEST


def _error(request_id: object, message: str) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32000, "message": message}}


async def _refuse(send: Send, request_id: object, *, message: str = SHUTTING_DOWN) -> None:
    """503 with a JSON-RPC error naming the reason; the connection closes after it."""
    body = json.dumps(_error(request_id, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
