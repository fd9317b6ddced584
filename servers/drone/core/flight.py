"""What the caller side believes about the drone's flight, as a small sans-IO state machine.

The drone's state stream says how high it is; only our own record says whether a takeoff we
sent succeeded, and when we last saw it brought down. The two together answer "is it flying?"
(`FlightTracker.is_flying`): a takeoff we saw succeed, or fresh telemetry showing height that
was sent after our last landing (a packet from before the landing must not resurrect it).

Transitions (`TRANSITIONS`) happen on our commands' outcomes and on telemetry:

| from | trigger | to |
|---|---|---|
| grounded | takeoff succeeded | airborne |
| airborne | land succeeded, emergency sent | grounded (and `grounded_at` is set) |
| airborne | telemetry on the ground | grounded (our landing, or it came down by itself) |

Everything else leaves the phase as it is. No I/O, no clock: times come in as arguments.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class Phase(enum.Enum):
    GROUNDED = "grounded"
    AIRBORNE = "airborne"


class Trigger(enum.Enum):
    TAKEOFF_OK = "takeoff succeeded"
    LAND_OK = "land succeeded"
    EMERGENCY = "emergency sent"
    ON_GROUND_SEEN = "telemetry on the ground"


TRANSITIONS: Final[dict[tuple[Phase, Trigger], Phase]] = {
    (Phase.GROUNDED, Trigger.TAKEOFF_OK): Phase.AIRBORNE,
    (Phase.AIRBORNE, Trigger.LAND_OK): Phase.GROUNDED,
    (Phase.AIRBORNE, Trigger.EMERGENCY): Phase.GROUNDED,
    (Phase.AIRBORNE, Trigger.ON_GROUND_SEEN): Phase.GROUNDED,
    # A landing or emergency confirmed while we already thought it grounded (another client
    # flew it, or we restarted mid-flight) still moves the "grounded since" mark.
    (Phase.GROUNDED, Trigger.LAND_OK): Phase.GROUNDED,
    (Phase.GROUNDED, Trigger.EMERGENCY): Phase.GROUNDED,
}

AIRBORNE_CM: Final = 10
"""Height (cm) at or above which a state packet shows the drone in the air."""
FRESH_FOR_FLIGHT_S: Final = 5.0
"""How old a state packet may be and still show, on its own, that the drone is flying."""


@dataclass(frozen=True, slots=True)
class Change:
    """A transition that happened: what caused it, and where it went."""

    trigger: Trigger
    old: Phase
    new: Phase
    at: float


@dataclass(slots=True)
class FlightTracker:
    phase: Phase = Phase.GROUNDED
    grounded_at: float | None = None
    """When a landing or emergency of ours last brought it down (None: never)."""

    def fire(self, trigger: Trigger, at: float) -> Change | None:
        """Apply `trigger`; the change, or None where the table has no transition."""
        new = TRANSITIONS.get((self.phase, trigger))
        if new is None:
            return None
        change = Change(trigger, self.phase, new, at)
        self.phase = new
        if trigger in (Trigger.LAND_OK, Trigger.EMERGENCY):
            self.grounded_at = at
        return change

    def on_command_succeeded(self, verb: str, at: float) -> Change | None:
        match verb:
            case "takeoff":
                return self.fire(Trigger.TAKEOFF_OK, at)
            case "land":
                return self.fire(Trigger.LAND_OK, at)
            case "emergency":
                return self.fire(Trigger.EMERGENCY, at)
            case _:
                return None

    def on_command_failed(self, verb: str, at: float) -> Change | None:
        """An emergency counts even unanswered: the drone often does not acknowledge it."""
        return self.fire(Trigger.EMERGENCY, at) if verb == "emergency" else None

    def on_telemetry(self, height_cm: int, at: float) -> Change | None:
        """A state packet. On the ground while we believed it airborne: it came down (our own
        landing whose `ok` is still on its way, or by itself: auto-land, reboot, another
        client; the caller tells them apart by what it has pending)."""
        if height_cm >= AIRBORNE_CM:
            return None
        return self.fire(Trigger.ON_GROUND_SEEN, at)

    def is_flying(self, height_cm: int | None, state_age_s: float | None, now: float) -> bool:
        """Best knowledge: a takeoff we saw succeed, or a fresh state packet showing height that
        was sent after our last landing or emergency."""
        if self.phase is Phase.AIRBORNE:
            return True
        if height_cm is None or state_age_s is None or state_age_s >= FRESH_FOR_FLIGHT_S:
            return False
        if height_cm < AIRBORNE_CM:
            return False
        return self.grounded_at is None or now - state_age_s > self.grounded_at
