"""Small, exact geometry shared by the parser (curve radius check) and the physics (paths).

Frames follow `Pose`: x forward, y left, z up, yaw positive clockwise seen from above. Commands
are given in the drone's body frame; ground truth is kept in the world frame fixed at the
drone's power-on position, so every body-frame displacement goes through `body_to_world`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vec3:
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0

    def __add__(self, other: Vec3) -> Vec3:
        return Vec3(self.x + other.x, self.y + other.y, self.z + other.z)

    def __sub__(self, other: Vec3) -> Vec3:
        return Vec3(self.x - other.x, self.y - other.y, self.z - other.z)

    def scale(self, k: float) -> Vec3:
        return Vec3(self.x * k, self.y * k, self.z * k)

    def dot(self, other: Vec3) -> float:
        return self.x * other.x + self.y * other.y + self.z * other.z

    def cross(self, other: Vec3) -> Vec3:
        return Vec3(
            self.y * other.z - self.z * other.y,
            self.z * other.x - self.x * other.z,
            self.x * other.y - self.y * other.x,
        )

    def norm(self) -> float:
        return math.sqrt(self.dot(self))


def wrap_degrees(angle: float) -> float:
    """An angle folded into (-180, 180], the range the drone reports yaw in."""
    folded = math.fmod(angle, 360.0)
    if folded <= -180.0:
        folded += 360.0
    elif folded > 180.0:
        folded -= 360.0
    return folded


def body_to_world(forward: float, left: float, yaw_deg: float) -> tuple[float, float]:
    """A horizontal body-frame displacement expressed in the world frame.

    Yaw is clockwise-positive while (x, y) is a right-handed forward/left frame, so the body
    frame is the world frame rotated by -yaw.
    """
    psi = math.radians(yaw_deg)
    c, s = math.cos(psi), math.sin(psi)
    return forward * c + left * s, -forward * s + left * c


def world_to_body(dx: float, dy: float, yaw_deg: float) -> tuple[float, float]:
    """Inverse of `body_to_world`."""
    psi = math.radians(yaw_deg)
    c, s = math.cos(psi), math.sin(psi)
    return dx * c - dy * s, dx * s + dy * c


@dataclass(frozen=True, slots=True)
class Arc:
    """The circular arc that starts at the origin, passes through `via` and ends at `end`.

    Parametrised by angle: point(theta) = center + radius * (cos(theta) u + sin(theta) w), with
    theta running from 0 (origin) to `sweep` (end), passing `via` on the way.
    """

    center: Vec3
    radius: float
    u: Vec3
    w: Vec3
    sweep: float

    @property
    def length(self) -> float:
        return self.radius * self.sweep

    def point(self, theta: float) -> Vec3:
        return (
            self.center
            + self.u.scale(self.radius * math.cos(theta))
            + self.w.scale(self.radius * math.sin(theta))
        )


def arc_through(via: Vec3, end: Vec3) -> Arc | None:
    """The arc origin -> via -> end, or None if the three points are (nearly) collinear.

    Circumcentre of the triangle (0, a, b): c = ((|a|^2 b - |b|^2 a) x (a x b)) / (2 |a x b|^2).
    The orientation n = a x b makes origin, via, end counter-clockwise about n, so sweeping from
    the origin in that sense meets `via` before `end`.
    """
    a, b = via, end
    n = a.cross(b)
    n2 = n.dot(n)
    if n2 < 1e-9 * max(1.0, a.dot(a) * b.dot(b)):
        return None
    center = (b.scale(a.dot(a)) - a.scale(b.dot(b))).cross(n).scale(1.0 / (2.0 * n2))
    radius = center.norm()
    u = center.scale(-1.0 / radius)
    w = n.scale(1.0 / math.sqrt(n2)).cross(u)
    rel = end - center
    sweep = math.atan2(rel.dot(w), rel.dot(u)) % (2.0 * math.pi)
    return Arc(center=center, radius=radius, u=u, w=w, sweep=sweep)
