"""Hypothesis drives `TelloProtocol` through random interleavings of everything a transport,
a caller and a flaky drone can do, and checks the core's invariants after every step."""

from __future__ import annotations

from dataclasses import astuple, dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from servers.drone.core import commands
from servers.drone.core.commands import Command, Motion, ReplyKind
from servers.drone.core.errors import CommandRejected, CommandTimeout, LinkBusy, OutcomeUnknown
from servers.drone.core.protocol import (
    KEEPALIVE_READS,
    BadDatagram,
    CommandFailed,
    CommandRetried,
    CommandSucceeded,
    Event,
    LinkStatus,
    ProtocolConfig,
    StatusChanged,
    StrayReply,
    TelemetryReceived,
    TelloProtocol,
)
from servers.drone.core.replies import is_error, parse_reply

from .helpers import STATE_PACKET

KEEPALIVE_TEXTS = {b"command", *(c.encode() for c in KEEPALIVE_READS)}

# One of every verb in the command table, built through the public builders.
COMMANDS: list[Command] = [
    *(commands.simple(v) for v in sorted(commands.SIMPLE_COMMANDS)),
    *(commands.query(q) for q in sorted(commands.QUERIES)),
    *(commands.move(d, 20) for d in ("up", "down", "left", "right", "forward", "back")),
    commands.move("forward", 500, speed_cm_s=100),
    commands.rotate("cw", 90),
    commands.rotate("ccw", 360),
    commands.flip("f"),
    commands.go(100, 0, 0, 100),
    commands.curve(100, 100, 0, 200, 0, 0, 60),
    commands.set_speed(50),
    commands.rc(0, 10, 0, 0),
    commands.mdirection(2),
    commands.led_solid(255, 0, 0),
    commands.led_blink(2.0, (1, 2, 3), (4, 5, 6)),
    commands.matrix_char("r", "A"),
    commands.matrix_pattern("r" * 64),
]
assert {c.verb for c in COMMANDS} == set(commands.SPECS)

CORRECT_REPLY: dict[ReplyKind, str] = {
    ReplyKind.OK: "ok",
    ReplyKind.INT: "87",
    ReplyKind.FLOAT: "100.0",
    ReplyKind.SECONDS: "11s",
    ReplyKind.DECIMETRES: "15dm",
    ReplyKind.TEMPERATURE: "85~88C",
    ReplyKind.ATTITUDE: "pitch:0;roll:-1;yaw:0;",
    ReplyKind.ACCELERATION: "agx:-6.00;agy:2.00;agz:-999.00;",
    ReplyKind.MILLIMETRES: "875mm",
    ReplyKind.EXT_TOF: "tof 1234",
    ReplyKind.TEXT: "0TQDG7R0010D0B",
    ReplyKind.LED_OK: "led ok",
    ReplyKind.MATRIX_OK: "matrix ok",
}
ERRORS = [
    "error",
    "error Motor stop",
    "error Not joystick",
    "out of range",
    "forced stop",
    "unknown command: X",
]
# Random replies are built from the characters real replies use, plus those of nan/inf.
GARBAGE_ALPHABET = "0123456789.-:;~ okmdsCtpyawrgxzlbeRMTnaifI\r\n"
REPLIES = st.one_of(
    st.sampled_from([*CORRECT_REPLY.values(), *ERRORS]).map(str.encode),
    st.text(st.sampled_from(GARBAGE_ALPHABET), max_size=12).map(str.encode),
    st.binary(max_size=8),
)
STATES = st.one_of(
    st.just(STATE_PACKET.encode()),
    st.just(STATE_PACKET.replace("mid:-1;x:-100;y:-100;z:-100;mpry:0,0,0;", "").encode()),
    st.just(STATE_PACKET.replace("bat:87;", "").encode()),
    st.binary(max_size=16),
)

CONFIGS = [
    ProtocolConfig(),
    ProtocolConfig(retries=0, disconnect_after=1),
    ProtocolConfig(retries=3, quarantine_s=0.5, settle_s=0.0, keepalive_s=2.0),
    ProtocolConfig(emergency_repeats=1, stale_after_s=3.0, reconnect_s=0.3),
    ProtocolConfig(
        emergency_repeats=4, emergency_interval_s=0.1, motion_min_reply_s=0.5, retry_backoff_s=0.3
    ),
]


@dataclass
class Ticket:
    command: Command
    datagrams: int = 0
    resolved: bool = False
    last_sent_at: float = 0.0


class ProtocolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cfg = ProtocolConfig()
        self.proto = TelloProtocol(self.cfg)
        self.now = 0.0
        self.drone_rx: list[tuple[float, bytes]] = []  # what the fake drone received
        self.last_reply: bytes = b"ok"
        self.tickets: dict[int, Ticket] = {}
        self.user_pending: int | None = None
        self.keepalive_datagrams = 0
        self.reported = LinkStatus.DISCONNECTED
        self.last_state_at: float | None = None
        self.last_reply_at: float | None = None
        self.failures = 0
        self.counters = astuple(self.proto.counters)

    @initialize(cfg=st.sampled_from(CONFIGS), connect_at=st.sampled_from([0.0, 2.5]))
    def start(self, cfg: ProtocolConfig, connect_at: float) -> None:
        self.cfg = cfg
        self.proto = TelloProtocol(cfg, connect_at=connect_at)
        self.now = connect_at
        self.counters = astuple(self.proto.counters)

    # ---- bookkeeping -----------------------------------------------------------------------------

    def _wire(self, owner: int | None, internal: int = 0) -> list[bytes]:
        """Collect what the core emitted; attribute it to `owner` (None: internal keepalive),
        but for the `internal` side keepalives and probes started meanwhile."""
        out = self.proto.datagrams_to_send()
        for data in out:
            self.drone_rx.append((self.now, data))
            mine = owner is not None and data == self.tickets[owner].command.encode()
            if owner is None or (data in KEEPALIVE_TEXTS and (internal > 0 or not mine)):
                assert data in KEEPALIVE_TEXTS, f"an internal datagram that is not a keepalive: {data!r}"
                internal -= owner is not None and internal > 0
                self.keepalive_datagrams += 1
            else:
                assert data == self.tickets[owner].command.encode(), (data, self.tickets[owner].command)
                self.tickets[owner].datagrams += 1
                self.tickets[owner].last_sent_at = self.now
        return out

    def _absorb(self, events: list[Event]) -> int:
        """Check and apply events; returns how many caller tickets they resolved."""
        resolved = 0
        for e in events:
            assert e.at == self.now
            match e:
                case CommandSucceeded() | CommandFailed():
                    t = self.tickets.get(e.ticket)
                    assert t is not None, "an event for a ticket never issued"
                    assert not t.resolved, f"ticket {e.ticket} resolved twice"
                    assert e.ticket == self.user_pending, "resolved a ticket that was not the pending one"
                    assert e.command is t.command
                    self._check_outcome(e, t)
                    t.resolved = True
                    self.user_pending = None
                    resolved += 1
                case CommandRetried():
                    assert e.ticket == self.user_pending
                    assert e.command.idempotent
                    assert 2 <= e.attempt <= 1 + self.cfg.retries
                case StatusChanged():
                    assert e.old is self.reported
                    assert e.new is not e.old
                    self.reported = e.new
                case TelemetryReceived():
                    self.last_state_at = self.now
                case StrayReply() | BadDatagram():
                    pass
                case _:
                    raise AssertionError(f"unknown event {e!r}")
        return resolved

    def _check_outcome(self, e: CommandSucceeded | CommandFailed, t: Ticket) -> None:
        """A reply is only ever handed to a command it can belong to."""
        if isinstance(e, CommandSucceeded) and e.raw:
            assert not is_error(e.raw)
            assert parse_reply(t.command.reply, e.raw) == e.value
            if t.command.motion is Motion.FLIGHT:
                assert self.now - t.last_sent_at >= self.cfg.motion_min_reply_s
        elif isinstance(e, CommandSucceeded) and e.evidence is not None:
            assert t.command.verb == "land"  # the state shows it on the ground
            assert self.proto.telemetry is not None
            assert self.proto.telemetry.height_cm < 10
        elif isinstance(e, CommandSucceeded):
            assert t.command.verb == "emergency"  # unanswered by design, or superseded
        elif isinstance(e.error, CommandRejected):
            assert e.raw is not None
            assert is_error(e.raw)
        elif isinstance(e.error, CommandTimeout):
            assert t.command.idempotent
        elif isinstance(e.error, OutcomeUnknown):
            assert not t.command.idempotent

    def _timer(self) -> None:
        owner = self.user_pending
        before = self.proto.counters.timeouts
        unanswered = self.proto.counters.unanswered_keepalives
        keepalives = self.proto.counters.keepalives
        events = self.proto.handle_timer(self.now)
        resolved = self._absorb(events)
        resolved -= sum(isinstance(e, CommandSucceeded) and e.evidence is not None for e in events)
        self._wire(owner, self.proto.counters.keepalives - keepalives)
        internal_timeouts = self.proto.counters.timeouts - before - resolved
        assert internal_timeouts in (0, 1)
        self.failures += self.proto.counters.unanswered_keepalives - unanswered
        assert self.reported is self.proto.status(self.now)
        deadline = self.proto.next_deadline()
        assert deadline is None or deadline > self.now, f"busy loop: deadline {deadline} at {self.now}"

    # ---- the caller ------------------------------------------------------------------------------

    @rule(cmd=st.sampled_from(COMMANDS))
    def send(self, cmd: Command) -> None:
        allowed = self.proto.can_send(self.now, cmd)
        # Ready for any command means ready for this one.
        assert allowed or not self.proto.can_send(self.now)
        try:
            ticket = self.proto.send(cmd, self.now)
        except LinkBusy:
            assert not allowed
            assert self.proto.datagrams_to_send() == []
            return
        assert allowed, "send accepted a command while can_send was False"
        assert ticket not in self.tickets
        self.tickets[ticket] = Ticket(cmd)
        assert self._wire(ticket) == [cmd.encode()]
        if cmd.expects_reply:
            self.user_pending = ticket
        else:
            self.tickets[ticket].resolved = True  # rc: nothing will ever come back

    @precondition(lambda self: self.proto.can_send(self.now))
    @rule(cmd=st.sampled_from(COMMANDS))
    def send_when_free(self, cmd: Command) -> None:
        self.send(cmd)

    @rule(cmd=st.sampled_from(COMMANDS))
    def caller_gets_the_wire(self, cmd: Command) -> None:
        """A caller that waits its turn (the drone answering keepalives meanwhile), then sends."""
        for _ in range(10):
            if self.proto.can_send(self.now):
                self.send(cmd)
                return
            if self.proto.pending is not None:
                if self.user_pending is not None:
                    return  # another caller's command holds the wire
                self.now += 0.01
                self._reply(b"ok\r\n")  # the keepalive's answer
            else:
                self._wait_for_ready()

    def _wait_for_ready(self) -> None:
        ready = self.proto.ready_at(self.now)
        if ready is None:  # a reconnect probe goes first: the transport's timer sends it
            deadline = self.proto.next_deadline()
            assert deadline is not None
            self.now = max(self.now, deadline)
            self._timer()
        else:
            self.now = max(self.now, ready)

    @precondition(lambda self: self.proto.pending is None)
    @rule()
    def caller_waits_for_ready(self) -> None:
        self._wait_for_ready()

    @rule(cmd=st.sampled_from([commands.simple("emergency"), commands.simple("stop")]))
    def send_priority(self, cmd: Command) -> None:
        pending = self.proto.pending
        if cmd.verb == "stop" and pending is not None and pending.verb == "emergency":
            # stop never displaces an emergency in progress; nothing goes out.
            with pytest.raises(LinkBusy, match="emergency"):
                self.proto.send_priority(cmd, self.now)
            assert self.proto.datagrams_to_send() == []
            return
        ticket, events = self.proto.send_priority(cmd, self.now)
        assert ticket not in self.tickets
        previous = self.user_pending
        resolved = self._absorb(events)
        assert resolved == (previous is not None)
        self.tickets[ticket] = Ticket(cmd)
        assert self._wire(ticket) == [cmd.encode()]
        self.user_pending = ticket

    # ---- the drone -------------------------------------------------------------------------------

    def _reply(self, data: bytes) -> None:
        before = self.proto.counters.replies
        strays = self.proto.counters.strays
        idle = self.proto.pending is None and not self.proto.side_pending
        events = self.proto.receive_reply(data, self.now)
        if idle:  # nothing pending: dropped, never handed on
            assert [type(e) for e in events] in ([StrayReply], [BadDatagram])
        assert self.proto.counters.strays - strays == sum(isinstance(e, StrayReply) for e in events)
        resolved = self._absorb(events)
        assert self.proto.datagrams_to_send() == []
        self.last_reply = data
        handled = self.proto.counters.replies - before
        assert handled - resolved in (0, 1)
        if handled:
            self.last_reply_at = self.now
            self.failures = 0  # any answered command shows the drone is there

    @precondition(lambda self: bool(self.drone_rx))
    @rule()
    def drone_answers_last_command(self) -> None:
        text = self.drone_rx[-1][1].decode()
        verb = next((c.verb for c in COMMANDS if c.text == text), None)
        assert verb is not None
        kind = commands.SPECS[verb].reply
        if kind is not ReplyKind.NONE:
            self._reply(CORRECT_REPLY[kind].encode() + b"\r\n")

    @rule(data=REPLIES)
    def drone_sends_some_reply(self, data: bytes) -> None:
        self._reply(data)

    @rule()
    def drone_duplicates_its_last_reply(self) -> None:
        self._reply(self.last_reply)

    @rule(data=STATES)
    def drone_sends_state(self, data: bytes) -> None:
        bad = self.proto.counters.bad_state
        self._absorb(self.proto.receive_state(data, self.now))
        assert self.proto.datagrams_to_send() == []
        if self.proto.counters.bad_state == bad:
            assert self.last_state_at == self.now
        else:
            assert self.proto.state_age(self.now) in (None, self.now - (self.last_state_at or 0.0))

    # ---- time ------------------------------------------------------------------------------------

    @rule(dt=st.one_of(st.floats(0.0, 0.3), st.floats(0.5, 20.0)))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule()
    def transport_fires_timer(self) -> None:
        self._timer()

    @rule()
    def transport_sleeps_until_next_deadline(self) -> None:
        deadline = self.proto.next_deadline()
        assert deadline is not None
        self.now = max(self.now, deadline)
        self._timer()

    @rule(duration=st.floats(2.0, 40.0))
    def wifi_outage(self, duration: float) -> None:
        """The transport runs every deadline for a while and nothing comes back."""
        self._run_deadlines(self.now + duration, stop_when_idle=False)

    def _run_deadlines(self, until: float, *, stop_when_idle: bool) -> None:
        for _ in range(5000):
            if stop_when_idle and self.user_pending is None:
                return
            deadline = self.proto.next_deadline()
            assert deadline is not None
            # Real time moves on even while a transport spins, hence the small step when no
            # deadline is ahead (only the excused busy loops get there).
            at = max(self.now + 0.001, deadline) if deadline <= self.now else deadline
            if at > until:
                self.now = max(self.now, until)
                return
            self.now = at
            self._timer()
        raise AssertionError("deadlines did not converge")

    # ---- invariants ------------------------------------------------------------------------------

    @invariant()
    def at_most_one_caller_command_pending(self) -> None:
        open_tickets = [n for n, t in self.tickets.items() if not t.resolved]
        assert len(open_tickets) <= 1
        assert open_tickets == ([] if self.user_pending is None else [self.user_pending])
        pending = self.proto.pending
        if self.user_pending is not None:
            assert pending is self.tickets[self.user_pending].command
        else:
            assert pending is None or pending.text == "command"  # the internal keepalive

    @invariant()
    def datagrams_per_ticket(self) -> None:
        for t in self.tickets.values():
            cmd = t.command
            if not cmd.idempotent:
                assert t.datagrams == 1, f"{cmd.text!r} sent {t.datagrams} times"
            elif cmd.verb == "emergency":
                assert 1 <= t.datagrams <= self.cfg.emergency_repeats
            else:
                assert 1 <= t.datagrams <= 1 + self.cfg.retries
        assert self.keepalive_datagrams <= self.proto.counters.keepalives * (1 + self.cfg.retries)
        assert self.proto.counters.sent == len(self.drone_rx)

    @invariant()
    def counters_are_monotonic(self) -> None:
        now = astuple(self.proto.counters)
        assert all(b >= a for a, b in zip(self.counters, now, strict=True)), (self.counters, now)
        self.counters = now

    @invariant()
    def status_follows_the_documented_definition(self) -> None:
        nothing_heard = self.last_reply_at is None and self.last_state_at is None
        if self.failures >= self.cfg.disconnect_after or nothing_heard:
            expected = LinkStatus.DISCONNECTED
        elif self.last_state_at is not None and self.now < self.last_state_at + self.cfg.stale_after_s:
            expected = LinkStatus.CONNECTED
        else:
            expected = LinkStatus.STALE
        assert self.proto.status(self.now) is expected

    @invariant()
    def deadlines_and_readiness_agree(self) -> None:
        pending = self.proto.pending
        if pending is not None:
            assert self.proto.next_deadline() is not None
            assert self.proto.ready_at(self.now) is None
            assert not self.proto.can_send(self.now)
        else:
            ready = self.proto.ready_at(self.now)
            if ready is None and self.proto.status(self.now) is LinkStatus.CONNECTED:
                # A probe sent beside a command that has since resolved is still in flight.
                assert b"command" in [c.encode() for c in self.proto.side_pending]
                assert not self.proto.can_send(self.now)
            elif ready is None:
                # A reconnect probe is due first: callers wait for it, the timer sends it.
                assert not self.proto.can_send(self.now)
                deadline = self.proto.next_deadline()
                assert deadline is not None
            else:
                assert self.proto.can_send(self.now) == (self.now >= ready)

    def teardown(self) -> None:
        # Liveness: a transport that keeps firing timers resolves every caller ticket.
        self._run_deadlines(self.now + 1000.0, stop_when_idle=True)
        assert self.user_pending is None, f"{self.tickets[self.user_pending].command.text!r} never resolved"
        assert all(t.resolved for t in self.tickets.values())


ProtocolMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestProtocolMachine = ProtocolMachine.TestCase


@pytest.mark.parametrize("cfg", CONFIGS)
def test_configs_used_by_the_machine_are_valid(cfg: ProtocolConfig) -> None:
    # The machine asserts "no busy loop"; keep its configs clear of the known emergency-repeat
    # bug (test_protocol.py::test_next_deadline_moves_forward_during_long_emergency_repeats).
    assert (cfg.emergency_repeats - 1) * cfg.emergency_interval_s < commands.SPECS["emergency"].timeout_s
