"""`ActionWatch` judged against `drone_sim`'s own state stream: the simulated drone is driven
directly (its sans-IO `Drone`), a flight action is executed, lost on the way, or refused, and
the packets it streams (jittered, some dropped, with hover noise) are fed to the watch."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drone_sim.drone import Drone
from servers.drone.core import commands
from servers.drone.core.commands import Command
from servers.drone.core.telemetry import Telemetry, parse_state
from servers.drone.core.verdict import ActionWatch, DidNotStart, Outcome, on_ground, shows_motion

from .helpers import STATE_PACKET

SENDER = ("127.0.0.1", 50000)
PERIOD_S = 0.1
HOVER = commands.query("battery?")


@dataclass
class Flight:
    """A simulated drone and the state packets it streamed, as a lossy link delivered them."""

    drone: Drone
    rng: random.Random
    drop: float = 0.0
    jitter_s: float = 0.0
    noise: bool = False
    t: float = 0.0
    delivered: list[tuple[float, Telemetry]] | None = None

    def __post_init__(self) -> None:
        self.delivered = []
        self._noisy_before = False

    def run(self, until: float, *, streaming: bool = True) -> None:
        """Let time pass to `until`, streaming state every 100 ms."""
        assert self.delivered is not None
        while self.t + PERIOD_S <= until:
            self.t += PERIOD_S
            self.drone.advance(self.t)
            packet = self.drone.state_packet(self.t)
            if not streaming or packet is None or self.rng.random() < self.drop:
                continue
            telemetry = self._noisy(parse_state(packet))
            arrival = self.t + self.rng.uniform(0.0, self.jitter_s)
            self.delivered.append((max(arrival, self.delivered[-1][0] if self.delivered else 0.0), telemetry))
        self.t = until
        self.drone.advance(until)

    def _noisy(self, t: Telemetry) -> Telemetry:
        """A real Tello's hover noise: a lone ±1 dm/s reading, never two in a row."""
        if not self.noise or self._noisy_before or self.rng.random() > 0.15:
            self._noisy_before = False
            return t
        self._noisy_before = True
        return replace(t, vgx_dm_s=t.vgx_dm_s + self.rng.choice((-1, 1)))

    def send(self, text: str) -> None:
        self.drone.handle(text, SENDER, self.t)


def airborne(rng: random.Random, **kwargs: float | bool) -> Flight:
    flight = Flight(Drone(), rng, **kwargs)  # pyright: ignore[reportArgumentType]
    flight.send("command")
    flight.run(0.1)
    flight.send("takeoff")
    flight.run(7.0)
    assert flight.drone.pose_at(flight.t).z > 70
    return flight


def watch_over(flight: Flight, command: Command, sent_at: float) -> ActionWatch:
    assert flight.delivered is not None
    before = [(at, tel) for at, tel in flight.delivered if at < sent_at]
    watch = ActionWatch(command, sent_at, baseline=(before[-1] if before else None))
    return watch


def feed_and_judge(watch: ActionWatch, flight: Flight, sent_at: float) -> list[tuple[float, Outcome]]:
    """Feed every packet delivered after the send; the verdict after each one."""
    assert flight.delivered is not None
    seen: list[tuple[float, Outcome]] = []
    for at, telemetry in flight.delivered:
        if at >= sent_at:
            watch.feed(telemetry, at)
            seen.append((at, watch.verdict(at).outcome))
    return seen


ACTIONS: list[tuple[Command, float]] = [
    # (command, how long the simulated drone takes at its default 100 cm/s, plus a margin)
    (commands.move("up", 30), 2.5),
    (commands.move("down", 40), 2.5),
    (commands.move("forward", 100), 3.0),
    (commands.move("left", 50), 2.5),
    (commands.move("back", 20), 2.0),
    (commands.rotate("cw", 90), 2.0),
    (commands.rotate("ccw", 45), 1.5),
    (commands.flip("f"), 3.0),
    (commands.go(60, 40, 30, 50), 4.0),
    (commands.curve(60, 60, 0, 120, 0, 0, 40), 6.5),
    (commands.simple("land"), 4.0),
]


@settings(max_examples=40, deadline=None)
@given(
    action=st.sampled_from(ACTIONS),
    fate=st.sampled_from(["executed", "lost"]),
    seed=st.integers(0, 2**32 - 1),
    drop=st.sampled_from([0.0, 0.2]),
    jitter=st.sampled_from([0.0, 0.04]),
    noise=st.booleans(),
)
def test_verdict_matches_what_the_simulated_drone_did(
    action: tuple[Command, float], fate: str, seed: int, drop: float, jitter: float, noise: bool
) -> None:
    command, takes_s = action
    flight = airborne(random.Random(seed), drop=drop, jitter_s=jitter, noise=noise)
    sent_at = flight.t
    if fate == "executed":
        flight.send(command.text)  # its `ok` is lost on the way back
    flight.run(sent_at + takes_s + 1.0)
    watch = watch_over(flight, command, sent_at)
    seen = feed_and_judge(watch, flight, sent_at)
    outcomes = {outcome for _, outcome in seen}
    final = watch.verdict(flight.t)
    if fate == "executed":
        # Never "did not start" at any moment, whatever the link did to the packets.
        assert Outcome.DID_NOT_START not in outcomes, final
        if final.outcome is Outcome.UNKNOWN:
            # A short, fast move partly or wholly inside a stretch of dropped packets.
            assert drop > 0, final
        else:
            assert final.outcome is Outcome.EXECUTED, final
    elif final.outcome is Outcome.UNKNOWN:
        # Dropped packets can hide a short, fast move entirely: then nothing is claimed.
        assert drop > 0, final
        assert final.evidence.startswith("state gap of ")
        assert Outcome.EXECUTED not in outcomes
    else:
        assert Outcome.EXECUTED not in outcomes
        assert final.outcome is Outcome.DID_NOT_START, final
        assert "safe to send again" in final.evidence
        # Fail fast: not before the reaction bound, and soon after it.
        decided = min(at for at, outcome in seen if outcome is Outcome.DID_NOT_START)
        assert watch.fail_fast_at <= decided <= watch.fail_fast_at + 0.7


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), noise=st.booleans())
def test_takeoff_verdicts(seed: int, noise: bool) -> None:
    for fate in ("executed", "lost"):
        flight = Flight(Drone(), random.Random(seed), noise=noise)
        flight.send("command")
        flight.run(1.0)
        sent_at = flight.t
        if fate == "executed":
            flight.send("takeoff")
        flight.run(sent_at + 8.0)
        watch = watch_over(flight, commands.simple("takeoff"), sent_at)
        seen = feed_and_judge(watch, flight, sent_at)
        final = watch.verdict(flight.t)
        if fate == "executed":
            assert Outcome.DID_NOT_START not in {o for _, o in seen}
            assert final.outcome is Outcome.EXECUTED
            assert "height went 0 → 80 cm" in final.evidence
        else:
            assert final.outcome is Outcome.DID_NOT_START
            assert watch.fail_fast_at == pytest.approx(sent_at + 4.0)


def test_executed_move_names_the_height_change() -> None:
    flight = airborne(random.Random(1))
    sent_at = flight.t
    flight.send("up 30")
    flight.run(sent_at + 3.0)
    watch = watch_over(flight, commands.move("up", 30), sent_at)
    feed_and_judge(watch, flight, sent_at)
    verdict = watch.verdict(flight.t)
    assert verdict.outcome is Outcome.EXECUTED
    assert "height went 80 → 110 cm" in verdict.evidence


def test_coming_down_never_passes_for_the_commanded_action() -> None:
    """A `go` whose datagram was lost while the drone landed (its own auto-land, another
    client): the height fell by more than the path is long, but that is no execution."""
    flight = airborne(random.Random(8))
    sent_at = flight.t
    flight.send("land")  # not ours: the `go` below never reached the drone
    flight.run(sent_at + 8.0)
    go = commands.go(100, 50, 20, 40)
    watch = watch_over(flight, go, sent_at)
    feed_and_judge(watch, flight, sent_at)
    verdict = watch.verdict(flight.t)
    assert verdict.outcome is Outcome.UNKNOWN
    assert verdict.evidence.startswith("the drone came down (height went 80 → 0 cm)")


def test_a_refused_action_did_not_start() -> None:
    """A flip below 50 % battery gets `error` (lost here): nothing moves."""
    flight = airborne(random.Random(2))
    flight.drone.set_battery(30.0, flight.t)
    sent_at = flight.t
    flight.send("flip f")
    flight.run(sent_at + 3.0)
    watch = watch_over(flight, commands.flip("f"), sent_at)
    feed_and_judge(watch, flight, sent_at)
    verdict = watch.verdict(flight.t)
    assert verdict.outcome is Outcome.DID_NOT_START
    assert verdict.evidence.startswith("no motion for 3.0 s after sending while state kept flowing")
    assert "height 80 cm" in verdict.evidence


def test_no_verdict_of_no_motion_before_the_reaction_bound() -> None:
    flight = airborne(random.Random(3))
    sent_at = flight.t
    flight.run(sent_at + 1.5)
    watch = watch_over(flight, commands.move("forward", 100), sent_at)
    feed_and_judge(watch, flight, sent_at)
    verdict = watch.verdict(flight.t)
    assert verdict.outcome is Outcome.UNKNOWN
    assert "no sign of starting yet" in verdict.evidence


def test_stale_state_is_unknown() -> None:
    flight = airborne(random.Random(4))
    sent_at = flight.t
    flight.send("forward 100")
    flight.run(sent_at + 4.0, streaming=False)  # the stream stopped as the command went out
    watch = watch_over(flight, commands.move("forward", 100), sent_at)
    assert watch.verdict(flight.t).outcome is Outcome.UNKNOWN
    assert "no state packet since sending" in watch.verdict(flight.t).evidence


def test_a_gap_in_the_stream_proves_nothing() -> None:
    flight = airborne(random.Random(5))
    sent_at = flight.t
    flight.run(sent_at + 0.3)
    flight.run(sent_at + 1.5, streaming=False)
    flight.run(sent_at + 3.0)
    watch = watch_over(flight, commands.move("forward", 100), sent_at)
    feed_and_judge(watch, flight, sent_at)
    verdict = watch.verdict(flight.t)
    assert verdict.outcome is Outcome.UNKNOWN
    assert "state gap of 1.3 s" in verdict.evidence


def test_a_move_cut_short_is_unknown() -> None:
    """It started (so it was heard) but did not go the distance: not "executed"."""
    flight = airborne(random.Random(6))
    sent_at = flight.t
    flight.send("forward 300")
    flight.run(sent_at + 1.0)
    flight.send("stop")
    flight.run(sent_at + 5.0)
    watch = watch_over(flight, commands.move("forward", 300), sent_at)
    seen = feed_and_judge(watch, flight, sent_at)
    assert Outcome.DID_NOT_START not in {o for _, o in seen}
    verdict = watch.verdict(flight.t)
    assert verdict.outcome is Outcome.UNKNOWN
    assert verdict.evidence.startswith("motion seen 0.")


def test_a_tiny_turn_never_counts_as_not_started() -> None:
    flight = airborne(random.Random(7))
    sent_at = flight.t
    flight.run(sent_at + 3.0)  # lost: nothing happens, but a 3° turn would barely show
    watch = watch_over(flight, commands.rotate("cw", 3), sent_at)
    feed_and_judge(watch, flight, sent_at)
    assert watch.verdict(flight.t).outcome is Outcome.UNKNOWN


def test_land_on_a_drone_already_down_is_executed() -> None:
    flight = Flight(Drone(), random.Random(8))
    flight.send("command")
    flight.run(2.0)
    sent_at = flight.t
    flight.send("land")  # refused with "error Motor stop", and that is lost too
    flight.run(sent_at + 1.0)
    watch = watch_over(flight, commands.simple("land"), sent_at)
    feed_and_judge(watch, flight, sent_at)
    verdict = watch.verdict(flight.t)
    assert verdict.outcome is Outcome.EXECUTED
    assert verdict.evidence.startswith("already on the ground")


def test_a_known_slow_speed_lets_a_gap_prove_no_motion() -> None:
    """At 20 cm/s a 50 cm move shows in the velocities for 2.5 s: a 0.6 s gap hides nothing
    (at up to 100 cm/s it could)."""
    flight = airborne(random.Random(9))
    sent_at = flight.t
    flight.run(sent_at + 1.0)
    flight.run(sent_at + 1.5, streaming=False)
    flight.run(sent_at + 3.0)
    verdicts: list[Outcome] = []
    for speed in (None, 20.0):
        watch = ActionWatch(commands.move("forward", 50), sent_at, speed_cm_s=speed)
        feed_and_judge(watch, flight, sent_at)
        verdicts.append(watch.verdict(flight.t).outcome)
    assert verdicts == [Outcome.UNKNOWN, Outcome.DID_NOT_START]


def test_only_flight_actions_get_a_watch() -> None:
    with pytest.raises(ValueError, match="not a flight action"):
        ActionWatch(HOVER, 0.0)


def test_did_not_start_error_carries_the_evidence() -> None:
    error = DidNotStart("up 30", "no motion for 2.0 s")
    assert "'up 30' did not start: no motion for 2.0 s" in str(error)


def test_per_packet_checks() -> None:
    still = parse_state(STATE_PACKET.replace(";h:0;", ";h:80;"))
    drifting = replace(still, vgx_dm_s=1)
    assert on_ground(parse_state(STATE_PACKET))
    assert not on_ground(still)
    assert not shows_motion(still, drifting)  # one reading is noise
    assert shows_motion(drifting, drifting)
    assert shows_motion(still, replace(still, yaw_deg=5))
    assert shows_motion(None, replace(still, vgz_dm_s=-5))
