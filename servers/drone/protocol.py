"""The sans-IO Tello link core: datagrams and `now` in, datagrams and events out.

Like h11 or aioquic, this object owns every protocol decision and touches no socket and no
clock. The transport (`servers.drone.link`) feeds it what arrives and when, calls
`handle_timer(now)` at `next_deadline()`, and writes out whatever `datagrams_to_send()` holds.

The rules it enforces, because the SDK's replies carry no command id:

- One command in flight. A reply goes to the pending command only if it has the form that
  command expects; anything else (nothing pending, a late answer after a timeout, a
  duplicate, an `ok` for a read, an answer faster than a flight action can physically finish)
  is dropped and reported as a `StrayReply` event, never handed to the next caller.
- After a reply, a short *settle* window absorbs duplicates before the next send. After a
  timeout, after an answer to a command that went out more than once, and after a command
  was preempted, a longer *quarantine* absorbs the answers still owed the same way.
- Only commands whose spec says idempotent are re-sent on timeout. A flight action that times
  out fails with `OutcomeUnknown` and is never re-sent.
- `emergency` and `stop` take the priority path: they preempt whatever is pending and go out
  at once, `emergency` repeated because the drone often leaves it unanswered.
- `command` is re-sent as a keepalive whenever the wire has been quiet for `keepalive_s`.
  While the link is not connected it becomes a *probe*, every `reconnect_s`, that goes ahead
  of callers: a rebooted drone ignores everything until it hears `command` again.
- Link status: `connected` while state packets are fresh, `stale` once they are older than
  `stale_after_s`, `disconnected` before anything was heard and after `disconnect_after`
  keepalives in a row went unanswered.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum

from servers.drone import commands
from servers.drone.commands import Command, Motion
from servers.drone.errors import (
    CommandRejected,
    CommandTimeout,
    DroneError,
    LinkBusy,
    OutcomeUnknown,
    Preempted,
    ProtocolError,
)
from servers.drone.replies import ReplyValue, decode_datagram, is_error, parse_reply
from servers.drone.telemetry import Telemetry, parse_state


class LinkStatus(Enum):
    CONNECTED = "connected"
    STALE = "stale"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class ProtocolConfig:
    keepalive_s: float = 5.0
    # While not connected, probe with `command` this often so a power-cycled drone is back fast.
    reconnect_s: float = 1.0
    stale_after_s: float = 1.0
    disconnect_after: int = 2
    retries: int = 2
    retry_backoff_s: float = 0.1
    settle_s: float = 0.02
    # After a settle/quarantine window, callers get this head start on a routine keepalive.
    keepalive_yield_s: float = 0.1
    quarantine_s: float = 3.0
    # Replies to flight actions sooner than this after the send cannot be theirs.
    motion_min_reply_s: float = 0.1
    emergency_repeats: int = 3
    emergency_interval_s: float = 0.05

    def __post_init__(self) -> None:
        for name in (
            "keepalive_s",
            "reconnect_s",
            "stale_after_s",
            "retry_backoff_s",
            "settle_s",
            "keepalive_yield_s",
            "quarantine_s",
            "motion_min_reply_s",
            "emergency_interval_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.retries < 0 or self.disconnect_after < 1 or self.emergency_repeats < 1:
            raise ValueError("retries >= 0, disconnect_after >= 1, emergency_repeats >= 1 required")


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    at: float


@dataclass(frozen=True, slots=True)
class CommandSent(Event):
    ticket: int
    command: Command
    attempt: int


@dataclass(frozen=True, slots=True)
class CommandSucceeded(Event):
    ticket: int
    command: Command
    value: ReplyValue
    raw: str
    latency_s: float
    attempts: int


@dataclass(frozen=True, slots=True)
class CommandFailed(Event):
    ticket: int
    command: Command
    error: DroneError
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class StrayReply(Event):
    """A reply that belongs to no pending command; it was dropped."""

    raw: str
    reason: str


@dataclass(frozen=True, slots=True)
class TelemetryReceived(Event):
    telemetry: Telemetry


@dataclass(frozen=True, slots=True)
class BadDatagram(Event):
    channel: str
    raw: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class StatusChanged(Event):
    old: LinkStatus
    new: LinkStatus


# ---- the core -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    ticket: int
    command: Command
    first_sent_at: float
    sent_at: float
    deadline: float
    attempts: int = 1
    copies: int = 1  # datagrams sent for it: each may still be answered
    resend_at: float | None = None  # set while backing off before a retry
    repeats_left: int = 0  # emergency: further unconditional copies still to send
    internal: bool = False


@dataclass(slots=True)
class _Counters:
    sent: int = 0
    replies: int = 0
    strays: int = 0
    retries: int = 0
    timeouts: int = 0
    bad_state: int = 0
    keepalives: int = 0


@dataclass
class TelloProtocol:
    config: ProtocolConfig = field(default_factory=ProtocolConfig)
    connect_at: float = 0.0
    """When to send the first `command` (keepalive) — the moment the link starts."""

    def __post_init__(self) -> None:
        self._tickets = itertools.count(1)
        self._pending: _Pending | None = None
        self._outbox: list[bytes] = []
        self._last_send_at: float | None = None
        self._last_probe_at: float | None = None
        self._quiet_until = self.connect_at  # settle / quarantine
        self._last_reply_at: float | None = None
        self._last_state_at: float | None = None
        self._telemetry: Telemetry | None = None
        self._keepalive_failures = 0
        self._status = LinkStatus.DISCONNECTED
        self.counters = _Counters()

    # ---- what the transport asks ----

    def datagrams_to_send(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out

    @property
    def pending(self) -> Command | None:
        return self._pending.command if self._pending else None

    @property
    def telemetry(self) -> Telemetry | None:
        return self._telemetry

    def state_age(self, now: float) -> float | None:
        return None if self._last_state_at is None else max(0.0, now - self._last_state_at)

    def reply_age(self, now: float) -> float | None:
        return None if self._last_reply_at is None else max(0.0, now - self._last_reply_at)

    def status(self, now: float) -> LinkStatus:
        if self._keepalive_failures >= self.config.disconnect_after:
            return LinkStatus.DISCONNECTED
        if self._last_reply_at is None and self._last_state_at is None:
            return LinkStatus.DISCONNECTED
        # Compared as a deadline, exactly as next_deadline() offers it, so float rounding can
        # never leave the timer due but the transition not yet taken.
        if self._last_state_at is None or now >= self._last_state_at + self.config.stale_after_s:
            return LinkStatus.STALE
        return LinkStatus.CONNECTED

    def ready_at(self, now: float) -> float | None:
        """When `send` will accept a command; None while something else must happen first (the
        pending command resolves, or a due reconnect probe goes out and resolves)."""
        if self._pending is not None:
            return None
        probe = self._probe_due()
        if probe is not None and probe <= max(now, self._quiet_until):
            return None
        return self._quiet_until

    def can_send(self, now: float) -> bool:
        ready = self.ready_at(now)
        return ready is not None and now >= ready

    def next_deadline(self) -> float | None:
        candidates: list[float] = []
        p = self._pending
        if p is not None:
            if p.repeats_left:
                # The timeout only counts once every copy is out (handle_timer agrees).
                candidates.append(p.sent_at + self.config.emergency_interval_s)
            else:
                candidates.append(p.resend_at if p.resend_at is not None else p.deadline)
        else:
            candidates.append(self._keepalive_due())
        if self._last_state_at is not None and self._status is LinkStatus.CONNECTED:
            candidates.append(self._last_state_at + self.config.stale_after_s)
        return min(candidates)

    # ---- commands ----

    def send(self, command: Command, now: float) -> int:
        """Put `command` on the wire; returns its ticket. Raises `LinkBusy` if not `can_send`."""
        if not self.can_send(now):
            held = self._pending.command.text if self._pending else "a settle/quarantine window"
            raise LinkBusy(f"cannot send {command.text!r} now: waiting on {held}")
        return self._start(command, now, internal=False)

    def send_priority(self, command: Command, now: float) -> tuple[int, list[Event]]:
        """`emergency`/`stop`: preempt whatever is pending and send at once."""
        if command.verb not in ("emergency", "stop"):
            raise ValueError(f"only emergency and stop take the priority path, not {command.verb!r}")
        events: list[Event] = []
        p = self._pending
        if p is not None and p.command.verb == "emergency" and command.verb == "stop":
            raise LinkBusy("stop not sent: an emergency motor stop is in progress")
        if p is not None:
            self._pending = None
            if p.internal:
                pass
            elif p.command.verb == "emergency":
                # A second emergency supersedes the first; both callers' copies went out.
                events.append(
                    CommandSucceeded(now, p.ticket, p.command, None, "", now - p.first_sent_at, p.attempts)
                )
            else:
                events.append(
                    CommandFailed(now, p.ticket, p.command, Preempted(p.command.text, command.verb))
                )
            # The overtaken command may still be answered: hold the wire once this one is done.
            self._quiet_until = max(self._quiet_until, now + self.config.quarantine_s)
        ticket = self._start(command, now, internal=False)
        return ticket, events

    def _start(self, command: Command, now: float, *, internal: bool) -> int:
        ticket = next(self._tickets)
        self._write(command)
        self._last_send_at = now
        if not command.expects_reply:
            return ticket  # rc: fire and forget, never pending
        repeats = self.config.emergency_repeats - 1 if command.verb == "emergency" else 0
        self._pending = _Pending(
            ticket=ticket,
            command=command,
            first_sent_at=now,
            sent_at=now,
            deadline=now + command.timeout_s,
            repeats_left=repeats,
            internal=internal,
        )
        return ticket

    def _write(self, command: Command) -> None:
        self._outbox.append(command.encode())
        self.counters.sent += 1

    def _keepalive_due(self) -> float:
        if self._last_send_at is None:
            return max(self.connect_at, self._quiet_until)
        probe = self._probe_due()
        if probe is not None:
            return max(probe, self._quiet_until)
        # Connected: any command resets the drone's 15 s timers, so quiet time is what counts.
        # When a quiet window ends, a waiting caller goes first (its command keeps the drone
        # alive just as well); otherwise a keepalive due in the window wins every race for the
        # wire and, retried on a slow link, can starve the caller indefinitely.
        return max(
            self._last_send_at + self.config.keepalive_s, self._quiet_until + self.config.keepalive_yield_s
        )

    def _probe_due(self) -> float | None:
        """While not connected, `command` goes out every reconnect_s *before* the next caller
        command: a drone that rebooted ignores everything else, so a caller polling it must
        not starve the one datagram that brings it back into SDK mode."""
        if self._status is LinkStatus.CONNECTED:
            return None
        last = self._last_probe_at
        return (
            self.connect_at if last is None else last + min(self.config.reconnect_s, self.config.keepalive_s)
        )

    # ---- input ----

    def receive_reply(self, data: bytes, now: float) -> list[Event]:
        events: list[Event] = []
        try:
            text = decode_datagram(data)
        except ProtocolError as exc:
            return [BadDatagram(now, "command", data, str(exc))]
        p = self._pending
        if p is None:
            self._stray(events, now, text, "no command pending (late or duplicate reply)")
            return events
        if is_error(text):
            if text.strip().lower() == "forced stop" and p.command.motion is not Motion.FLIGHT:
                # Only a flight action can be stopped; this is the answer of one that was.
                self._stray(events, now, text, "answer of a motion that stop interrupted")
                return events
            self._resolve(p, now)
            self._keepalive_failures = 0  # the drone is there, it just said no
            if not p.internal:
                events.append(
                    CommandFailed(now, p.ticket, p.command, CommandRejected(p.command.text, text), text)
                )
            self._heard(events, now)
            return events
        try:
            value = parse_reply(p.command.reply, text)
        except ProtocolError as exc:
            self._stray(events, now, text, f"not an answer to {p.command.text!r}: {exc}")
            return events
        if p.command.motion is Motion.FLIGHT and now - p.first_sent_at < self.config.motion_min_reply_s:
            # Refusals come at once, but no flight action can *finish* this fast: a duplicate.
            self._stray(events, now, text, f"too soon to be the completion of {p.command.text!r}")
            return events
        self._resolve(p, now)
        self._keepalive_failures = 0
        if not p.internal:
            events.append(
                CommandSucceeded(now, p.ticket, p.command, value, text, now - p.first_sent_at, p.attempts)
            )
        self._heard(events, now)
        return events

    def receive_state(self, data: bytes, now: float) -> list[Event]:
        try:
            telemetry = parse_state(decode_datagram(data))
        except ProtocolError as exc:
            self.counters.bad_state += 1
            return [BadDatagram(now, "state", data, str(exc))]
        self._telemetry = telemetry
        self._last_state_at = now
        events: list[Event] = [TelemetryReceived(now, telemetry)]
        self._update_status(events, now)
        return events

    def handle_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        self._update_status(events, now)  # first: whether a probe is due depends on it
        p = self._pending
        if p is not None:
            if p.repeats_left and now >= p.sent_at + self.config.emergency_interval_s:
                self._write(p.command)
                p.sent_at = now
                p.repeats_left -= 1
                p.copies += 1
            if p.resend_at is not None and now >= p.resend_at:
                self._write(p.command)
                p.copies += 1
                p.resend_at = None
                p.sent_at = now
                p.deadline = now + p.command.timeout_s
                p.attempts += 1
                self._last_send_at = now
                self.counters.retries += 1
                if not p.internal:
                    events.append(CommandSent(now, p.ticket, p.command, p.attempts))
            elif p.resend_at is None and now >= p.deadline and not p.repeats_left:
                self._timeout(events, p, now)
        elif now >= self._keepalive_due():
            self.counters.keepalives += 1
            self._last_probe_at = now
            self._start(commands.simple("command"), now, internal=True)
        self._update_status(events, now)
        return events

    # ---- internals ----

    def _timeout(self, events: list[Event], p: _Pending, now: float) -> None:
        if p.command.idempotent and p.attempts <= self.config.retries and p.command.verb != "emergency":
            p.resend_at = now + self.config.retry_backoff_s
            return
        self._pending = None
        self.counters.timeouts += 1
        waited = now - p.first_sent_at
        quarantine = self.config.quarantine_s
        if p.internal:
            self._keepalive_failures += 1
            if self.status(now) is LinkStatus.DISCONNECTED:
                # Callers are refused while disconnected, so a late `ok` can only answer
                # another probe: probing again sooner brings a rebooted drone back sooner.
                quarantine = min(quarantine, self.config.reconnect_s)
        self._quiet_until = max(self._quiet_until, now + quarantine)
        if p.internal:
            return
        if p.command.verb == "emergency":
            # Often unanswered by design: the copies went out; report success unconfirmed.
            events.append(CommandSucceeded(now, p.ticket, p.command, None, "", waited, p.attempts))
        elif p.command.idempotent:
            events.append(
                CommandFailed(now, p.ticket, p.command, CommandTimeout(p.command.text, p.attempts, waited))
            )
        else:
            events.append(CommandFailed(now, p.ticket, p.command, OutcomeUnknown(p.command.text, waited)))

    def _resolve(self, p: _Pending, now: float) -> None:
        self._pending = None
        # One answer came; every other copy sent may still be answered. After a single copy
        # the settle window absorbs duplicates; after several, the quarantine absorbs the rest.
        hold = self.config.settle_s if p.copies == 1 else self.config.quarantine_s
        self._quiet_until = max(self._quiet_until, now + hold)
        self.counters.replies += 1

    def _heard(self, events: list[Event], now: float) -> None:
        self._last_reply_at = now
        self._update_status(events, now)

    def _stray(self, events: list[Event], now: float, text: str, reason: str) -> None:
        self.counters.strays += 1
        events.append(StrayReply(now, text, reason))

    def _update_status(self, events: list[Event], now: float) -> None:
        new = self.status(now)
        if new is not self._status:
            events.append(StatusChanged(now, self._status, new))
            self._status = new
