"""Admission control for the MCP endpoints: a bounded number of requests in flight, per client
and in all, so a crowd of readers cannot queue the operator's `stop` behind them.

Under overload a request beyond a bound is shed at once, before the SDK parses it: 429 when
its client already has `per_client` requests in flight, 503 when the process has `total`;
both with `Retry-After`, so well-behaved clients back off instead of piling on. Flight-safety
calls (`stop`, `emergency`, `land`, directly or through a tool mode's `invoke_tool`) are never
shed, never counted and never wait for a slot: they are recognised from the body `BodyLimit`
has already buffered, by a cheap parse of small bodies only (a safety call is a few hundred
bytes; a large body is never one, and is not parsed here).

Only POSTs to the MCP mounts are counted: a GET stream lives as long as its session and would
hold a slot forever, and probes or admin routes are the operator's.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, cast

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servers import metrics
from servers.auth.identity import client_of

__all__ = ["FLIGHT_SAFETY_TOOLS", "Admission", "AdmissionSettings", "is_flight_safety"]

_log = structlog.get_logger("mcp.http.admission")

FLIGHT_SAFETY_TOOLS: Final = frozenset({"stop", "emergency", "land"})
SAFETY_BODY_MAX: Final = 4096
"""Bodies larger than this are never taken for a flight-safety call (and never parsed here)."""


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """Bounds on MCP requests in flight; 0 turns a bound off."""

    total: int = 256
    """Requests in flight in the whole process; one more gets 503."""
    per_client: int = 64
    """Requests in flight per client (token subject, else remote address); one more gets 429."""
    retry_after_s: int = 1
    """The `Retry-After` of a shed request, in seconds."""

    def __post_init__(self) -> None:
        if self.total < 0 or self.per_client < 0:
            raise ValueError("admission bounds must be 0 (off) or positive")
        if self.retry_after_s < 1:
            raise ValueError(f"retry_after_s must be at least 1, got {self.retry_after_s!r}")


def is_flight_safety(body: bytes) -> bool:
    """Whether `body` is one JSON-RPC `tools/call` of `stop`, `emergency` or `land` (or
    `invoke_tool` of one): the calls that must reach the drone whatever else is going on."""
    if len(body) > SAFETY_BODY_MAX or b"tools/call" not in body:
        return False
    try:
        message: object = json.loads(body)
    except ValueError:
        return False
    if _field(message, "method") != "tools/call":
        return False
    params = _field(message, "params")
    name = _field(params, "name")
    if name == "invoke_tool":
        name = _field(_field(params, "arguments"), "name")
    return isinstance(name, str) and name in FLIGHT_SAFETY_TOOLS


def _field(value: object, key: str) -> object:
    """`value[key]` of a JSON object, None for anything else."""
    return cast(dict[str, object], value).get(key) if isinstance(value, dict) else None


class Admission:
    """ASGI middleware applying `AdmissionSettings` to POSTs on `mounts`; must sit inside
    `BodyLimit` (the body is read whole here to recognise a flight-safety call)."""

    def __init__(self, app: ASGIApp, *, settings: AdmissionSettings, mounts: Collection[str]) -> None:
        self.app = app
        self.settings = settings
        self.mounts = frozenset(mounts)
        self.in_flight = 0
        self.by_client: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.mounts:
            await self.app(scope, receive, send)
            return
        first = await receive()
        replay: list[Message] = [first]

        async def replayed() -> Message:
            if replay:
                return replay.pop()
            return await receive()

        whole = not first.get("more_body", False)  # always, behind BodyLimit
        if whole and is_flight_safety(first.get("body", b"")):
            await self.app(scope, replayed, send)
            return
        client = client_of(scope)
        refusal = self._refusal(client)
        if refusal is not None:
            status, message = refusal
            _log.warning("request_shed", path=scope["path"], client=client, status=status, reason=message)
            metrics.count_shed(scope["path"])
            await self._shed(send, status, message)
            return
        # Check and act with no await in between: the bounds hold under concurrent requests.
        self.in_flight += 1
        self.by_client[client] += 1
        try:
            await self.app(scope, replayed, send)
        finally:
            self.in_flight -= 1
            self.by_client[client] -= 1
            if self.by_client[client] <= 0:
                del self.by_client[client]

    def _refusal(self, client: str) -> tuple[int, str] | None:
        s = self.settings
        if s.per_client and self.by_client[client] >= s.per_client:
            return 429, f"too many requests in flight for this client (at most {s.per_client})"
        if s.total and self.in_flight >= s.total:
            return 503, f"server busy: {s.total} requests in flight"
        return None

    async def _shed(self, send: Send, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.settings.retry_after_s).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
