"""The sans-IO core flies `drone_sim`'s sans-IO `Drone` over a simulated bad WiFi, with an
agent that acts on telemetry verdicts the way the link is meant to, and the simulator's
ground truth (never the core's own view) judges the issue-9 guarantees:

- no auto-land and no SDK-mode exit caused by silence, at any loss rate, through bursts of
  total loss and long moves;
- no flight action executed twice, although "did not start" verdicts are acted on by
  sending the action again;
- every "executed" / "did not start" verdict matches what the simulated drone did.

One deterministic event loop, seeded: a failure replays exactly.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from drone_sim.drone import Drone, Output, Reply
from drone_sim.records import EventKind, Outcome
from servers.drone.core import commands
from servers.drone.core.commands import Command
from servers.drone.core.protocol import (
    CommandFailed,
    CommandSucceeded,
    Event,
    ProtocolConfig,
    TelemetryReceived,
    TelloProtocol,
)
from servers.drone.core.verdict import ActionWatch, DidNotStart
from servers.drone.core.verdict import Outcome as Verdict
from tests.support.flight_plan import FLIGHT_PLAN

ME = ("127.0.0.1", 50000)
BATTERY = commands.query("battery?")


@dataclass
class Action:
    """One step of the agent's plan and what became of each attempt."""

    command: Command
    attempts: int = 0
    started_at: float = 0.0
    ended_at: float = 0.0
    sends: list[float] = field(default_factory=list[float])  # when each attempt went out
    verdicts: list[Verdict | None] = field(default_factory=list[Verdict | None])  # per attempt
    result: str = ""


@dataclass
class Air:
    """Both ends and the WiFi between them, on one simulated clock."""

    rng: random.Random
    loss: float
    dup: float = 0.05
    jitter_s: float = 0.05
    blackouts: list[tuple[float, float]] = field(default_factory=list[tuple[float, float]])
    config: ProtocolConfig = field(default_factory=ProtocolConfig)
    reads_beside: bool = True

    def __post_init__(self) -> None:
        self.drone = Drone()
        self.proto = TelloProtocol(self.config)
        self.now = 0.0
        self.seq = itertools.count()
        self.queue: list[tuple[float, int, str, str]] = []  # (at, seq, "drone"|"core", text)
        self.next_state = 0.1
        self.watch: ActionWatch | None = None
        self.watched_ticket: int | None = None
        self.last_telemetry: TelemetryReceived | None = None
        self.resolved: dict[int, CommandSucceeded | CommandFailed] = {}
        self.side_reads: dict[int, float] = {}  # ticket -> when sent beside a flight action
        self.truth_battery: dict[int, int] = {}  # ticket -> the simulated drone's, as it resolved

    def _lost(self) -> bool:
        if any(a <= self.now < b for a, b in self.blackouts):
            return True
        return self.rng.random() < self.loss

    def _to_drone(self) -> None:
        for data in self.proto.datagrams_to_send():
            if not self._lost():
                heapq.heappush(self.queue, (self.now + 0.005, next(self.seq), "drone", data.decode()))

    def _to_core(self, outputs: Sequence[Output]) -> None:
        for out in outputs:
            if not isinstance(out, Reply):
                continue
            for _ in range(2 if self.rng.random() < self.dup else 1):
                if not self._lost():
                    at = self.now + 0.01 + self.rng.uniform(0.0, self.jitter_s)
                    heapq.heappush(self.queue, (at, next(self.seq), "core", out.text))

    def _take(self, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, CommandSucceeded | CommandFailed):
                self.resolved[e.ticket] = e
                self.truth_battery[e.ticket] = self.drone.battery_pct
            elif isinstance(e, TelemetryReceived):
                self.last_telemetry = e
                if self.watch is not None:
                    self.watch.feed(e.telemetry, e.at)
        self._to_drone()

    def run_until(self, until: float) -> None:
        for _ in range(1_000_000):
            times = [until, self.next_state]
            deadline = self.proto.next_deadline()
            if deadline is not None:
                times.append(max(deadline, self.now))
            drone_due = self.drone.next_deadline()
            if drone_due is not None:
                times.append(max(drone_due, self.now))
            if self.queue:
                times.append(self.queue[0][0])
            if self.watch is not None and self.watch.fail_fast_at > self.now:
                times.append(self.watch.fail_fast_at)
            t = min(times)
            self.now = t
            if self.queue and self.queue[0][0] <= t:
                _, _, where, text = heapq.heappop(self.queue)
                if where == "drone":
                    self._to_core(self.drone.handle(text, ME, t).outputs)
                else:
                    self._take(self.proto.receive_reply(text.encode(), t))
            elif drone_due is not None and drone_due <= t:
                self._to_core(self.drone.advance(t))
            elif self.next_state <= t:
                self.next_state = t + 0.1
                self._to_core(self.drone.advance(t))
                packet = self.drone.state_packet(t)
                if packet is not None and not any(a <= t < b for a, b in self.blackouts):
                    self._take(self.proto.receive_state(packet.encode(), t))
            elif deadline is not None and deadline <= t:
                self._take(self.proto.handle_timer(t))
            self._fail_fast()
            if t >= until:
                return
        raise AssertionError("the simulation did not advance")

    def _fail_fast(self) -> None:
        """What the link does with a watch: end a pending action that never started."""
        watch, ticket = self.watch, self.watched_ticket
        if watch is None or ticket is None or ticket in self.resolved:
            return
        verdict = watch.verdict(self.now)
        if verdict.outcome is Verdict.DID_NOT_START:
            error = DidNotStart(watch.command.text, verdict.evidence)
            self._take(self.proto.abandon(ticket, error, self.now))

    def request(self, command: Command, *, watch: bool = False) -> CommandSucceeded | CommandFailed:
        for _ in range(100_000):
            if self.proto.can_send(self.now, command):
                break
            self.run_until(self.now + 0.05)
        ticket = self.proto.send(command, self.now)
        if watch:
            base = self.last_telemetry
            self.watch = ActionWatch(
                command, self.now, baseline=None if base is None else (base.at, base.telemetry)
            )
            self.watched_ticket = ticket
        self._to_drone()
        asked = False
        while ticket not in self.resolved:
            if watch and self.reads_beside and not asked and self.proto.can_send_side(BATTERY, self.now):
                # Another client's get_battery while the action flies: a live answer.
                self.side_reads[self.proto.send_side(BATTERY, self.now)] = self.now
                self._to_drone()
                asked = True
            self.run_until(self.now + 0.5)
        return self.resolved[ticket]


def fly(air: Air, plan: Sequence[Command]) -> list[Action]:
    """The agent: take off, fly the plan, land. "Did not start" is safe to send again."""
    air.run_until(1.0)  # the core's first `command` puts the drone in SDK mode
    steps = [commands.simple("takeoff"), *plan, commands.simple("land")]
    actions = [Action(c) for c in steps]
    for action in actions:
        action.started_at = air.now
        while action.attempts < 4:
            action.attempts += 1
            action.sends.append(air.now)
            outcome = air.request(action.command, watch=True)
            action.sends[-1] = air.watch.sent_at if air.watch is not None else air.now
            watch = air.watch
            assert watch is not None
            if isinstance(outcome, CommandSucceeded):
                action.verdicts.append(None)
                action.result = "ok" if outcome.raw == "ok" else "ok (from state)"
                break
            if isinstance(outcome.error, DidNotStart):
                action.verdicts.append(Verdict.DID_NOT_START)
                action.result = "did not start"
                continue  # safe to send again
            verdict = watch.verdict(air.now)
            action.verdicts.append(verdict.outcome)
            action.result = f"{type(outcome.error).__name__}: {verdict.outcome.value}"
            if verdict.outcome is not Verdict.DID_NOT_START:
                break
        air.watch = None
        air.run_until(air.now + 0.5)
        action.ended_at = air.now
    return actions


def check_ground_truth(air: Air, actions: list[Action]) -> Counter[str]:
    drone = air.drone
    landed_itself = [e for e in drone.events if e.kind in (EventKind.AUTO_LAND, EventKind.SDK_EXITED)]
    assert not landed_itself, landed_itself
    tally: Counter[str] = Counter()
    for action in actions:
        windows = list(itertools.pairwise([*action.sends, action.ended_at]))
        runs: list[int] = []
        for start, end in windows:
            runs.append(
                sum(
                    r.text == action.command.text and start <= r.t < end and r.outcome is not Outcome.REJECTED
                    for r in drone.executed
                )
            )
        assert sum(runs) <= 1, f"{action.command.text!r} ran {runs} times: {action}"
        for verdict, ran in zip(action.verdicts, runs, strict=True):
            if verdict is None:
                continue
            tally[verdict.value] += 1
            if verdict is Verdict.EXECUTED:
                assert ran, f"{action.command.text!r}: 'executed' but the drone never ran it"
            if verdict is Verdict.DID_NOT_START:
                assert not ran, f"{action.command.text!r}: 'did not start' but the drone ran it"
    return tally


@pytest.mark.parametrize(
    ("loss", "seed"), [(0.0, 1), (0.1, 2), (0.3, 3), (0.3, 4), (0.5, 5), (0.5, 6)], ids=lambda v: str(v)
)
def test_no_silence_landing_and_verdicts_match_the_drone(loss: float, seed: int) -> None:
    rng = random.Random(seed)
    # Bursts of 3 s of total loss, both ways, state included (on the clean link: none).
    blackouts = [(t, t + 3.0) for t in sorted(rng.uniform(20.0, 200.0) for _ in range(4 if loss else 0))]
    air = Air(rng, loss, blackouts=blackouts)
    actions = fly(air, FLIGHT_PLAN)
    tally = check_ground_truth(air, actions)
    answered = [air.resolved[t] for t in air.side_reads if isinstance(air.resolved.get(t), CommandSucceeded)]
    for reply in answered:
        assert isinstance(reply, CommandSucceeded)
        assert isinstance(reply.value, int)
        assert abs(reply.value - air.truth_battery[reply.ticket]) <= 1  # live
    if loss == 0.0:
        assert all(a.result == "ok" for a in actions), [a.result for a in actions]
        assert not tally
        assert len(answered) == len(actions)  # every action had a battery read beside it


def test_without_keepalives_beside_pending_commands_the_drone_lands_itself() -> None:
    """The control: the same flights with the issue-9 keepalive switched off."""
    landings = 0
    for seed in range(3):
        air = Air(
            random.Random(seed),
            0.5,
            config=ProtocolConfig(keepalive_beside_pending=False, probe_beside_pending=False),
            reads_beside=False,
        )
        fly(air, FLIGHT_PLAN[:8])
        landings += len([e for e in air.drone.events if e.kind is EventKind.AUTO_LAND])
    assert landings > 0
