"""The sans-IO Tello link core: datagrams and `now` in, datagrams and events out.

Like h11 or aioquic, this object owns every protocol decision and touches no socket and no
clock. The transport (`servers.drone.link`) feeds it what arrives and when, calls
`handle_timer(now)` at `next_deadline()`, and writes out whatever `datagrams_to_send()` holds.

The rules it enforces, because the SDK's replies carry no command id:

- One *main* command in flight. A reply goes to the pending command only if it has the form
  that command expects; anything else (nothing pending, a late answer after a timeout, a
  duplicate, an `ok` for a read, an answer faster than a flight action can physically finish)
  is dropped and reported as a `StrayReply` event, never handed to the next caller.
- Beside it, *side reads* whose reply form cannot collide with any other outstanding or owed
  form (`reply_forms_collide`): a number can only be the answer to `battery?` while a move
  waits for `ok`. A caller's read goes out this way (`send_side`) during a long move, and so
  does the keepalive. Error strings fit every form: they go to an idempotent side read before
  a flight action, so a refusal is never pinned on an action that may be running.
- After a reply, a short *settle* window absorbs duplicates before the next send. After a
  timeout, after an answer to a command that went out more than once, and after a command
  was preempted or abandoned, a longer *quarantine* absorbs the answers still owed the same
  way. Each window remembers the reply form it owes, so a read of another form may go out
  during it (`can_send(now, command)`); a flight action waits for every window, because an
  owed error would look like its refusal.
- Only commands whose spec says idempotent are re-sent on timeout. A flight action that times
  out fails with `OutcomeUnknown` and is never re-sent.
- `emergency` and `stop` take the priority path: they preempt whatever is pending and go out
  at once, `emergency` repeated because the drone often leaves it unanswered.
- Keepalive: the drone hears from us at least every `keepalive_s`, counted from the last
  datagram it provably heard (one that was answered, or a flight action the state stream
  shows running), whatever is pending: `command` when the wire is free, a side read while a
  command is pending or the wire is quarantined. While the link is not connected `command`
  becomes a *probe*, every `reconnect_s`, that goes ahead of callers (a rebooted drone
  ignores everything until it hears `command` again) and, with a command pending, beside it:
  that command's own `ok` is then ambiguous and is never taken as its answer.
- A pending `land` on a drone whose state shows it standing on the ground succeeds as
  "already landed" instead of timing out.
- Link status: `connected` while state packets are fresh, `stale` once they are older than
  `stale_after_s`, `disconnected` before anything was heard and after `disconnect_after`
  keepalives in a row went unanswered.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from servers.drone.core import commands
from servers.drone.core.commands import Command, Motion, ReplyKind
from servers.drone.core.errors import (
    CommandRejected,
    CommandTimeout,
    DroneError,
    LinkBusy,
    OutcomeUnknown,
    Preempted,
    ProtocolError,
)
from servers.drone.core.replies import ReplyValue, decode_datagram, is_error, parse_reply
from servers.drone.core.telemetry import Telemetry, parse_state
from servers.drone.core.verdict import on_ground, shows_motion


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
    # A caller's side read waits this long after a flight action went out: its refusal, if
    # any, comes at once and should find the action alone on the wire.
    side_after_s: float = 0.5
    # Keep the drone hearing from us while a command is pending or the wire is quarantined.
    keepalive_beside_pending: bool = True
    # While not connected, probe with `command` even beside a pending command.
    probe_beside_pending: bool = True
    # A pending `land` succeeds once this many state packets in a row show the drone landed
    # (from before the send on: it was down already), or it is refused or times out on a
    # drone the state has shown on the ground for `land_ground_s`.
    land_on_ground_packets: int = 2
    land_ground_s: float = 1.0

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
            "side_after_s",
            "land_ground_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.retries < 0 or self.disconnect_after < 1 or self.emergency_repeats < 1:
            raise ValueError("retries >= 0, disconnect_after >= 1, emergency_repeats >= 1 required")
        if self.land_on_ground_packets < 1:
            raise ValueError("land_on_ground_packets must be >= 1")


# ---- reply forms ------------------------------------------------------------------------------

_R = ReplyKind
_OVERLAPS: Final = frozenset(
    frozenset(pair)
    for pair in (
        (_R.INT, _R.FLOAT),  # "87" is both
        (_R.TEXT, _R.SECONDS),  # "11s" is a valid identifier
        (_R.TEXT, _R.DECIMETRES),
        (_R.TEXT, _R.MILLIMETRES),
    )
)


def reply_forms_collide(a: ReplyKind, b: ReplyKind) -> bool:
    """Whether one successful reply could parse as both forms (`parse_reply`).

    Error strings fit every form and are handled apart. `NONE` (never answered) collides with
    nothing.
    """
    if a is ReplyKind.NONE or b is ReplyKind.NONE:
        return False
    return a is b or frozenset((a, b)) in _OVERLAPS


KEEPALIVE_READS: Final[tuple[Command, ...]] = (
    commands.query("attitude?"),
    commands.query("acceleration?"),
    commands.query("temp?"),
)
"""Side reads that keep the drone alive: harmless, of three mutually disjoint forms (one
always fits beside what is pending), and each a form no other command's reply shares. So
a caller never waits for one: a caller asking the same read simply takes it over (either
answer is the answer to that read), and any other command cannot be answered by it."""

_PROBE: Final = commands.simple("command")


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    at: float


@dataclass(frozen=True, slots=True)
class CommandRetried(Event):
    """A command went out again after its reply timed out (the first send emits no event)."""

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
    evidence: str | None = None
    """Set when no reply proved it: what did (e.g. state showing the drone on the ground)."""


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
    side: bool = False
    # A `command` probe of the same reply form went out beside it: an `ok` is not provably its.
    shadowed: bool = False


@dataclass(frozen=True, slots=True)
class _Owed:
    """Answers that may still arrive for a resolved command: its form, until when."""

    kind: ReplyKind
    until: float
    echo: bool = False
    """A keepalive read's: blocks nobody (a caller asking the same read may take its answer),
    but a caller's read of that form answered meanwhile may have taken it, not its own."""


@dataclass(slots=True)
class _Counters:
    sent: int = 0
    replies: int = 0
    strays: int = 0
    retries: int = 0
    timeouts: int = 0
    bad_state: int = 0
    state_packets: int = 0  # state packets parsed (bad ones are `bad_state`)
    keepalives: int = 0
    side_reads: int = 0  # caller reads sent beside a pending command
    side_keepalives: int = 0  # keepalive reads and probes sent beside a pending command
    side_timeouts: int = 0
    unanswered_keepalives: int = 0  # keepalive/probe rounds that ran out unanswered


@dataclass
class TelloProtocol:
    config: ProtocolConfig = field(default_factory=ProtocolConfig)
    connect_at: float = 0.0
    """When to send the first `command` (keepalive) — the moment the link starts."""

    def __post_init__(self) -> None:
        self._tickets = itertools.count(1)
        self._pending: _Pending | None = None
        self._sides: list[_Pending] = []
        self._outbox: list[bytes] = []
        self._last_send_at: float | None = None
        self._last_heard_at: float | None = None
        self._last_probe_at: float | None = None
        self._quiet_until = self.connect_at  # settle / quarantine of main commands
        self._side_quiet_until = self.connect_at  # the same for side reads
        self._owed: list[_Owed] = []
        self._last_reply_at: float | None = None
        self._last_state_at: float | None = None
        self._telemetry: Telemetry | None = None
        self._landed_packets = 0
        self._land_saw_airborne = False
        self._ground_since: float | None = None
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
    def side_pending(self) -> tuple[Command, ...]:
        """The side reads (callers' and the keepalive's) and side probes in flight."""
        return tuple(s.command for s in self._sides)

    @property
    def telemetry(self) -> Telemetry | None:
        return self._telemetry

    def state_age(self, now: float) -> float | None:
        return None if self._last_state_at is None else max(0.0, now - self._last_state_at)

    def reply_age(self, now: float) -> float | None:
        return None if self._last_reply_at is None else max(0.0, now - self._last_reply_at)

    def heard_age(self, now: float) -> float | None:
        """How long since a datagram the drone provably heard (what the keepalive counts from)."""
        return None if self._last_heard_at is None else max(0.0, now - self._last_heard_at)

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

    def ready_at(self, now: float, command: Command | None = None) -> float | None:
        """When `send` will accept a command; None while something else must happen first (the
        pending command resolves, or a due reconnect probe goes out and resolves).

        Without `command`, for any command at all. With it, for that one: a read may go out
        while an owed answer of another form is still expected.
        """
        if self._pending is not None:
            return None
        if command is None:
            if any(not _adoptable(s) for s in self._sides):
                return None
            ready = max(self._quiet_until, self._side_quiet_until)
        else:
            if any(self._blocks(s.command.reply, command) for s in self._sides if not _adoptable(s)):
                return None
            ready = max(self.connect_at, self._owed_until(command))
        probe = self._probe_due()
        if probe is not None and probe <= max(now, ready):
            return None
        return ready

    def can_send(self, now: float, command: Command | None = None) -> bool:
        ready = self.ready_at(now, command)
        return ready is not None and now >= ready

    def side_ready_at(self, command: Command, now: float) -> float | None:
        """When `send_side` will accept this read; None while an entry in flight blocks it (or
        it is no read)."""
        if not _is_read(command) or self._probe_first(now):
            return None
        ready = max(self.connect_at, self._owed_until(command))
        p = self._pending
        if p is not None:
            if p.internal or reply_forms_collide(p.command.reply, command.reply):
                # Our own keepalive or reconnect probe resolves within a second, and on a
                # drone that stopped answering it must go first: the read waits for the wire.
                return None
            if not p.command.idempotent:
                ready = max(ready, p.first_sent_at + self.config.side_after_s)
        if any(reply_forms_collide(s.command.reply, command.reply) for s in self._sides if not _adoptable(s)):
            return None
        return ready

    def can_send_side(self, command: Command, now: float) -> bool:
        ready = self.side_ready_at(command, now)
        return ready is not None and now >= ready

    def next_deadline(self) -> float | None:
        candidates: list[float] = []
        p = self._pending
        if p is not None:
            candidates.append(self._entry_deadline(p))
        elif not self._internal_side():
            candidates.append(self._keepalive_due())
        candidates.extend(self._entry_deadline(s) for s in self._sides)
        side = self._side_keepalive_plan()
        if side is not None:
            candidates.append(side[0])
        probe = self._side_probe_at()
        if probe is not None:
            candidates.append(probe)
        if self._last_state_at is not None and self._status is LinkStatus.CONNECTED:
            candidates.append(self._last_state_at + self.config.stale_after_s)
        return min(candidates)

    # ---- commands ----

    def send(self, command: Command, now: float) -> int:
        """Put `command` on the wire; returns its ticket. Raises `LinkBusy` if not
        `can_send(now, command)` (which `can_send(now)` implies)."""
        if not self.can_send(now, command):
            held = self._pending.command.text if self._pending else "a settle/quarantine window"
            raise LinkBusy(f"cannot send {command.text!r} now: waiting on {held}")
        return self._start(command, now, internal=False)

    def send_side(self, command: Command, now: float) -> int:
        """Put a read on the wire beside whatever is pending; returns its ticket.

        Raises `LinkBusy` if not `can_send_side` (not a read, or its reply form could be
        mistaken for one already in flight or owed).
        """
        if not self.can_send_side(command, now):
            raise LinkBusy(f"cannot send {command.text!r} beside what is in flight now")
        self.counters.side_reads += 1
        return self._start_side(command, now, internal=False)

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
            self._owe(p.command.reply, now + self.config.quarantine_s)
        ticket = self._start(command, now, internal=False)
        return ticket, events

    def abandon(self, ticket: int, error: DroneError, now: float) -> list[Event]:
        """Fail the pending main command `ticket` with `error` before its timeout.

        For a flight action the state stream shows never started (`servers.drone.core.verdict`):
        its caller learns at once, and the wire is quarantined as after a timeout, for a
        late refusal. Nothing is re-sent. No-op if `ticket` is not the pending command.
        """
        p = self._pending
        if p is None or p.ticket != ticket:
            return []
        self._pending = None
        self.counters.timeouts += 1
        self._quiet_until = max(self._quiet_until, now + self.config.quarantine_s)
        self._owe(p.command.reply, now + self.config.quarantine_s)
        return [] if p.internal else [CommandFailed(now, p.ticket, p.command, error)]

    def _start(self, command: Command, now: float, *, internal: bool) -> int:
        adopted = self._adopt(command)
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
            copies=1 + adopted,
            shadowed=any(reply_forms_collide(s.command.reply, command.reply) for s in self._sides),
        )
        self._landed_packets = 0
        self._land_saw_airborne = False
        return ticket

    def _start_side(self, command: Command, now: float, *, internal: bool) -> int:
        adopted = self._adopt(command)
        ticket = next(self._tickets)
        self._write(command)
        self._last_send_at = now
        self._sides.append(
            _Pending(
                ticket=ticket,
                command=command,
                first_sent_at=now,
                sent_at=now,
                deadline=now + command.timeout_s,
                internal=internal,
                side=True,
                copies=1 + adopted,
            )
        )
        p = self._pending
        if p is not None and reply_forms_collide(p.command.reply, command.reply):
            p.shadowed = True  # only a probe may go out so (see _side_probe_at)
        return ticket

    def _adopt(self, command: Command) -> int:
        """A caller asking the read our keepalive has in flight takes it over: the keepalive's
        entry goes, and whichever copy is answered answers the caller's. Returns how many
        copies it took over (each may still be answered)."""
        taken = [s for s in self._sides if _adoptable(s) and s.command.text == command.text]
        self._sides = [s for s in self._sides if s not in taken]
        return sum(s.copies for s in taken)

    def _write(self, command: Command) -> None:
        self._outbox.append(command.encode())
        self.counters.sent += 1

    # ---- keepalive scheduling ----

    def _keepalive_at(self) -> float | None:
        """When the drone next needs to hear from us: keepalive_s after the last datagram it
        provably heard, and never later than keepalive_s after the last one sent."""
        if self._last_send_at is None:
            return None
        heard = self.connect_at if self._last_heard_at is None else self._last_heard_at
        return min(self._last_send_at, heard) + self.config.keepalive_s

    def _keepalive_due(self) -> float:
        """When the next main `command` (keepalive or probe) goes out, the wire being free."""
        if self._last_send_at is None:
            return max(self.connect_at, self._quiet_until)
        probe = self._probe_due()
        if probe is not None:
            return max(probe, self._quiet_until)
        # Connected: any command resets the drone's 15 s timers. When a quiet window ends, a
        # waiting caller goes first (its command keeps the drone alive just as well);
        # otherwise a keepalive due in the window wins every race for the wire and, retried on
        # a slow link, can starve the caller indefinitely.
        at = self._keepalive_at()
        assert at is not None
        return max(at, self._quiet_until + self.config.keepalive_yield_s)

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

    def _probe_first(self, now: float) -> bool:
        """A main probe is due and the wire is free for it: it goes before any caller read."""
        probe = self._probe_due()
        return self._pending is None and probe is not None and probe <= max(now, self._quiet_until)

    def _internal_side(self) -> bool:
        return any(s.internal for s in self._sides)

    def _side_keepalive_plan(self) -> tuple[float, Command] | None:
        """The side read that keeps the drone alive while the wire is not free, and when."""
        if not self.config.keepalive_beside_pending or self._status is not LinkStatus.CONNECTED:
            return None
        due = self._keepalive_at()
        p = self._pending
        if due is None or self._internal_side() or (p is not None and p.internal):
            return None
        best: tuple[float, Command] | None = None
        for read in KEEPALIVE_READS:
            if p is not None and reply_forms_collide(p.command.reply, read.reply):
                continue
            if any(reply_forms_collide(s.command.reply, read.reply) for s in self._sides):
                continue
            at = max(due, self._owed_until(read))
            if best is None or at < best[0]:
                best = (at, read)
        if best is None or (p is None and best[0] >= self._quiet_until):
            return None  # with the wire free by then, the main keepalive goes instead
        return best

    def _side_probe_at(self) -> float | None:
        """While not connected, the probe goes out beside a pending caller command too."""
        p = self._pending
        if not self.config.probe_beside_pending or p is None or p.internal or p.command.verb == "command":
            return None  # (a caller's pending `command` is a probe itself)
        if self._internal_side():
            return None
        return self._probe_due()

    # ---- owed answers ----

    def _owe(self, kind: ReplyKind, until: float) -> None:
        self._owed.append(_Owed(kind, until))

    def _prune(self, now: float) -> None:
        self._owed = [o for o in self._owed if o.until > now]

    def _blocks(self, kind: ReplyKind, command: Command) -> bool:
        """Whether an answer of `kind` in flight keeps `command` off the wire: it would share
        its form, or, for a flight action, any late error would pass for its refusal."""
        return not command.idempotent or reply_forms_collide(kind, command.reply)

    def _owed_until(self, command: Command) -> float:
        untils = [o.until for o in self._owed if not o.echo and self._blocks(o.kind, command)]
        return max(untils, default=self.connect_at)

    # ---- input ----

    def receive_reply(self, data: bytes, now: float) -> list[Event]:
        events: list[Event] = []
        try:
            text = decode_datagram(data)
        except ProtocolError as exc:
            return [BadDatagram(now, "command", data, str(exc))]
        self._prune(now)
        p = self._pending
        if p is None and not self._sides:
            self._stray(events, now, text, "no command pending (late or duplicate reply)")
            return events
        if is_error(text):
            self._error_reply(events, text, now)
            return events
        entry, value, reason = self._match(text)
        if entry is None:
            self._stray(events, now, text, reason)
            return events
        if (
            entry.command.motion is Motion.FLIGHT
            and now - entry.first_sent_at < self.config.motion_min_reply_s
        ):
            # Refusals come at once, but no flight action can *finish* this fast: a duplicate.
            self._stray(events, now, text, f"too soon to be the completion of {entry.command.text!r}")
            return events
        self._resolve(entry, now)
        self._keepalive_failures = 0
        if not entry.internal:
            events.append(
                CommandSucceeded(
                    now, entry.ticket, entry.command, value, text, now - entry.first_sent_at, entry.attempts
                )
            )
        self._heard(events, entry, now)
        return events

    def _match(self, text: str) -> tuple[_Pending | None, ReplyValue, str]:
        """The one entry in flight this successful reply can belong to."""
        reasons: list[str] = []
        p = self._pending
        # Sides first: where a probe shadows the main command, an `ok` is the probe's.
        for entry in (*self._sides, *([p] if p is not None else [])):
            if entry.shadowed:
                reasons.append(f"ambiguous for {entry.command.text!r}: a probe shares its reply form")
                continue
            try:
                return entry, parse_reply(entry.command.reply, text), ""
            except ProtocolError as exc:
                reasons.append(f"not an answer to {entry.command.text!r}: {exc}")
        return None, None, "; ".join(reasons)

    def _error_reply(self, events: list[Event], text: str, now: float) -> None:
        p = self._pending
        forced_stop = text.strip().lower() == "forced stop"
        if forced_stop:
            # Only a flight action can be stopped; this is the answer of one that was.
            if p is None or p.command.motion is not Motion.FLIGHT:
                self._stray(events, now, text, "answer of a motion that stop interrupted")
                return
            target = p
        else:
            # An error fits every form. Pin it on a caller's side read first (it may simply ask
            # again), then on the main command; our own keepalive reads and probes come last:
            # a Tello answers `command` with `ok` and never refuses a read it hears.
            callers = [s for s in self._sides if not s.internal]
            internal = [s for s in self._sides if s.internal]
            target = callers[0] if callers else p if p is not None else internal[0]
            if target is not p and any(not o.echo for o in self._owed):
                # A command just resolved may still be answered (a duplicate, a late copy):
                # a read or probe beside it is better left to its own answer or timeout.
                self._stray(events, now, text, "an error while other answers are still owed")
                return
        assert target is not None
        self._resolve(target, now)
        self._keepalive_failures = 0  # the drone is there, it just said no
        if not target.internal:
            if target.command.verb == "land" and self._shows_landed(now):
                events.append(self._already_landed(target, now, raw=text))
            else:
                events.append(
                    CommandFailed(
                        now, target.ticket, target.command, CommandRejected(target.command.text, text), text
                    )
                )
        self._heard(events, target, now)

    def receive_state(self, data: bytes, now: float) -> list[Event]:
        try:
            telemetry = parse_state(decode_datagram(data))
        except ProtocolError as exc:
            self.counters.bad_state += 1
            return [BadDatagram(now, "state", data, str(exc))]
        self.counters.state_packets += 1
        previous = self._telemetry
        self._telemetry = telemetry
        if not on_ground(telemetry):
            self._ground_since = None
        elif self._ground_since is None:
            self._ground_since = now
        self._last_state_at = now
        events: list[Event] = [TelemetryReceived(now, telemetry)]
        p = self._pending
        if p is not None and not p.internal and p.command.motion is Motion.FLIGHT:
            if shows_motion(previous, telemetry):
                # The drone is busy with what we sent: it heard us, and it is not idle.
                self._last_heard_at = now
            if p.command.verb == "land":
                down = on_ground(telemetry)
                self._landed_packets = self._landed_packets + 1 if down else 0
                self._land_saw_airborne = self._land_saw_airborne or not down
                # On the ground all along (it landed before we asked), or after the first
                # copy went unanswered: no `ok` is coming that the state has not shown already.
                # (A landing we watched come down answers by itself, after its motors stop.)
                already = (
                    not self._land_saw_airborne and self._landed_packets >= self.config.land_on_ground_packets
                )
                if down and (already or p.attempts > 1 or p.shadowed):
                    self._resolve(p, now, hold=self.config.quarantine_s)  # its `ok` may follow
                    events.append(self._already_landed(p, now, raw=""))
        self._update_status(events, now)
        return events

    def handle_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        self._prune(now)
        self._update_status(events, now)  # first: whether a probe is due depends on it
        p = self._pending
        if p is not None:
            self._entry_timer(events, p, now)
        for side in list(self._sides):
            self._entry_timer(events, side, now)
        self._update_status(events, now)  # a probe that just failed may have disconnected us
        if p is None and now >= self._keepalive_due() and not self._internal_side():
            self.counters.keepalives += 1
            self._last_probe_at = now
            self._start(_PROBE, now, internal=True)
        probe = self._side_probe_at()
        if probe is not None and now >= probe:
            self.counters.keepalives += 1
            self.counters.side_keepalives += 1
            self._last_probe_at = now
            self._start_side(_PROBE, now, internal=True)
        plan = self._side_keepalive_plan()
        if plan is not None and now >= plan[0]:
            self.counters.keepalives += 1
            self.counters.side_keepalives += 1
            self._start_side(plan[1], now, internal=True)
        self._update_status(events, now)
        return events

    # ---- internals ----

    def _entry_deadline(self, p: _Pending) -> float:
        if p.repeats_left:
            # The timeout only counts once every copy is out (handle_timer agrees).
            return p.sent_at + self.config.emergency_interval_s
        return p.resend_at if p.resend_at is not None else p.deadline

    def _entry_timer(self, events: list[Event], p: _Pending, now: float) -> None:
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
            if (
                p.shadowed
                and not any(reply_forms_collide(s.command.reply, p.command.reply) for s in self._sides)
                and self._owed_until(p.command) <= now
            ):
                p.shadowed = False  # the probe and its echoes are gone: this copy's `ok` is its own
            if not p.internal:
                events.append(CommandRetried(now, p.ticket, p.command, p.attempts))
        elif p.resend_at is None and now >= p.deadline and not p.repeats_left:
            self._timeout(events, p, now)

    def _timeout(self, events: list[Event], p: _Pending, now: float) -> None:
        if p.command.verb == "land" and not p.internal and not p.side and self._shows_landed(now):
            self._resolve(p, now, hold=self.config.quarantine_s)
            events.append(self._already_landed(p, now, raw=""))
            return
        retry = p.command.idempotent and p.attempts <= self.config.retries and p.command.verb != "emergency"
        if retry and not _adoptable(p):  # a keepalive read is simply sent again when due
            p.resend_at = now + self.config.retry_backoff_s
            return
        waited = now - p.first_sent_at
        quarantine = self.config.quarantine_s
        if p.internal and p.command.verb == "command":
            self.counters.unanswered_keepalives += 1
            self._keepalive_failures += 1
            if self.status(now) is LinkStatus.DISCONNECTED:
                # Callers are refused while disconnected, so a late `ok` can only answer
                # another probe: probing again sooner brings a rebooted drone back sooner.
                # But the probe it answers then holds its own `ok` owed for a quarantine.
                self._owed.append(_Owed(p.command.reply, now + quarantine, echo=True))
                quarantine = min(quarantine, self.config.reconnect_s)
        if p.side:
            self._sides.remove(p)
            self.counters.side_timeouts += 1
            if _adoptable(p):
                self._owed.append(_Owed(p.command.reply, now + quarantine, echo=True))
            else:
                self._owe(p.command.reply, now + quarantine)
                self._side_quiet_until = max(self._side_quiet_until, now + quarantine)
        else:
            self._owe(p.command.reply, now + quarantine)
            self._pending = None
            self.counters.timeouts += 1
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

    def _resolve(self, p: _Pending, now: float, *, hold: float | None = None) -> None:
        """Close an entry. `hold` given: not by a reply, so every copy's answer is still owed."""
        # One answer came; every other copy sent may still be answered. After a single copy
        # the settle window absorbs duplicates; after several, the quarantine absorbs the rest.
        by_state = hold is not None
        main = self._pending
        if hold is None and p.side and main is not None and main.shadowed:
            # A probe beside a command of the same form: the `ok` it took may have been the
            # command's, and then its own is still on the way.
            hold = self.config.quarantine_s
        if hold is None and any(o.echo and o.kind is p.command.reply for o in self._owed):
            hold = self.config.quarantine_s  # the answer taken may have been a keepalive's
        if hold is None:
            hold = self.config.settle_s if p.copies == 1 else self.config.quarantine_s
        if p.side:
            self._sides.remove(p)
            if _adoptable(p):
                self._owed.append(_Owed(p.command.reply, now + hold, echo=True))
            else:
                self._owe(p.command.reply, now + hold)
                self._side_quiet_until = max(self._side_quiet_until, now + hold)
        else:
            self._owe(p.command.reply, now + hold)
            self._pending = None
            self._quiet_until = max(self._quiet_until, now + hold)
        if not by_state:
            self.counters.replies += 1

    def _heard(self, events: list[Event], p: _Pending, now: float) -> None:
        self._last_reply_at = now
        # A flight action answers when it is done: the drone was busy with it until now. Any
        # other answer proves only that one of the copies arrived, the first at the earliest.
        heard = now if p.command.motion is Motion.FLIGHT else p.first_sent_at
        self._last_heard_at = heard if self._last_heard_at is None else max(self._last_heard_at, heard)
        self._update_status(events, now)

    def _shows_landed(self, now: float) -> bool:
        """Fresh state has shown the drone standing on the ground for a while (a takeoff's
        first second, motors spinning up, looks the same)."""
        since = self._ground_since
        return (
            since is not None
            and self.status(now) is LinkStatus.CONNECTED
            and now - since >= self.config.land_ground_s
        )

    def _already_landed(self, p: _Pending, now: float, *, raw: str) -> CommandSucceeded:
        t = self._telemetry
        height = "?" if t is None else f"{t.height_cm} cm"
        detail = f"; the drone answered {raw!r}" if raw else ""
        return CommandSucceeded(
            now,
            p.ticket,
            p.command,
            True,
            raw,
            now - p.first_sent_at,
            p.attempts,
            evidence=f"already landed: state shows the drone on the ground (h {height}, no motion){detail}",
        )

    def _stray(self, events: list[Event], now: float, text: str, reason: str) -> None:
        self.counters.strays += 1
        events.append(StrayReply(now, text, reason))

    def _update_status(self, events: list[Event], now: float) -> None:
        new = self.status(now)
        if new is not self._status:
            events.append(StatusChanged(now, self._status, new))
            self._status = new


def _adoptable(p: _Pending) -> bool:
    """Our own keepalive read (not a probe): see `KEEPALIVE_READS`."""
    return p.internal and p.side and p.command.verb != "command"


def _is_read(command: Command) -> bool:
    return command.verb.endswith("?") and command.idempotent and command.expects_reply
