"""Hypothesis flies `TelloProtocol` against a model drone on a lossy, duplicating, delaying
link, callers sending commands and side reads at random, and checks the issue-9 guarantees
against the model's ground truth (every reply is tagged with the datagram it answers):

- while the link is connected, the drone is sent something at least every `keepalive_s`
  (plus the callers' head start), whatever is pending;
- while nothing sent has been heard for longer than that, something goes out every ~1 s;
- no successful reply is ever handed to a command it does not answer, and no error to a
  flight action that did not get it;
- a `land` resolved from telemetry ("already landed") resolves only with the model drone on
  the ground.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from servers.drone.core import commands
from servers.drone.core.commands import Command, Motion
from servers.drone.core.errors import CommandRejected, LinkBusy
from servers.drone.core.protocol import (
    KEEPALIVE_READS,
    CommandFailed,
    CommandRetried,
    CommandSucceeded,
    Event,
    LinkStatus,
    ProtocolConfig,
    StatusChanged,
    TelloProtocol,
    reply_forms_collide,
)

from .helpers import STATE_PACKET

READS = [commands.query(q) for q in ("battery?", "height?", "tof?", "sn?", "attitude?", "time?", "speed?")]
ACTIONS = [
    commands.move("up", 20),
    commands.move("forward", 200),
    commands.rotate("cw", 90),
    commands.simple("takeoff"),
    commands.simple("land"),
]
OTHERS = [commands.set_speed(50), commands.simple("streamon")]
KEEPALIVE_TEXTS = {"command", *(c.text for c in KEEPALIVE_READS)}
READ_VALUES = {
    "battery?": "87",
    "height?": "8dm",
    "tof?": "875mm",
    "sn?": "0TQDG7R0010D0B",
    "attitude?": "pitch:0;roll:-1;yaw:0;",
    "acceleration?": "agx:-6.00;agy:2.00;agz:-999.00;",
    "temp?": "85~88C",
    "time?": "11s",
    "speed?": "100.0",
}
GAP_SLACK_S = 0.1 + 1e-6  # the head start a waiting caller gets over a routine keepalive
UNHEARD_RESEND_S = 1.2  # a read's timeout plus the retry backoff
MAX_REPLY_DELAY_S = 2.5  # below the 3 s quarantine: later than that no protocol can tell
CONFIGS = [ProtocolConfig(), ProtocolConfig(keepalive_s=2.0), ProtocolConfig(retries=0, disconnect_after=3)]


@dataclass(order=True)
class _Delivery:
    at: float
    seq: int
    text: str = field(compare=False)
    answers: int = field(compare=False)  # the datagram id it answers


class KeepaliveMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cfg = ProtocolConfig()
        self.proto = TelloProtocol(self.cfg)
        self.now = 0.0
        self.seq = itertools.count()
        # the link
        self.loss = 0.0
        self.dup = 0.0
        self.delay = 0.0
        self.rng_state = 1
        self.inbox: list[_Delivery] = []  # replies on their way to the core
        # the model drone
        self.sdk = False
        self.streaming = True
        self.height: int = 0
        self.busy: tuple[float, int] | None = None  # (done at, datagram id) of a running action
        self.next_state_at = 0.0
        # bookkeeping: datagram id -> (owner ticket or None for internal, text)
        self.datagrams: dict[int, tuple[int | None, str]] = {}
        self.tickets: dict[int, Command] = {}
        self.open: set[int] = set()
        self.last_send_at: float | None = None
        self.connected_since: float | None = None

    @initialize(cfg=st.sampled_from(CONFIGS))
    def start(self, cfg: ProtocolConfig) -> None:
        self.cfg = cfg
        self.proto = TelloProtocol(cfg)

    # ---- randomness the machine controls (hypothesis draws the parameters) -----------------------

    def _chance(self, p: float) -> bool:
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        self.rng_state = (self.rng_state * 1103515245 + 12345) % 2**31
        return self.rng_state / 2**31 < p

    # ---- the wire ----------------------------------------------------------------------------

    def _emitted(self, events: list[Event], owner: int | None = None) -> None:
        """Attribute the core's datagrams: `owner`'s, a caller's retry, or our own keepalive."""
        retries = [e.ticket for e in events if isinstance(e, CommandRetried)]
        for data in self.proto.datagrams_to_send():
            text = data.decode()
            ticket = owner
            if ticket is None or self.tickets[ticket].text != text:
                ticket = next((t for t in retries if self.tickets[t].text == text), None)
                if ticket is not None:
                    retries.remove(ticket)
            if ticket is None:
                assert text in KEEPALIVE_TEXTS, f"internal datagram {text!r}"
            owner = None
            self._to_drone(text, ticket)

    def _to_drone(self, text: str, ticket: int | None) -> None:
        self._check_gap(self.now)
        self.last_send_at = self.now
        ident = next(self.seq)
        self.datagrams[ident] = (ticket, text)
        if self._chance(self.loss):
            return
        reply = self._drone_handles(text, ident)
        if reply is not None:
            self._reply_later(reply, ident, self.now)

    def _reply_later(self, text: str, ident: int, at: float) -> None:
        for _ in range(2 if self._chance(self.dup) else 1):
            if not self._chance(self.loss):
                heapq.heappush(self.inbox, _Delivery(at + self.delay, next(self.seq), text, ident))

    def _drone_handles(self, text: str, ident: int) -> str | None:
        if text == "command":
            self.sdk = True
            return "ok"
        if not self.sdk:
            return None
        if text in READ_VALUES:
            return READ_VALUES[text]
        verb = text.split()[0]
        if commands.SPECS[verb].motion is not Motion.FLIGHT:
            return "ok"
        if self.busy is not None:
            return "error Not joystick"
        if (verb == "takeoff") == (self.height > 0):
            return "error Motor stop" if verb == "land" else "error"
        spec_timeout = next(c.timeout_s for c in ACTIONS if c.verb == verb)
        # Done before the core gives up on it, so its `ok` is never later than a quarantine.
        self.busy = (self.now + min(3.0, spec_timeout - 1.0), ident)
        return None

    # ---- time ----------------------------------------------------------------------------------

    def _advance(self, until: float) -> None:
        for _ in range(20_000):
            candidates = [until, self.next_state_at]
            deadline = self.proto.next_deadline()
            if deadline is not None:
                candidates.append(max(deadline, self.now))
            if self.inbox:
                candidates.append(self.inbox[0].at)
            if self.busy is not None:
                candidates.append(self.busy[0])
            t = max(self.now, min(candidates))
            self._check_gap(t)
            self.now = t
            if self.busy is not None and self.busy[0] <= t:
                _, ident = self.busy
                self.busy = None
                verb = self.datagrams[ident][1].split()[0]
                self.height = {"takeoff": 80, "land": 0}.get(verb, self.height)
                self._reply_later("ok", ident, t)
            elif self.inbox and self.inbox[0].at <= t:
                d = heapq.heappop(self.inbox)
                self._core_gets_reply(d)
            elif self.next_state_at <= t:
                self.next_state_at = t + 0.1
                if self.streaming and self.sdk:
                    packet = STATE_PACKET.replace(";h:0;", f";h:{self.height};")
                    self._absorb(self.proto.receive_state(packet.encode(), t))
            elif deadline is not None and deadline <= t:
                events = self.proto.handle_timer(t)
                self._absorb(events)
                self._emitted(events)
                after = self.proto.next_deadline()
                assert after is None or after > t, f"busy loop at {t}"
            if t >= until:
                return
        raise AssertionError("time did not advance")

    # ---- checks --------------------------------------------------------------------------------

    def _check_gap(self, t: float) -> None:
        """Just before `t`: the link was connected since `connected_since` (nothing changed it
        in between, or an event would have come first)."""
        if self.connected_since is None or self.last_send_at is None:
            return
        since = max(self.last_send_at, self.connected_since)
        assert t - since <= self.cfg.keepalive_s + GAP_SLACK_S, (
            f"nothing sent from {since:.3f} to {t:.3f} while connected (keepalive {self.cfg.keepalive_s} s)"
        )
        heard = self.proto.heard_age(self.now)
        if heard is not None and heard > self.cfg.keepalive_s + UNHEARD_RESEND_S + GAP_SLACK_S:
            assert t - since <= UNHEARD_RESEND_S + GAP_SLACK_S, (
                f"nothing heard for {heard:.2f} s, yet nothing sent from {since:.3f} to {t:.3f}"
            )

    def _core_gets_reply(self, d: _Delivery) -> None:
        events = self.proto.receive_reply(d.text.encode(), self.now)
        assert self.proto.datagrams_to_send() == []
        answered_owner, answered_text = self.datagrams[d.answers]
        for e in events:
            if isinstance(e, CommandSucceeded) and e.raw:
                command = self.tickets[e.ticket]
                assert answered_text == command.text, (
                    f"{d.text!r} (answer to {answered_text!r}) given to {command.text!r}"
                )
                # The same ticket, or a keepalive read of the same text the caller took over.
                assert answered_owner in (e.ticket, None), (answered_owner, e.ticket)
            if isinstance(e, CommandFailed) and isinstance(e.error, CommandRejected):
                command = self.tickets[e.ticket]
                if command.motion is Motion.FLIGHT:
                    assert answered_owner == e.ticket, (
                        f"{d.text!r} (from {answered_text!r}) failed {command.text!r}"
                    )
        self._absorb(events)

    def _absorb(self, events: list[Event]) -> None:
        for e in events:
            match e:
                case CommandSucceeded() | CommandFailed():
                    assert e.ticket in self.open, f"ticket {e.ticket} resolved twice or never issued"
                    self.open.discard(e.ticket)
                    if isinstance(e, CommandSucceeded) and e.evidence is not None:
                        assert e.command.verb == "land"
                        assert self.height == 0, "'already landed' while flying"
                        assert self.busy is None, "'already landed' while busy"
                case StatusChanged():
                    if e.new is LinkStatus.CONNECTED:
                        self.connected_since = self.now
                    elif e.old is LinkStatus.CONNECTED:
                        self.connected_since = None
                case _:
                    pass

    # ---- callers -------------------------------------------------------------------------------

    @rule(command=st.sampled_from([*READS, *ACTIONS, *OTHERS]))
    def caller_sends(self, command: Command) -> None:
        if not self.proto.can_send(self.now, command):
            return
        ticket = self.proto.send(command, self.now)
        self.tickets[ticket] = command
        self.open.add(ticket)
        self._emitted([], ticket)

    @rule(command=st.sampled_from(READS))
    def caller_reads_beside(self, command: Command) -> None:
        allowed = self.proto.can_send_side(command, self.now)
        try:
            ticket = self.proto.send_side(command, self.now)
        except LinkBusy:
            assert not allowed
            return
        assert allowed
        self.tickets[ticket] = command
        self.open.add(ticket)
        self._emitted([], ticket)

    @rule(main=st.sampled_from([*READS, *ACTIONS]), side=st.sampled_from(READS))
    def caller_sends_and_reads_beside(self, main: Command, side: Command) -> None:
        """Two callers at once: the likeliest moment for two answers to be in flight."""
        self.caller_sends(main)
        self.caller_reads_beside(side)

    # ---- the world -----------------------------------------------------------------------------

    @rule(dt=st.floats(0.01, 20.0))
    def time_passes(self, dt: float) -> None:
        self._advance(self.now + dt)

    @rule(loss=st.sampled_from([0.0, 0.1, 0.3, 0.5, 1.0]), dup=st.sampled_from([0.0, 0.2]))
    def wifi_changes(self, loss: float, dup: float) -> None:
        self.loss, self.dup = loss, dup

    @rule(delay=st.floats(0.0, MAX_REPLY_DELAY_S), seed=st.integers(1, 2**30))
    def latency_changes(self, delay: float, seed: int) -> None:
        self.delay = delay
        self.rng_state = seed

    @rule(duration=st.floats(0.5, 6.0))
    def burst_of_total_loss(self, duration: float) -> None:
        loss, self.loss = self.loss, 1.0
        self._advance(self.now + duration)
        self.loss = loss

    @precondition(lambda self: self.sdk)
    @rule()
    def drone_leaves_sdk_mode(self) -> None:
        """Rebooted or timed out: silent (no state, deaf but to `command`) until probed."""
        self.sdk = False
        self.busy = None

    @rule()
    def state_stream_stops_or_resumes(self) -> None:
        self.streaming = not self.streaming

    @invariant()
    def side_reads_never_collide(self) -> None:
        sides = self.proto.side_pending
        main = self.proto.pending
        entries: list[Command] = [*sides, *([main] if main else [])]
        for a, b in itertools.combinations(entries, 2):
            if a.text == "command" or b.text == "command":
                continue  # a probe may share `ok` with the pending command: it shadows it
            assert not reply_forms_collide(a.reply, b.reply), (a.text, b.text)

    def teardown(self) -> None:
        # Liveness: with the WiFi clean again every caller's ticket resolves.
        self.loss = self.dup = 0.0
        self.streaming = True
        self._advance(self.now + 60.0)  # > three attempts of the longest timeout, and a quarantine
        assert not self.open, [self.tickets[t].text for t in self.open]


KeepaliveMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestKeepaliveMachine = KeepaliveMachine.TestCase
