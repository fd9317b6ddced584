"""The flight state machine: every state the simulated drone can be in and how it gets there.

The table is the single source of truth: the drone model never assigns a state directly, it
fires a trigger, and a trigger that is not in the table is a bug in the model (`InvalidTransition`),
not a condition to paper over. Tests walk random command sequences and rely on that.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final


class FlightState(Enum):
    OFF = "off"
    """No power: silent, deaf, on the ground."""
    BOOTING = "booting"
    """Powered but not listening yet (after `reboot`)."""
    LANDED = "landed"
    """On the ground, motors stopped."""
    MOTORS_ON = "motors_on"
    """On the ground with motors idling for cooling (`motoron`)."""
    TAKING_OFF = "taking_off"
    HOVERING = "hovering"
    """Airborne and free for the next command (possibly drifting under `rc`)."""
    MOVING = "moving"
    """Airborne and executing one move/rotation/flip/go/curve."""
    LANDING = "landing"
    FALLEN = "fallen"
    """On the ground after the motors were cut in the air (`emergency`)."""

    @property
    def powered(self) -> bool:
        return self is not FlightState.OFF

    @property
    def listening(self) -> bool:
        return self not in (FlightState.OFF, FlightState.BOOTING)

    @property
    def airborne(self) -> bool:
        return self in _AIRBORNE

    @property
    def on_ground(self) -> bool:
        return not self.airborne

    @property
    def motors_running(self) -> bool:
        return self is FlightState.MOTORS_ON or self.airborne

    @property
    def busy(self) -> bool:
        """Executing something that will finish on its own (and must not be overlapped)."""
        return self in (FlightState.TAKING_OFF, FlightState.MOVING, FlightState.LANDING)


_AIRBORNE: Final = frozenset(
    {FlightState.TAKING_OFF, FlightState.HOVERING, FlightState.MOVING, FlightState.LANDING}
)


class Trigger(Enum):
    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    REBOOT = "reboot"
    BOOTED = "booted"
    MOTOR_ON = "motor_on"
    MOTOR_OFF = "motor_off"
    TAKEOFF = "takeoff"
    CLIMBED = "climbed"
    MOTION = "motion"
    MOTION_DONE = "motion_done"
    STOP = "stop"
    LAND = "land"
    AUTO_LAND = "auto_land"
    TOUCHDOWN = "touchdown"
    EMERGENCY = "emergency"


class InvalidTransition(RuntimeError):
    """The model fired a trigger its current state does not accept: a simulator bug."""

    def __init__(self, state: FlightState, trigger: Trigger) -> None:
        super().__init__(f"no transition from {state.value} on {trigger.value}")
        self.state = state
        self.trigger = trigger


def _build() -> dict[tuple[FlightState, Trigger], FlightState]:
    s, t = FlightState, Trigger
    table: dict[tuple[FlightState, Trigger], FlightState] = {
        (s.OFF, t.POWER_ON): s.LANDED,
        (s.BOOTING, t.BOOTED): s.LANDED,
        (s.LANDED, t.MOTOR_ON): s.MOTORS_ON,
        (s.FALLEN, t.MOTOR_ON): s.MOTORS_ON,
        (s.MOTORS_ON, t.MOTOR_OFF): s.LANDED,
        (s.MOTORS_ON, t.EMERGENCY): s.LANDED,
        (s.LANDED, t.TAKEOFF): s.TAKING_OFF,
        (s.FALLEN, t.TAKEOFF): s.TAKING_OFF,
        (s.MOTORS_ON, t.TAKEOFF): s.TAKING_OFF,
        (s.TAKING_OFF, t.CLIMBED): s.HOVERING,
        (s.TAKING_OFF, t.STOP): s.HOVERING,
        (s.HOVERING, t.MOTION): s.MOVING,
        (s.MOVING, t.MOTION_DONE): s.HOVERING,
        (s.MOVING, t.STOP): s.HOVERING,
        (s.HOVERING, t.LAND): s.LANDING,
        (s.LANDING, t.STOP): s.HOVERING,
        (s.LANDING, t.TOUCHDOWN): s.LANDED,
    }
    for state in _AIRBORNE:
        table[(state, t.EMERGENCY)] = s.FALLEN
        if state is not s.LANDING:
            table[(state, t.AUTO_LAND)] = s.LANDING
    for state in FlightState:
        if state.powered:
            table[(state, t.POWER_OFF)] = s.OFF
            table[(state, t.REBOOT)] = s.BOOTING
    return table


TRANSITIONS: Final[Mapping[tuple[FlightState, Trigger], FlightState]] = _build()


def next_state(state: FlightState, trigger: Trigger) -> FlightState:
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise InvalidTransition(state, trigger) from None
