"""The operator's safety envelope and the dead-reckoned position it is checked against.

A Tello has no GPS: without mission pads the only position we have is the sum of the moves
the drone confirmed. A move whose outcome is unknown (no reply) may or may not have happened,
so instead of guessing we widen an *uncertainty radius* by its length and check the envelope
against the worst case. Height comes from the state packet whenever it is fresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from servers.drone.core.errors import OutOfRange, SafetyViolation


@dataclass(frozen=True, slots=True)
class SafetyEnvelope:
    """Limits checked before anything is sent. Violations raise `SafetyViolation`."""

    max_height_cm: int = 300
    min_height_cm: int = 30
    """Lowest height a move may end at or a flip may start from: the drone hovers no lower than
    20 cm (the shortest move, too), and a flip dips; below this, land instead."""
    max_distance_cm: int = 500
    min_takeoff_battery: int = 20
    critical_battery: int = 10
    min_flip_battery: int = 50

    def __post_init__(self) -> None:
        if not 20 <= self.max_height_cm <= 3000:
            raise OutOfRange("max_height_cm", self.max_height_cm, "20..3000 cm")
        if not 20 <= self.min_height_cm < self.max_height_cm:
            raise OutOfRange("min_height_cm", self.min_height_cm, f"20..{self.max_height_cm - 1} cm")
        if not 20 <= self.max_distance_cm <= 10000:
            raise OutOfRange("max_distance_cm", self.max_distance_cm, "20..10000 cm")
        for name in ("min_takeoff_battery", "critical_battery", "min_flip_battery"):
            value: int = getattr(self, name)
            if not 0 <= value <= 100:
                raise OutOfRange(name, value, "0..100 %")
        if self.critical_battery >= self.min_takeoff_battery:
            raise OutOfRange(
                "critical_battery",
                self.critical_battery,
                f"below min_takeoff_battery ({self.min_takeoff_battery})",
            )


@dataclass(frozen=True, slots=True)
class Position:
    """Relative to the takeoff point: x forward and y left of the takeoff heading, z up (cm)."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    heading: float = 0.0  # degrees clockwise from the takeoff heading
    uncertainty_cm: float = 0.0

    @property
    def horizontal_cm(self) -> float:
        return math.hypot(self.x, self.y)

    def moved(self, forward: float, left: float, up: float) -> Position:
        """The position after a body-frame displacement at the current heading."""
        rad = math.radians(self.heading)  # clockwise heading: left of forward is -90°
        dx = forward * math.cos(rad) + left * math.sin(rad)
        dy = -forward * math.sin(rad) + left * math.cos(rad)
        return Position(self.x + dx, self.y + dy, self.z + up, self.heading, self.uncertainty_cm)

    def turned(self, degrees_clockwise: float) -> Position:
        heading = (self.heading + degrees_clockwise + 180.0) % 360.0 - 180.0
        return Position(self.x, self.y, self.z, heading, self.uncertainty_cm)

    def less_certain(self, by_cm: float) -> Position:
        return Position(self.x, self.y, self.z, self.heading, self.uncertainty_cm + by_cm)


BODY_VECTORS: dict[str, tuple[int, int, int]] = {
    "forward": (1, 0, 0),
    "back": (-1, 0, 0),
    "left": (0, 1, 0),
    "right": (0, -1, 0),
    "up": (0, 0, 1),
    "down": (0, 0, -1),
}


def check_destination(
    envelope: SafetyEnvelope, current: Position, target: Position, *, height_cm: float
) -> None:
    """Refuse a displacement whose worst-case end point leaves the envelope.

    `height_cm` is the best current height (the state packet's when fresh); the target's
    height is that plus the commanded climb, so drift of the estimate does not accumulate.
    """
    climb = target.z - current.z
    # The higher of the live height and the estimate for the cap, the lower for the floor: a
    # state packet may lag a move that just finished (and the estimate may lag the state).
    high = max(height_cm, current.z) + climb
    low = min(height_cm, current.z) + climb
    if high > envelope.max_height_cm:
        raise SafetyViolation(
            f"refused: the drone would reach {high:.0f} cm height, above the safety envelope's "
            f"max_height_cm={envelope.max_height_cm}. Nothing was sent.",
            limit="max_height_cm",
        )
    if climb < 0 and low < envelope.min_height_cm:
        ground = " would hit the ground" if low < 0 else ""
        raise SafetyViolation(
            f"refused: descending {-climb:.0f} cm from {height_cm:.0f} cm{ground} would end at {low:.0f} cm, "
            f"below the safety envelope's min_height_cm={envelope.min_height_cm}; use land. "
            "Nothing was sent.",
            limit="min_height_cm",
        )
    worst = target.horizontal_cm + target.uncertainty_cm
    if worst > envelope.max_distance_cm and worst > current.horizontal_cm + current.uncertainty_cm:
        raise SafetyViolation(
            f"refused: the drone could end up {worst:.0f} cm from its takeoff point "
            f"(estimate {target.horizontal_cm:.0f} cm ± {target.uncertainty_cm:.0f} cm), beyond the safety "
            f"envelope's max_distance_cm={envelope.max_distance_cm}. Nothing was sent.",
            limit="max_distance_cm",
        )
