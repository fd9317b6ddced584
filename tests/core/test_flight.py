"""The caller-side flight state machine, without sockets: its table and `is_flying`."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servers.drone.core.flight import (
    AIRBORNE_CM,
    FRESH_FOR_FLIGHT_S,
    TRANSITIONS,
    FlightTracker,
    Phase,
    Trigger,
)


@pytest.mark.parametrize(("phase", "trigger"), list(itertools.product(Phase, Trigger)))
def test_every_trigger_in_every_phase_follows_the_table(phase: Phase, trigger: Trigger) -> None:
    tracker = FlightTracker(phase=phase)
    change = tracker.fire(trigger, at=10.0)
    expected = TRANSITIONS.get((phase, trigger))
    if expected is None:
        assert change is None
        assert tracker.phase is phase
    else:
        assert change is not None
        assert (change.old, change.new, change.trigger) == (phase, expected, trigger)
        assert tracker.phase is expected
    brought_down = expected is not None and trigger in (Trigger.LAND_OK, Trigger.EMERGENCY)
    assert tracker.grounded_at == (10.0 if brought_down else None)


def test_takeoff_land_round_trip_by_verbs() -> None:
    tracker = FlightTracker()
    assert tracker.on_command_succeeded("takeoff", 1.0) is not None
    assert tracker.is_flying(None, None, now=2.0)
    assert tracker.on_command_succeeded("speed", 2.5) is None
    assert tracker.on_command_succeeded("land", 3.0) is not None
    assert tracker.phase is Phase.GROUNDED
    assert tracker.grounded_at == 3.0


def test_an_unanswered_emergency_still_grounds_it() -> None:
    tracker = FlightTracker(phase=Phase.AIRBORNE)
    assert tracker.on_command_failed("emergency", 5.0) is not None
    assert tracker.on_command_failed("forward 50", 6.0) is None
    assert tracker.phase is Phase.GROUNDED


def test_telemetry_on_the_ground_ends_a_flight_we_believed_in() -> None:
    tracker = FlightTracker(phase=Phase.AIRBORNE)
    assert tracker.on_telemetry(AIRBORNE_CM, 1.0) is None
    change = tracker.on_telemetry(AIRBORNE_CM - 1, 2.0)
    assert change is not None
    assert change.trigger is Trigger.ON_GROUND_SEEN
    assert tracker.grounded_at is None  # not our landing: no "grounded since" mark


def test_fresh_height_from_before_our_landing_does_not_resurrect_the_flight() -> None:
    tracker = FlightTracker()
    tracker.on_command_succeeded("takeoff", 0.0)
    tracker.on_command_succeeded("land", 10.0)
    # At 10.3 the newest packet is 0.5 s old: sent at 9.8, before the landing: still grounded.
    assert not tracker.is_flying(80, state_age_s=0.5, now=10.3)
    # A packet sent after the landing showing height: someone else took it off.
    assert tracker.is_flying(80, state_age_s=0.1, now=10.3)


@given(
    height=st.integers(min_value=-10, max_value=3000),
    age=st.one_of(st.none(), st.floats(min_value=0, max_value=30)),
    grounded_at=st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
    now=st.floats(min_value=0, max_value=200),
)
def test_grounded_flies_only_on_fresh_height_sent_after_the_landing(
    height: int, age: float | None, grounded_at: float | None, now: float
) -> None:
    tracker = FlightTracker(grounded_at=grounded_at)
    flying = tracker.is_flying(height, age, now)
    if flying:
        assert age is not None
        assert age < FRESH_FOR_FLIGHT_S
        assert height >= AIRBORNE_CM
        assert grounded_at is None or now - age > grounded_at
    elif age is not None and age < FRESH_FOR_FLIGHT_S and height >= AIRBORNE_CM:
        assert grounded_at is not None
        assert now - age <= grounded_at
