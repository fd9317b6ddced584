"""What the state stream proves about a flight action whose reply never came.

The drone streams its state at ~10 Hz (height, yaw, velocities, attitude, motor time). A move,
rotation, flip, takeoff or landing shows in it within a fraction of a second of the drone
hearing the command, so when the `ok` is lost the telemetry around the send still decides:

- *executed*: the commanded change is there (e.g. "height went 80 → 110 cm");
- *did not start*: the state kept flowing and showed no motion at all for longer than the
  drone takes to react: it never heard the command (or refused it), so sending again is safe;
- *unknown*: the state went stale, or the motion seen does not settle it.

Thresholds follow what `drone_sim` models and real Tellos show: translations start after
half of a ~1 s spin-up (0.5 s), rotations after 0.25 s, flips at once, landings after 0.75 s,
takeoff climbs after ~1 s of spin-up (the motor-time counter runs from the first instant);
velocities come in dm/s, height in 10 cm steps. `REACTION_S` leaves a wide margin on those.

`ActionWatch` is incremental and sans-IO: feed it every state sample with its arrival time
(samples from before the send set the baseline), ask `verdict(now)` whenever. The helpers
`shows_motion` and `on_ground` are the protocol core's cheap per-packet checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Final

from servers.drone.core.commands import Command, Motion
from servers.drone.core.errors import DroneError
from servers.drone.core.telemetry import Telemetry

ON_GROUND_CM: Final = 10
"""Below this reported height (and with no velocity) the drone stands on the ground."""
REACTION_S: Final = 2.0
"""A heard flight action shows motion well within this (drone_sim: ≤ 0.75 s)."""
TAKEOFF_REACTION_S: Final = 4.0
"""Spin-up before a takeoff climbs is longer (drone_sim: 1 s; real Tellos: 1-2 s)."""


class Outcome(Enum):
    EXECUTED = "executed"
    DID_NOT_START = "did_not_start"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    evidence: str


@dataclass(frozen=True, slots=True)
class VerdictConfig:
    reaction_s: float = REACTION_S
    takeoff_reaction_s: float = TAKEOFF_REACTION_S
    max_gap_s: float = 1.0
    """A longer silence between state packets means the stream did not prove "no motion".
    Motion that leaves no lasting trace (a translation shows only in the velocities while it
    travels, a flip only in the attitude) needs every gap shorter than it could last."""
    max_speed_cm_s: float = 100.0
    """The fastest a Tello translates (`speed 100`): the shortest a move can be seen."""
    flip_visible_s: float = 0.5
    stale_s: float = 1.0
    executed_fraction: float = 0.5
    """Share of the commanded change that must show for "executed" (velocity integrals of
    dm/s-rounded readings are coarse; a lost-reply action runs in full or not at all)."""
    min_turn_deg: float = 5.0
    """Turns below this cannot be told from yaw noise: never "did not start"."""


class DidNotStart(DroneError):
    """A flight action the state stream shows never started. It was not re-sent."""

    def __init__(self, command: str, evidence: str) -> None:
        self.command = command
        self.evidence = evidence
        super().__init__(f"{command!r} did not start: {evidence}")


# ---- per-packet checks -------------------------------------------------------------------------


def _speed(t: Telemetry) -> int:
    return max(abs(t.vgx_dm_s), abs(t.vgy_dm_s), abs(t.vgz_dm_s))


def _yaw_delta(a: float, b: float) -> float:
    """b - a folded into (-180, 180]."""
    d = math.fmod(b - a, 360.0)
    if d <= -180.0:
        d += 360.0
    elif d > 180.0:
        d -= 360.0
    return d


def on_ground(t: Telemetry) -> bool:
    """Down and still (a ±1 dm/s reading is noise; a landing still shows its descent)."""
    return t.height_cm < ON_GROUND_CM and _speed(t) <= 1


def shows_motion(previous: Telemetry | None, current: Telemetry) -> bool:
    """Whether two consecutive packets show the airframe moving (a single ±1 dm/s reading is
    hover noise on a real Tello; two in a row, a faster one, a turn or a flip are not)."""
    if _speed(current) >= 3:
        return True
    if previous is None:
        return False
    if _speed(current) >= 1 and _speed(previous) >= 1:
        return True
    if abs(_yaw_delta(previous.yaw_deg, current.yaw_deg)) >= 2:
        return True
    return max(abs(current.pitch_deg), abs(current.roll_deg)) >= 30


# ---- the watch ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Goal:
    kind: str  # "vertical", "horizontal", "turn", "flip", "path", "takeoff", "land"
    amount: float = 0.0  # cm, degrees
    speed_cm_s: float | None = None  # go/curve say how fast; moves go at the drone's speed


def _goal(command: Command) -> _Goal:
    if command.motion is not Motion.FLIGHT:
        raise ValueError(f"{command.text!r} is not a flight action")
    words = command.text.split()
    verb = command.verb
    match verb:
        case "up" | "down":
            return _Goal("vertical", float(words[1]) * (1 if verb == "up" else -1))
        case "left" | "right" | "forward" | "back":
            return _Goal("horizontal", float(words[1]))
        case "cw" | "ccw":
            return _Goal("turn", float(words[1]) * (1 if verb == "cw" else -1))
        case "flip":
            return _Goal("flip")
        case "go":
            x, y, z = (float(v) for v in words[1:4])
            return _Goal("path", math.sqrt(x * x + y * y + z * z), float(words[4]))
        case "curve":
            x, y, z = (float(v) for v in words[4:7])
            return _Goal("path", math.sqrt(x * x + y * y + z * z), float(words[7]))
        case "takeoff":
            return _Goal("takeoff")
        case "land":
            return _Goal("land")
        case _:
            raise ValueError(f"no telemetry verdict for {command.text!r}")


class ActionWatch:
    """Watches one flight action from the state stream. See the module docstring."""

    def __init__(
        self,
        command: Command,
        sent_at: float,
        *,
        baseline: tuple[float, Telemetry] | None = None,
        speed_cm_s: float | None = None,
        config: VerdictConfig | None = None,
    ) -> None:
        """`baseline`: the last state packet before the send and when it came; `speed_cm_s`:
        the drone's speed setting if known (a slower move is visible longer)."""
        self.command = command
        self.speed_cm_s = speed_cm_s
        self.sent_at = sent_at
        self.config = config or VerdictConfig()
        self._goal = _goal(command)
        reaction = self.config.takeoff_reaction_s if command.verb == "takeoff" else self.config.reaction_s
        self.fail_fast_at = sent_at + reaction
        """From then on, no motion (with state flowing) means the action did not start."""
        self._base: tuple[float, Telemetry] | None = None
        self._first: tuple[float, Telemetry] | None = None  # first sample after the send
        self._last: tuple[float, Telemetry] | None = None
        self._samples = 0
        self._max_gap = 0.0
        self._motion_at: float | None = None
        self._horizontal_cm = 0.0
        self._turned_deg = 0.0
        self._max_tilt = 0
        self._h_high = -math.inf
        if baseline is not None:
            self.feed(baseline[1], baseline[0])

    # ---- input ----

    def feed(self, telemetry: Telemetry, at: float) -> None:
        """One state packet, as it arrived; in time order."""
        if at < self.sent_at:
            self._base = (at, telemetry)
            return
        prev = self._last or self._base
        self._max_gap = max(self._max_gap, at - (prev[0] if prev is not None else self.sent_at))
        if self._first is None:
            self._first = (at, telemetry)
        if prev is not None:
            # Each reading holds until the next; what happened before the send is not ours.
            dt = min(max(0.0, at - max(prev[0], self.sent_at)), self.config.max_gap_s)
            self._horizontal_cm += 10.0 * math.hypot(prev[1].vgx_dm_s, prev[1].vgy_dm_s) * dt
            self._turned_deg += _yaw_delta(prev[1].yaw_deg, telemetry.yaw_deg)
        previous = prev[1] if prev is not None else None
        self._max_tilt = max(self._max_tilt, abs(telemetry.pitch_deg), abs(telemetry.roll_deg))
        self._h_high = max(self._h_high, telemetry.height_cm)
        if self._motion_at is None and self._moved(previous, telemetry):
            self._motion_at = at
        self._last = (at, telemetry)
        self._samples += 1

    def _moved(self, previous: Telemetry | None, t: Telemetry) -> bool:
        if shows_motion(previous, t):
            return True
        ref = self._reference()
        if ref is None:
            return False
        if abs(t.height_cm - ref.height_cm) >= 20:
            return True
        if t.motor_time_s > ref.motor_time_s and ref.height_cm < ON_GROUND_CM:
            return True  # motors spun up on the ground: a takeoff began
        return abs(_yaw_delta(ref.yaw_deg, t.yaw_deg)) >= 3

    def _reference(self) -> Telemetry | None:
        """Where the drone was when the command went out: the last packet before the send if
        recent, else the first one after it."""
        if self._base is not None and self.sent_at - self._base[0] <= self.config.stale_s:
            return self._base[1]
        return self._first[1] if self._first is not None else None

    # ---- output ----

    def verdict(self, now: float) -> Verdict:
        came_down = self._came_down()
        if came_down is not None:
            return Verdict(Outcome.UNKNOWN, came_down)
        progress = self._progress()
        if progress is not None:
            done, what = progress
            if done:
                return Verdict(Outcome.EXECUTED, what)
        if self._motion_at is not None:
            detail = progress[1] if progress is not None else "the drone moved"
            return Verdict(
                Outcome.UNKNOWN,
                f"motion seen {self._motion_at - self.sent_at:.1f} s after sending, but not the "
                f"whole action: {detail}",
            )
        return self._no_motion(now)

    def _came_down(self) -> str | None:
        """The drone was in the air and now stands on the ground, and the action was no landing:
        whatever moved it down (an auto-land, a low battery, a fall, another client's `land`),
        that motion is not the commanded one and must not pass for it."""
        last, ref = self._last, self._reference()
        if self._goal.kind in ("land", "takeoff") or last is None or ref is None:
            return None
        if ref.height_cm < ON_GROUND_CM or not on_ground(last[1]):
            return None
        return (
            f"the drone came down (height went {ref.height_cm} → {last[1].height_cm} cm): it landed "
            "or fell, which is not what was asked"
        )

    def did_not_start(self, now: float) -> bool:
        return self.verdict(now).outcome is Outcome.DID_NOT_START

    def _no_motion(self, now: float) -> Verdict:
        cfg = self.config
        last = self._last
        if last is None:
            return Verdict(Outcome.UNKNOWN, f"no state packet since sending {now - self.sent_at:.1f} s ago")
        if now - last[0] >= cfg.stale_s:
            return Verdict(Outcome.UNKNOWN, f"state stale: last packet {now - last[0]:.1f} s ago")
        if self._max_gap >= self._gap_allowed():
            return Verdict(
                Outcome.UNKNOWN,
                f"state gap of {self._max_gap:.1f} s after sending: no motion seen, not proven",
            )
        if self._goal.kind == "turn" and abs(self._goal.amount) < cfg.min_turn_deg:
            return Verdict(
                Outcome.UNKNOWN, f"a {abs(self._goal.amount):g}° turn is too small to see in the state"
            )
        watched = last[0] - self.sent_at
        if last[0] < self.fail_fast_at:
            return Verdict(Outcome.UNKNOWN, f"no sign of starting yet ({watched:.1f} s after sending)")
        return Verdict(
            Outcome.DID_NOT_START,
            f"no motion for {watched:.1f} s after sending while state kept flowing "
            f"({self._samples} packets, height {last[1].height_cm} cm): safe to send again",
        )

    def _gap_allowed(self) -> float:
        """The longest silence in which this action could have come and gone unseen."""
        goal, cfg = self._goal, self.config
        match goal.kind:
            case "horizontal" | "path":
                visible = goal.amount / (goal.speed_cm_s or self._speed())
            case "vertical" if goal.amount < 0:
                visible = -goal.amount / self._speed()  # may end at the height floor
            case "flip":
                visible = cfg.flip_visible_s
            case _:
                visible = math.inf  # height or yaw stays changed
        return min(cfg.max_gap_s, visible)

    def _speed(self) -> float:
        speed = self.speed_cm_s
        if speed is None or not 0 < speed <= self.config.max_speed_cm_s:
            return self.config.max_speed_cm_s
        return speed

    def _progress(self) -> tuple[bool, str] | None:
        """Whether the commanded change shows (and how much of it), None before any sample."""
        last = self._last
        ref = self._reference()
        if last is None or ref is None:
            return None
        t = last[1]
        goal, need = self._goal, self.config.executed_fraction
        h0, h1 = ref.height_cm, t.height_cm
        height = f"height went {h0} → {h1} cm"
        match goal.kind:
            case "vertical":
                moved = (h1 - h0) * (1 if goal.amount > 0 else -1)
                return moved >= need * abs(goal.amount), f"{height} ({abs(goal.amount):g} cm asked)"
            case "horizontal":
                cm = self._horizontal_cm
                return (
                    cm >= need * goal.amount,
                    f"~{cm:.0f} cm travelled by the velocity readings ({goal.amount:g} asked)",
                )
            case "turn":
                turned = self._turned_deg
                ok = abs(goal.amount) >= self.config.min_turn_deg and turned * goal.amount > 0
                ok = ok and abs(turned) >= need * abs(goal.amount)
                return (
                    ok,
                    f"yaw went {ref.yaw_deg} → {t.yaw_deg}° (turned {turned:+.0f}°, {goal.amount:+g} asked)",
                )
            case "flip":
                return self._max_tilt >= 60, f"attitude reached {self._max_tilt}° of tilt"
            case "path":
                dz = h1 - h0
                cm = math.hypot(self._horizontal_cm, dz)
                return (
                    cm >= need * goal.amount,
                    f"~{cm:.0f} cm travelled ({height}; {goal.amount:.0f} cm asked)",
                )
            case "takeoff":
                climbed = self._h_high >= 30 and h0 < ON_GROUND_CM
                airborne = h1 >= 30
                return climbed and airborne, height
            case _:  # land
                if on_ground(t):
                    if h0 < ON_GROUND_CM and self._h_high < ON_GROUND_CM:
                        return True, f"already on the ground (height {h1} cm, no motion)"
                    return True, f"{height}: on the ground"
                return False, height
