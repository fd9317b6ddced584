"""Admission control for the MCP endpoints: a bounded number of requests in flight, per client
and in all, so a crowd of readers cannot queue the operator's `stop` behind them.

Under overload a request beyond a bound is shed at once, before the SDK parses it: 429 when
its client already has `per_client` requests in flight, 503 when the process has `total`;
both with `Retry-After`, so well-behaved clients back off instead of piling on. Flight-safety
calls (`stop`, `emergency`, `land`, directly or through a tool mode's `invoke_tool`) are never
shed, never counted and never wait for a slot: they are recognised from the body `BodyLimit`
has already buffered, by a cheap parse of small bodies only (a safety call is a few hundred
bytes; a large body is never one, and is not parsed here).

Requests admitted are processed a few at a time (`turns`), the rest waiting in arrival order:
the event loop serves every request in progress a step in turn, so with 64 busy readers a
`stop` would otherwise take 64 readers' steps for each of its own (~100 ms at 64 clients, 10x
its idle time; see `benchmarks/lane.py`). A turn ends when its request does, or `turn_s`
after it began: a request that waits (a move, a question to the human) stops holding one.

Only POSTs to the MCP mounts are counted: a GET stream lives as long as its session and would
hold a slot forever, and probes or admin routes are the operator's.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final, cast

import anyio
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
    turns: int = 4
    """Requests admitted but not shed are processed this many at a time, the rest wait in
    arrival order: the event loop serves every busy request a step per turn, so the fewer
    there are, the sooner a flight-safety call (which never waits) reaches the drone."""
    turn_s: float = 0.25
    """The longest one request keeps its turn: one that waits (a move, a question to the human)
    gives it up then, so slow calls cannot hold the quick ones back, nor deadlock them."""

    def __post_init__(self) -> None:
        if self.total < 0 or self.per_client < 0 or self.turns < 0:
            raise ValueError("admission bounds must be 0 (off) or positive")
        if not (math.isfinite(self.turn_s) and self.turn_s > 0):
            raise ValueError(f"turn_s must be a positive number of seconds, got {self.turn_s!r}")
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


class Turns:
    """At most `size` holders at once, the rest waiting in arrival order; a holder's turn ends
    when it gives it back or `hold_s` after it began, whichever is first."""

    def __init__(self, size: int, hold_s: float, now: Callable[[], float] = anyio.current_time) -> None:
        self.size = size
        self.hold_s = hold_s
        self._now = now
        self._holders: dict[int, float] = {}
        """ticket -> when its turn began; insertion order is that order."""
        self._waiting: deque[tuple[int, anyio.Event]] = deque()
        self._tickets = itertools.count()

    @property
    def holding(self) -> int:
        return len(self._holders)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def take(self) -> int:
        """Wait for a turn; the ticket to give back."""
        ticket = next(self._tickets)
        self._expire()
        if not self._waiting and len(self._holders) < self.size:
            self._holders[ticket] = self._now()
            return ticket
        entry = (ticket, anyio.Event())
        self._waiting.append(entry)
        try:
            while not entry[1].is_set():
                oldest = next(iter(self._holders.values()), None)
                left = math.inf if oldest is None else oldest + self.hold_s - self._now()
                with anyio.move_on_after(max(left, 0.0)):
                    await entry[1].wait()
                self._expire()
        except BaseException:
            if entry[1].is_set():
                self.give(ticket)
            else:
                self._waiting.remove(entry)
            raise
        return ticket

    def give(self, ticket: int) -> None:
        if self._holders.pop(ticket, None) is not None:
            self._expire()

    def _expire(self) -> None:
        """End the turns that are over, then hand free turns to the longest waiting."""
        now = self._now()
        for ticket, since in list(self._holders.items()):
            if now - since < self.hold_s:
                break
            del self._holders[ticket]
        while self._waiting and len(self._holders) < self.size:
            ticket, event = self._waiting.popleft()
            self._holders[ticket] = now
            event.set()


class Admission:
    """ASGI middleware applying `AdmissionSettings` to POSTs on `mounts`; must sit inside
    `BodyLimit` (the body is read whole here to recognise a flight-safety call)."""

    def __init__(self, app: ASGIApp, *, settings: AdmissionSettings, mounts: Collection[str]) -> None:
        self.app = app
        self.settings = settings
        self.mounts = frozenset(mounts)
        self.in_flight = 0
        self.by_client: Counter[str] = Counter()
        self.turns = Turns(settings.turns, settings.turn_s) if settings.turns else None

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
        ticket: int | None = None
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            if ticket is not None and self.turns is not None:
                self.turns.give(ticket)
            self.in_flight -= 1
            self.by_client[client] -= 1
            if self.by_client[client] <= 0:
                del self.by_client[client]

        async def sending(message: Message) -> None:
            # The slot is free before the last byte leaves: a keep-alive client may send its
            # next request the moment it has the answer, and must not find itself still
            # counted (64 clients behind one address were shed at a bound of 64).
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()
            await send(message)

        try:
            if self.turns is not None:
                ticket = await self.turns.take()
            await self.app(scope, replayed, sending)
        finally:
            release()

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
