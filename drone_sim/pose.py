"""Where the simulated drone is and how it is oriented: shared by the physics and the camera."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pose:
    """Position in cm relative to the takeoff point (x forward, y left, z up) and attitude in degrees.

    `yaw` is the heading, positive clockwise seen from above, in (-180, 180].
    """

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
