"""Trajectories of the drone's timed actions, as closed-form functions of time.

Every action (takeoff, land, move, rotation, flip, go, curve) is a `Motion`: an immutable path
from a start pose with a start time `t0` and an end time `t1`. Ground truth at any instant is
`pose_at(t)` -- exact, independent of how often the transport polls, so a late timer tick never
bends a path and unit tests can ask for the pose at t=1.234 without stepping a simulation.

Translations are modelled with a fixed overhead (spin-up/brake/settle), half before the drone
starts moving and half after it arrives, around travel at the commanded speed: the state stream
then reports exactly the commanded speed while moving, like the real drone's velocity fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from drone_sim.geometry import Arc, Vec3, wrap_degrees
from drone_sim.pose import Pose


class Motion(Protocol):
    @property
    def t0(self) -> float: ...

    @property
    def t1(self) -> float: ...

    def pose_at(self, t: float) -> Pose: ...


def _progress(t: float, t0: float, travel_s: float, overhead_s: float) -> float:
    moving_from = t0 + overhead_s / 2.0
    if travel_s <= 0.0:
        return 1.0 if t >= moving_from else 0.0
    return min(1.0, max(0.0, (t - moving_from) / travel_s))


@dataclass(frozen=True, slots=True)
class Straight:
    """A straight translation and/or a yaw change (moves, go, rotations, takeoff, landing)."""

    start: Pose
    dx: float
    dy: float
    dz: float
    dyaw: float
    t0: float
    travel_s: float
    overhead_s: float

    @property
    def t1(self) -> float:
        return self.t0 + self.overhead_s + self.travel_s

    def pose_at(self, t: float) -> Pose:
        f = _progress(t, self.t0, self.travel_s, self.overhead_s)
        s = self.start
        return Pose(
            x=s.x + f * self.dx,
            y=s.y + f * self.dy,
            z=s.z + f * self.dz,
            yaw=wrap_degrees(s.yaw + f * self.dyaw),
        )


class FlipAxis(Enum):
    PITCH = "pitch"
    ROLL = "roll"


@dataclass(frozen=True, slots=True)
class Flip:
    """A full 360 degree turn about the pitch or roll axis, in place."""

    start: Pose
    axis: FlipAxis
    sign: float
    t0: float
    duration_s: float

    @property
    def t1(self) -> float:
        return self.t0 + self.duration_s

    def pose_at(self, t: float) -> Pose:
        f = min(1.0, max(0.0, (t - self.t0) / self.duration_s)) if self.duration_s > 0 else 1.0
        angle = 0.0 if f >= 1.0 else wrap_degrees(self.sign * 360.0 * f)
        s = self.start
        if self.axis is FlipAxis.PITCH:
            return Pose(x=s.x, y=s.y, z=s.z, yaw=s.yaw, pitch=angle)
        return Pose(x=s.x, y=s.y, z=s.z, yaw=s.yaw, roll=angle)


@dataclass(frozen=True, slots=True)
class Curve:
    """Travel along a circular arc given in world coordinates relative to the start position."""

    start: Pose
    arc: Arc
    t0: float
    travel_s: float
    overhead_s: float
    floor_z: float = 0.0
    """The arc is flattened where it would dip below this height (the drone holds altitude)."""

    @property
    def t1(self) -> float:
        return self.t0 + self.overhead_s + self.travel_s

    def pose_at(self, t: float) -> Pose:
        f = _progress(t, self.t0, self.travel_s, self.overhead_s)
        p = self.arc.point(f * self.arc.sweep)
        s = self.start
        return Pose(x=s.x + p.x, y=s.y + p.y, z=max(self.floor_z, s.z + p.z), yaw=s.yaw)


def velocity(motion: Motion, t: float, h: float = 0.05) -> Vec3:
    """World-frame velocity (cm/s) by a backward difference: exact for the linear segments."""
    a, b = motion.pose_at(t - h), motion.pose_at(t)
    return Vec3((b.x - a.x) / h, (b.y - a.y) / h, (b.z - a.z) / h)


def duration_for(distance_cm: float, speed_cm_s: float) -> float:
    return abs(distance_cm) / speed_cm_s if speed_cm_s > 0 else math.inf
