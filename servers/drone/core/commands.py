"""Every SDK command we can send: its text, its reply form, its retry class and its time budget.

One table (`SPECS`) decides for each command verb whether it is safe to re-send on a timeout
and what reply form to expect, so the retry policy cannot drift between call sites. Builders
validate every parameter against the SDK's ranges: an out-of-range request raises
`OutOfRange` here and never reaches the radio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal

from servers.drone.core.errors import OutOfRange


class ReplyKind(Enum):
    """The form of a successful reply. Anything else (bar an error string) is not ours."""

    OK = "ok"
    INT = "int"  # battery?, wifi?, sdk?
    FLOAT = "float"  # speed?, baro?
    SECONDS = "seconds"  # time? -> "11s"
    DECIMETRES = "decimetres"  # height? -> "15dm"
    TEMPERATURE = "temperature"  # temp? -> "85~88C"
    ATTITUDE = "attitude"  # attitude? -> "pitch:0;roll:-1;yaw:0;"
    ACCELERATION = "acceleration"  # acceleration? -> "agx:-6.00;agy:2.00;agz:-999.00;"
    MILLIMETRES = "millimetres"  # tof? -> "875mm"
    EXT_TOF = "ext_tof"  # EXT tof? -> "tof 1234"
    TEXT = "text"  # sn?, hardware?
    LED_OK = "led_ok"  # EXT led ...
    MATRIX_OK = "matrix_ok"  # EXT mled ...
    NONE = "none"  # rc: the drone never answers


class Motion(Enum):
    """Whether a command moves the airframe: motion replies cannot arrive instantly."""

    NONE = "none"
    FLIGHT = "flight"


@dataclass(frozen=True, slots=True)
class Spec:
    reply: ReplyKind
    idempotent: bool
    timeout_s: float
    motion: Motion = Motion.NONE


READ_TIMEOUT_S: Final = 1.0
# Margin on top of the physical duration of a move: acceleration, braking, stabilising.
MOTION_MARGIN_S: Final = 5.0
# Rotations are slow on a Tello; a conservative rate keeps a 360 inside its budget.
ROTATION_DEG_PER_S: Final = 45.0

_R = ReplyKind
_M = Motion.FLIGHT

# The retry table. idempotent=True: running it twice is harmless, so a timeout may re-send it.
SPECS: Final[dict[str, Spec]] = {
    "command": Spec(_R.OK, True, READ_TIMEOUT_S),
    "takeoff": Spec(_R.OK, False, 12.0, _M),
    "land": Spec(_R.OK, True, 10.0, _M),
    "emergency": Spec(_R.OK, True, 0.5),
    "stop": Spec(_R.OK, True, 2.0),
    "streamon": Spec(_R.OK, True, 2.0),
    "streamoff": Spec(_R.OK, True, 2.0),
    "motoron": Spec(_R.OK, False, 3.0),
    "motoroff": Spec(_R.OK, True, 3.0),
    "reboot": Spec(_R.OK, False, 2.0),
    "mon": Spec(_R.OK, True, 2.0),
    "moff": Spec(_R.OK, True, 2.0),
    "mdirection": Spec(_R.OK, True, 2.0),
    "speed": Spec(_R.OK, True, READ_TIMEOUT_S),
    "up": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "down": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "left": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "right": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "forward": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "back": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "cw": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "ccw": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "flip": Spec(_R.OK, False, 6.0, _M),
    "go": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "curve": Spec(_R.OK, False, MOTION_MARGIN_S, _M),
    "rc": Spec(_R.NONE, False, 0.0),
    "EXT led": Spec(_R.LED_OK, True, READ_TIMEOUT_S),
    "EXT mled": Spec(_R.MATRIX_OK, True, READ_TIMEOUT_S),
    "EXT tof?": Spec(_R.EXT_TOF, True, READ_TIMEOUT_S),
    "battery?": Spec(_R.INT, True, READ_TIMEOUT_S),
    "speed?": Spec(_R.FLOAT, True, READ_TIMEOUT_S),
    "time?": Spec(_R.SECONDS, True, READ_TIMEOUT_S),
    "height?": Spec(_R.DECIMETRES, True, READ_TIMEOUT_S),
    "temp?": Spec(_R.TEMPERATURE, True, READ_TIMEOUT_S),
    "attitude?": Spec(_R.ATTITUDE, True, READ_TIMEOUT_S),
    "baro?": Spec(_R.FLOAT, True, READ_TIMEOUT_S),
    "acceleration?": Spec(_R.ACCELERATION, True, READ_TIMEOUT_S),
    "tof?": Spec(_R.MILLIMETRES, True, READ_TIMEOUT_S),
    "wifi?": Spec(_R.INT, True, READ_TIMEOUT_S),
    "sdk?": Spec(_R.INT, True, READ_TIMEOUT_S),
    "sn?": Spec(_R.TEXT, True, READ_TIMEOUT_S),
    "hardware?": Spec(_R.TEXT, True, READ_TIMEOUT_S),
}

SIMPLE_COMMANDS: Final = frozenset(
    {
        "command",
        "takeoff",
        "land",
        "emergency",
        "stop",
        "streamon",
        "streamoff",
        "motoron",
        "motoroff",
        "reboot",
        "mon",
        "moff",
    }
)
QUERIES: Final = frozenset(name for name in SPECS if name.endswith("?"))


@dataclass(frozen=True, slots=True)
class Command:
    """One datagram's worth of SDK text plus everything the link needs to send it safely."""

    verb: str
    text: str
    reply: ReplyKind
    idempotent: bool
    timeout_s: float
    motion: Motion

    def encode(self) -> bytes:
        return self.text.encode("ascii")

    @property
    def expects_reply(self) -> bool:
        return self.reply is not ReplyKind.NONE


def _command(verb: str, text: str, *, timeout_s: float | None = None) -> Command:
    spec = SPECS[verb]
    return Command(
        verb=verb,
        text=text,
        reply=spec.reply,
        idempotent=spec.idempotent,
        timeout_s=spec.timeout_s if timeout_s is None else timeout_s,
        motion=spec.motion,
    )


def _check_int(field: str, value: int, low: int, high: int, unit: str = "") -> int:
    # bool is an int subclass; True would encode as "True" and mean nothing to the drone.
    if isinstance(value, bool) or not isinstance(value, int):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise OutOfRange(field, value, f"an integer {low}..{high}{unit}")
    if not low <= value <= high:
        raise OutOfRange(field, value, f"{low}..{high}{unit}")
    return value


def _check_float(field: str, value: float, low: float, high: float, unit: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise OutOfRange(field, value, f"a number {low:g}..{high:g}{unit}")
    if not low <= value <= high:
        raise OutOfRange(field, value, f"{low:g}..{high:g}{unit}")
    return float(value)


def _check_choice(field: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise OutOfRange(field, value, "one of " + ", ".join(allowed))
    return value


def simple(verb: str) -> Command:
    """A parameterless command: `command`, `takeoff`, `land`, `emergency`, `stop`, ..."""
    _check_choice("command", verb, sorted(SIMPLE_COMMANDS))
    return _command(verb, verb)


def query(verb: str) -> Command:
    """A read such as `battery?` or `EXT tof?`."""
    _check_choice("query", verb, sorted(QUERIES))
    return _command(verb, verb)


Direction = Literal["up", "down", "left", "right", "forward", "back"]
DIRECTIONS: Final[tuple[str, ...]] = ("up", "down", "left", "right", "forward", "back")
MOVE_MIN_CM: Final = 20
MOVE_MAX_CM: Final = 500
SPEED_MIN: Final = 10
SPEED_MAX: Final = 100


def move(direction: str, distance_cm: int, *, speed_cm_s: float = SPEED_MIN) -> Command:
    """`up/down/left/right/forward/back x`, x 20..500 cm.

    `speed_cm_s` is the drone's configured speed and only sizes the reply timeout; the slowest
    legal speed is the safe default when the link does not know it.
    """
    _check_choice("direction", direction, DIRECTIONS)
    _check_int("distance_cm", distance_cm, MOVE_MIN_CM, MOVE_MAX_CM, " cm")
    # A claim outside the drone's own range (or NaN) cannot shrink the budget below the
    # slowest real flight, nor make it infinite.
    speed = speed_cm_s if SPEED_MIN <= speed_cm_s <= SPEED_MAX else SPEED_MIN
    return _command(direction, f"{direction} {distance_cm}", timeout_s=distance_cm / speed + MOTION_MARGIN_S)


def rotate(direction: str, degrees: int) -> Command:
    """`cw/ccw x`, x 1..360 degrees."""
    _check_choice("direction", direction, ("cw", "ccw"))
    _check_int("degrees", degrees, 1, 360, " deg")
    return _command(
        direction, f"{direction} {degrees}", timeout_s=degrees / ROTATION_DEG_PER_S + MOTION_MARGIN_S
    )


FLIP_DIRECTIONS: Final[dict[str, str]] = {"left": "l", "right": "r", "forward": "f", "back": "b"}


def flip(direction: str) -> Command:
    """`flip l/r/f/b`; accepts the letter or the word."""
    letter = FLIP_DIRECTIONS.get(direction, direction)
    _check_choice("direction", letter, ("l", "r", "f", "b"))
    return _command("flip", f"flip {letter}")


COORD_MIN: Final = -500
COORD_MAX: Final = 500
MISSION_PADS: Final[tuple[str, ...]] = (*(f"m{i}" for i in range(1, 9)), "m-1", "m-2")


def _check_mid(mid: str | None) -> str:
    if mid is None:
        return ""
    return " " + _check_choice("mid", mid, MISSION_PADS)


def go(x: int, y: int, z: int, speed_cm_s: int, mid: str | None = None) -> Command:
    """`go x y z speed [mid]`: x,y,z -500..500 cm, not all three within ±20; speed 10..100."""
    for name, value in (("x", x), ("y", y), ("z", z)):
        _check_int(name, value, COORD_MIN, COORD_MAX, " cm")
    if all(-20 <= v <= 20 for v in (x, y, z)):
        raise OutOfRange("x,y,z", (x, y, z), "at least one of x, y, z outside -20..20 cm")
    _check_int("speed", speed_cm_s, SPEED_MIN, SPEED_MAX, " cm/s")
    distance = math.sqrt(x * x + y * y + z * z)
    return _command(
        "go",
        f"go {x} {y} {z} {speed_cm_s}{_check_mid(mid)}",
        timeout_s=distance / speed_cm_s + MOTION_MARGIN_S,
    )


CURVE_SPEED_MAX: Final = 60
CURVE_RADIUS_CM: Final = (50, 1000)


Point = tuple[int, int, int]


def _sub(p: Point, q: Point) -> Point:
    return (p[0] - q[0], p[1] - q[1], p[2] - q[2])


def _dot(p: Point, q: Point) -> int:
    return p[0] * q[0] + p[1] * q[1] + p[2] * q[2]


def _cross_norm2(p: Point, q: Point) -> int:
    c = (p[1] * q[2] - p[2] * q[1], p[2] * q[0] - p[0] * q[2], p[0] * q[1] - p[1] * q[0])
    return _dot(c, c)


def _arc(p1: Point, p2: Point) -> tuple[int, int, float] | None:
    """The arc origin → p1 → p2: exact R² as a fraction (num, den) and its length in cm.

    R = abc / (2|p1 x p2|) with a, b, c the triangle's sides; integers throughout, so the
    0.5 m and 10 m limits are compared exactly. None when the points are collinear.
    """
    twice_area2 = _cross_norm2(p1, p2)
    if twice_area2 == 0:
        return None
    a2, b2, c2 = _dot(p1, p1), _dot(_sub(p2, p1), _sub(p2, p1)), _dot(p2, p2)
    num, den = a2 * b2 * c2, 4 * twice_area2
    # The arc containing p1 spans 2π - 2β, β being the inscribed angle at p1 (law of cosines).
    to_origin, to_p2 = _sub((0, 0, 0), p1), _sub(p2, p1)
    cos_beta = _dot(to_origin, to_p2) / math.sqrt(a2 * b2)
    beta = math.acos(max(-1.0, min(1.0, cos_beta)))
    return num, den, math.sqrt(num / den) * (2 * math.pi - 2 * beta)


def curve(
    x1: int, y1: int, z1: int, x2: int, y2: int, z2: int, speed_cm_s: int, mid: str | None = None
) -> Command:
    """`curve x1 y1 z1 x2 y2 z2 speed [mid]`: an arc through two points, radius 0.5..10 m."""
    for name, value in (("x1", x1), ("y1", y1), ("z1", z1), ("x2", x2), ("y2", y2), ("z2", z2)):
        _check_int(name, value, COORD_MIN, COORD_MAX, " cm")
    for n, point in (("1", (x1, y1, z1)), ("2", (x2, y2, z2))):
        if all(-20 <= v <= 20 for v in point):
            raise OutOfRange(f"x{n},y{n},z{n}", point, f"at least one of x{n}, y{n}, z{n} outside -20..20 cm")
    _check_int("speed", speed_cm_s, SPEED_MIN, CURVE_SPEED_MAX, " cm/s")
    arc = _arc((x1, y1, z1), (x2, y2, z2))
    low, high = CURVE_RADIUS_CM
    if arc is None:
        raise OutOfRange("arc radius", "infinite (points are collinear)", "0.5..10 m")
    num, den, length = arc
    if not low * low * den <= num <= high * high * den:
        raise OutOfRange("arc radius", f"{math.sqrt(num / den) / 100:.2f} m", "0.5..10 m")
    return _command(
        "curve",
        f"curve {x1} {y1} {z1} {x2} {y2} {z2} {speed_cm_s}{_check_mid(mid)}",
        timeout_s=length / speed_cm_s + MOTION_MARGIN_S,
    )


def set_speed(speed_cm_s: int) -> Command:
    """`speed x`, 10..100 cm/s."""
    _check_int("speed", speed_cm_s, SPEED_MIN, SPEED_MAX, " cm/s")
    return _command("speed", f"speed {speed_cm_s}")


def rc(roll: int, pitch: int, throttle: int, yaw: int) -> Command:
    """`rc a b c d`, each -100..100. Never answered by the drone."""
    for name, value in (("roll", roll), ("pitch", pitch), ("throttle", throttle), ("yaw", yaw)):
        _check_int(name, value, -100, 100)
    return _command("rc", f"rc {roll} {pitch} {throttle} {yaw}")


def mdirection(value: int) -> Command:
    """`mdirection 0/1/2`: mission-pad detection downward, forward, or both."""
    _check_int("mdirection", value, 0, 2)
    return _command("mdirection", f"mdirection {value}")


def _rgb(prefix: str, r: int, g: int, b: int) -> str:
    for name, value in ((f"{prefix}r", r), (f"{prefix}g", g), (f"{prefix}b", b)):
        _check_int(name, value, 0, 255)
    return f"{r} {g} {b}"


LED_BREATHE_HZ: Final = (0.1, 2.5)
LED_BLINK_HZ: Final = (0.1, 10.0)


def _hz(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def led_solid(r: int, g: int, b: int) -> Command:
    """`EXT led r g b`: the RMTT top LED, solid colour."""
    return _command("EXT led", f"EXT led {_rgb('', r, g, b)}")


def led_breathe(frequency_hz: float, r: int, g: int, b: int) -> Command:
    """`EXT led br t r g b`: breathing at 0.1..2.5 Hz."""
    _check_float("frequency_hz", frequency_hz, *LED_BREATHE_HZ, " Hz")
    return _command("EXT led", f"EXT led br {_hz(frequency_hz)} {_rgb('', r, g, b)}")


def led_blink(frequency_hz: float, first: tuple[int, int, int], second: tuple[int, int, int]) -> Command:
    """`EXT led bl t r1 g1 b1 r2 g2 b2`: alternating two colours at 0.1..10 Hz."""
    _check_float("frequency_hz", frequency_hz, *LED_BLINK_HZ, " Hz")
    return _command(
        "EXT led",
        f"EXT led bl {_hz(frequency_hz)} {_rgb('first.', *first)} {_rgb('second.', *second)}",
    )


MATRIX_COLOURS: Final[tuple[str, ...]] = ("r", "b", "p")
MATRIX_PIXELS: Final = frozenset("rbp0")
MATRIX_SCROLL_HZ: Final = (0.1, 2.5)
MATRIX_TEXT_MAX: Final = 70


def matrix_pattern(pattern: str) -> Command:
    """`EXT mled g <64 chars>`: each pixel r(ed), b(lue), p(urple) or 0 (off), row by row."""
    if len(pattern) != 64 or not set(pattern) <= MATRIX_PIXELS:
        raise OutOfRange("pattern", pattern, "exactly 64 characters, each one of r, b, p, 0")
    return _command("EXT mled", f"EXT mled g {pattern}")


def matrix_scroll(direction: str, colour: str, rate_hz: float, text: str) -> Command:
    """`EXT mled l/r/u/d <colour> <rate> <text>`: scrolling text."""
    _check_choice("direction", direction, ("l", "r", "u", "d"))
    _check_choice("colour", colour, MATRIX_COLOURS)
    _check_float("rate_hz", rate_hz, *MATRIX_SCROLL_HZ, " Hz")
    if (
        not 1 <= len(text) <= MATRIX_TEXT_MAX
        or not text.isascii()
        or not text.isprintable()
        or not text.strip()
    ):
        raise OutOfRange("text", text, f"1..{MATRIX_TEXT_MAX} printable ASCII characters")
    return _command("EXT mled", f"EXT mled {direction} {colour} {_hz(rate_hz)} {text}")


def matrix_char(colour: str, char: str) -> Command:
    """`EXT mled s <colour> <char>`: one character (or `heart`) shown still."""
    _check_choice("colour", colour, MATRIX_COLOURS)
    if char != "heart" and (len(char) != 1 or not char.isascii() or not char.isprintable() or char == " "):
        raise OutOfRange("char", char, "one printable ASCII character, or 'heart'")
    return _command("EXT mled", f"EXT mled s {colour} {char}")
