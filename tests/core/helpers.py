"""Test-side oracles for the sans-IO core: independent geometry and a driver that plays transport.

Nothing here imports the code under test's private helpers, so a bug there cannot hide itself
by agreeing with its own oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from servers.drone.core.protocol import Event, ProtocolConfig, TelloProtocol

Point = tuple[int, int, int]

ORIGIN: Point = (0, 0, 0)


def _cross(a: tuple[Fraction, ...], b: tuple[Fraction, ...]) -> tuple[Fraction, Fraction, Fraction]:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: tuple[Fraction, ...], b: tuple[Fraction, ...]) -> Fraction:
    return sum((x * y for x, y in zip(a, b, strict=True)), Fraction(0))


def circumcircle(p1: Point, p2: Point) -> tuple[tuple[Fraction, Fraction, Fraction], Fraction] | None:
    """Exact centre and squared radius of the circle through the origin, p1 and p2 (None: collinear)."""
    a = tuple(Fraction(v) for v in p1)
    b = tuple(Fraction(v) for v in p2)
    n = _cross(a, b)
    nn = _dot(n, n)
    if nn == 0:
        return None
    # centre = (|a|^2 (b x n) + |b|^2 (n x a)) / (2 |n|^2), the textbook circumcentre with A at 0.
    bxn = _cross(b, n)
    nxa = _cross(n, a)
    aa, bb = _dot(a, a), _dot(b, b)
    centre = tuple((aa * u + bb * v) / (2 * nn) for u, v in zip(bxn, nxa, strict=True))
    c3 = (centre[0], centre[1], centre[2])
    return c3, _dot(c3, c3)


def arc_length_cm(p1: Point, p2: Point) -> float:
    """Length of the arc that starts at the origin, passes through p1 and ends at p2."""
    circle = circumcircle(p1, p2)
    assert circle is not None
    centre, r2 = circle
    o = tuple(float(v) for v in centre)
    n = _cross(tuple(Fraction(v) for v in p1), tuple(Fraction(v) for v in p2))
    norm = math.sqrt(float(_dot(n, n)))
    unit_n = tuple(float(v) / norm for v in n)

    def angle(p: Point) -> float:
        u = tuple(-c for c in o)  # origin - centre
        v = tuple(pi - c for pi, c in zip(p, o, strict=True))
        cx = (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])
        sin_part = sum(c * k for c, k in zip(cx, unit_n, strict=True))
        cos_part = sum(x * y for x, y in zip(u, v, strict=True))
        return math.atan2(sin_part, cos_part) % (2 * math.pi)

    t1, t2 = angle(p1), angle(p2)
    sweep = t2 if t1 < t2 else 2 * math.pi - t2
    return math.sqrt(float(r2)) * sweep


@dataclass
class Driver:
    """Plays the transport around a `TelloProtocol`: feeds input, fires timers, collects output."""

    proto: TelloProtocol
    now: float = 0.0
    wire: list[tuple[float, bytes]] = field(default_factory=list[tuple[float, bytes]])
    events: list[Event] = field(default_factory=list[Event])

    @classmethod
    def create(cls, config: ProtocolConfig | None = None, connect_at: float = 0.0) -> Driver:
        proto = TelloProtocol(config or ProtocolConfig(), connect_at=connect_at)
        return cls(proto, now=connect_at)

    def _take(self, events: list[Event]) -> list[Event]:
        for datagram in self.proto.datagrams_to_send():
            self.wire.append((self.now, datagram))
        self.events.extend(events)
        return events

    def timer(self, at: float | None = None) -> list[Event]:
        if at is not None:
            assert at >= self.now, "time never runs backwards"
            self.now = at
        return self._take(self.proto.handle_timer(self.now))

    def run_until(self, until: float, *, max_steps: int = 10_000) -> list[Event]:
        """Fire every deadline up to `until`, as the transport would, then stop at `until`.

        Fails if a deadline does not move forward after it fired (a busy loop in a transport).
        """
        collected: list[Event] = []
        for _ in range(max_steps):
            deadline = self.proto.next_deadline()
            if deadline is None or deadline > until:
                break
            at = max(deadline, self.now)
            collected += self.timer(at)
            after = self.proto.next_deadline()
            assert after is None or after > self.now, (
                f"next_deadline {after} not after handle_timer({self.now}): busy loop"
            )
        else:
            raise AssertionError("run_until did not converge")
        if until > self.now:
            self.now = until
        return collected

    def reply(self, data: bytes | str, at: float | None = None) -> list[Event]:
        if at is not None:
            assert at >= self.now
            self.now = at
        raw = data.encode() if isinstance(data, str) else data
        return self._take(self.proto.receive_reply(raw, self.now))

    def state(self, data: bytes | str | None = None, at: float | None = None) -> list[Event]:
        if at is not None:
            assert at >= self.now
            self.now = at
        raw = STATE_PACKET if data is None else data
        raw = raw.encode() if isinstance(raw, str) else raw
        return self._take(self.proto.receive_state(raw, self.now))

    def sent_texts(self, since: float = -math.inf) -> list[str]:
        return [d.decode() for t, d in self.wire if t >= since]

    def drain_wire(self) -> list[bytes]:
        out = [d for _, d in self.wire]
        self.wire.clear()
        return out


# The reference's example packet (tello-sdk.md, "State packet"), verbatim.
STATE_PACKET = (
    "mid:-1;x:-100;y:-100;z:-100;mpry:0,0,0;pitch:0;roll:0;yaw:0;vgx:0;vgy:0;vgz:0;templ:60;temph:62;"
    "tof:10;h:0;bat:87;baro:12.34;time:0;agx:-3.00;agy:1.00;agz:-999.00;\r\n"
)
