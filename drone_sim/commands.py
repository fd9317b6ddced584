"""Tello / RMTT SDK command text -> a typed command, or the exact reply the drone gives instead.

This parser is the simulator's own reading of the SDK and deliberately shares nothing with the
driver in `servers/drone`: if both used one parser, a misreading of the SDK would be invisible
to every test that flies the driver against the simulator.

Parsing is pure and total: every datagram text maps to either a command dataclass or a
`ParseError` carrying the reply string the real drone sends (`unknown command: X`,
`out of range`, `error`) -- or `None` for `rc`, which never replies, not even to garbage.
Whether a well-formed command is *allowed right now* (flying? busy? battery?) is the drone
model's business, not the parser's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from drone_sim.geometry import Vec3, arc_through

OK: Final = "ok"
ERROR: Final = "error"
OUT_OF_RANGE: Final = "out of range"
LED_OK: Final = "led ok"
MATRIX_OK: Final = "matrix ok"


def unknown_command(verb: str) -> str:
    return f"unknown command: {verb}"


# Ranges from the SDK 2.0 / RMTT 3.0 user guides (see /work/shared/reference/tello-sdk.md).
MOVE_RANGE_CM: Final = (20, 500)
ROTATE_RANGE_DEG: Final = (1, 360)
GO_COORD_RANGE_CM: Final = (-500, 500)
GO_DEADBAND_CM: Final = 20
GO_SPEED_RANGE: Final = (10, 100)
CURVE_SPEED_RANGE: Final = (10, 60)
CURVE_RADIUS_RANGE_CM: Final = (50.0, 1000.0)
SPEED_RANGE: Final = (10, 100)
RC_RANGE: Final = (-100, 100)
PORT_RANGE: Final = (1025, 65535)
LED_BREATHE_HZ: Final = (0.1, 2.5)
LED_BLINK_HZ: Final = (0.1, 10.0)
MLED_RATE_HZ: Final = (0.1, 2.5)
MLED_TEXT_MAX: Final = 70
MLED_PATTERN_MAX: Final = 64


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    LEFT = "left"
    RIGHT = "right"
    FORWARD = "forward"
    BACK = "back"


class FlipDirection(StrEnum):
    LEFT = "l"
    RIGHT = "r"
    FORWARD = "f"
    BACK = "b"


class Query(StrEnum):
    BATTERY = "battery?"
    SPEED = "speed?"
    TIME = "time?"
    HEIGHT = "height?"
    TEMP = "temp?"
    ATTITUDE = "attitude?"
    BARO = "baro?"
    ACCELERATION = "acceleration?"
    TOF = "tof?"
    WIFI = "wifi?"
    SDK = "sdk?"
    SN = "sn?"
    HARDWARE = "hardware?"
    EXT_TOF = "EXT tof?"


class LedMode(StrEnum):
    SOLID = "solid"
    BREATHE = "br"
    BLINK = "bl"


class MatrixColor(StrEnum):
    RED = "r"
    BLUE = "b"
    PURPLE = "p"


class ScrollDirection(StrEnum):
    LEFT = "l"
    RIGHT = "r"
    UP = "u"
    DOWN = "d"


class VideoOption(StrEnum):
    FPS = "setfps"
    BITRATE = "setbitrate"
    RESOLUTION = "setresolution"
    DOWNVISION = "downvision"


@dataclass(frozen=True, slots=True)
class EnterSdk:
    """`command`: enter SDK mode (and the only reliable heartbeat)."""


@dataclass(frozen=True, slots=True)
class Keepalive:
    """`keepalive`: SDK 3.0; some firmware rejects it (see `DroneConfig.keepalive_supported`)."""


@dataclass(frozen=True, slots=True)
class Takeoff:
    pass


@dataclass(frozen=True, slots=True)
class Land:
    pass


@dataclass(frozen=True, slots=True)
class Emergency:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    pass


@dataclass(frozen=True, slots=True)
class StreamOn:
    pass


@dataclass(frozen=True, slots=True)
class StreamOff:
    pass


@dataclass(frozen=True, slots=True)
class MotorOn:
    pass


@dataclass(frozen=True, slots=True)
class MotorOff:
    pass


@dataclass(frozen=True, slots=True)
class Reboot:
    pass


@dataclass(frozen=True, slots=True)
class MissionPads:
    """`mon` / `moff`."""

    enabled: bool


@dataclass(frozen=True, slots=True)
class MissionPadDirection:
    """`mdirection 0|1|2` (down, forward, both)."""

    direction: int


@dataclass(frozen=True, slots=True)
class Move:
    direction: Direction
    distance_cm: int


@dataclass(frozen=True, slots=True)
class Rotate:
    """`cw x` / `ccw x`; `degrees` is signed, positive clockwise like `Pose.yaw`."""

    degrees: int


@dataclass(frozen=True, slots=True)
class Flip:
    direction: FlipDirection


@dataclass(frozen=True, slots=True)
class Go:
    x: int
    y: int
    z: int
    speed: int
    pad: int | None = None


@dataclass(frozen=True, slots=True)
class Curve:
    x1: int
    y1: int
    z1: int
    x2: int
    y2: int
    z2: int
    speed: int
    pad: int | None = None


@dataclass(frozen=True, slots=True)
class SetSpeed:
    speed_cm_s: int


@dataclass(frozen=True, slots=True)
class Rc:
    """`rc a b c d`: left/right, forward/back, up/down, yaw, each -100..100."""

    left_right: int
    forward_back: int
    up_down: int
    yaw: int


@dataclass(frozen=True, slots=True)
class Read:
    query: Query


@dataclass(frozen=True, slots=True)
class SetPorts:
    """`port <state> <video>`: where state packets and video go (SDK 2.0)."""

    state_port: int
    video_port: int


@dataclass(frozen=True, slots=True)
class VideoSetting:
    option: VideoOption
    value: str


Rgb = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Led:
    """RMTT top LED: solid colour, breathing at `hz`, or blinking between two colours at `hz`."""

    mode: LedMode
    colors: tuple[Rgb, ...]
    hz: float | None = None


@dataclass(frozen=True, slots=True)
class MatrixPattern:
    """`EXT mled g ...`: the 8x8 pattern, padded with `0` to 64 cells."""

    pattern: str


@dataclass(frozen=True, slots=True)
class MatrixScroll:
    direction: ScrollDirection
    color: MatrixColor
    rate_hz: float
    text: str


@dataclass(frozen=True, slots=True)
class MatrixChar:
    color: MatrixColor
    char: str


@dataclass(frozen=True, slots=True)
class MatrixClear:
    pass


@dataclass(frozen=True, slots=True)
class MatrixBrightness:
    level: int


Command = (
    EnterSdk
    | Keepalive
    | Takeoff
    | Land
    | Emergency
    | Stop
    | StreamOn
    | StreamOff
    | MotorOn
    | MotorOff
    | Reboot
    | MissionPads
    | MissionPadDirection
    | Move
    | Rotate
    | Flip
    | Go
    | Curve
    | SetSpeed
    | Rc
    | Read
    | SetPorts
    | VideoSetting
    | Led
    | MatrixPattern
    | MatrixScroll
    | MatrixChar
    | MatrixClear
    | MatrixBrightness
)

FLIGHT_ACTIONS: Final = (
    Takeoff,
    Land,
    Emergency,
    Move,
    Rotate,
    Flip,
    Go,
    Curve,
    MotorOn,
    MotorOff,
    Reboot,
)
"""Commands that change the physical state of the drone; `rc` is left out (a stream of them)."""

MOTIONS: Final = (Move, Rotate, Flip, Go, Curve)
"""Commands that need the drone hovering and reply only when the motion is done."""


def is_flight_action(command: Command) -> bool:
    return isinstance(command, FLIGHT_ACTIONS)


@dataclass(frozen=True, slots=True)
class ParseError:
    """What the drone answers instead of running the text; `reply is None` means silence."""

    reply: str | None
    reason: str


_INT = re.compile(r"[+-]?[0-9]{1,9}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]{1,9}(?:\.[0-9]*)?|\.[0-9]+)")
_PAD = re.compile(r"m(-1|-2|[1-8])")

_NO_ARGS: Final[dict[str, Command]] = {
    "command": EnterSdk(),
    "keepalive": Keepalive(),
    "takeoff": Takeoff(),
    "land": Land(),
    "emergency": Emergency(),
    "stop": Stop(),
    "streamon": StreamOn(),
    "streamoff": StreamOff(),
    "motoron": MotorOn(),
    "motoroff": MotorOff(),
    "reboot": Reboot(),
    "mon": MissionPads(enabled=True),
    "moff": MissionPads(enabled=False),
}

_VIDEO_VALUES: Final[dict[VideoOption, frozenset[str]]] = {
    VideoOption.FPS: frozenset({"low", "middle", "high"}),
    VideoOption.BITRATE: frozenset({"0", "1", "2", "3", "4", "5"}),
    VideoOption.RESOLUTION: frozenset({"low", "high"}),
    VideoOption.DOWNVISION: frozenset({"0", "1"}),
}


class _Reject(Exception):
    """Internal control flow: abandon parsing with this reply."""

    def __init__(self, reply: str | None, reason: str) -> None:
        super().__init__(reason)
        self.reply = reply
        self.reason = reason


def _malformed(reason: str) -> _Reject:
    return _Reject(ERROR, reason)


def _int(token: str) -> int:
    if not _INT.fullmatch(token):
        raise _malformed(f"not an integer: {token!r}")
    return int(token)


def _float(token: str) -> float:
    if not _FLOAT.fullmatch(token):
        raise _malformed(f"not a number: {token!r}")
    return float(token)


def _in_range(value: float, bounds: tuple[float, float], what: str, reply: str = OUT_OF_RANGE) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise _Reject(reply, f"{what} {value:g} outside {low:g}..{high:g}")


def _arity(args: list[str], *counts: int) -> None:
    if len(args) not in counts:
        raise _malformed(f"expected {' or '.join(map(str, counts))} argument(s), got {len(args)}")


def _pad(token: str) -> int:
    match = _PAD.fullmatch(token)
    if match is None:
        raise _malformed(f"not a mission pad id: {token!r}")
    return int(match.group(1))


def _point(tokens: list[str], what: str) -> Vec3:
    x, y, z = (_int(t) for t in tokens)
    for value in (x, y, z):
        _in_range(value, GO_COORD_RANGE_CM, f"{what} coordinate")
    if all(abs(v) <= GO_DEADBAND_CM for v in (x, y, z)):
        raise _Reject(OUT_OF_RANGE, f"{what} ({x}, {y}, {z}) within +-{GO_DEADBAND_CM} cm on all axes")
    return Vec3(x, y, z)


def _parse_go(args: list[str]) -> Go:
    _arity(args, 4, 5)
    x, y, z = (_int(t) for t in args[:3])
    speed = _int(args[3])
    pad = _pad(args[4]) if len(args) == 5 else None
    _point(args[:3], "target")
    _in_range(speed, GO_SPEED_RANGE, "speed")
    return Go(x, y, z, speed, pad)


def _parse_curve(args: list[str]) -> Curve:
    _arity(args, 7, 8)
    numbers = [_int(t) for t in args[:7]]
    pad = _pad(args[7]) if len(args) == 8 else None
    via = _point(args[0:3], "first point")
    end = _point(args[3:6], "second point")
    speed = numbers[6]
    _in_range(speed, CURVE_SPEED_RANGE, "curve speed", reply=ERROR)
    arc = arc_through(via, end)
    if arc is None:
        raise _Reject(ERROR, "curve points are collinear: no arc")
    _in_range(arc.radius, CURVE_RADIUS_RANGE_CM, "curve radius (cm)", reply=ERROR)
    x1, y1, z1, x2, y2, z2 = numbers[:6]
    return Curve(x1, y1, z1, x2, y2, z2, speed, pad)


def _parse_rc(args: list[str]) -> Rc:
    try:
        _arity(args, 4)
        values = [_int(t) for t in args]
        for value in values:
            _in_range(value, RC_RANGE, "rc channel")
    except _Reject as rejected:
        raise _Reject(None, rejected.reason) from None
    return Rc(*values)


def _rgb(tokens: list[str]) -> Rgb:
    r, g, b = (_int(t) for t in tokens)
    for value in (r, g, b):
        _in_range(value, (0, 255), "colour channel")
    return (r, g, b)


def _parse_led(args: list[str]) -> Led:
    if len(args) == 3:
        return Led(LedMode.SOLID, (_rgb(args),))
    if args and args[0] == LedMode.BREATHE:
        _arity(args, 5)
        hz = _float(args[1])
        colors = (_rgb(args[2:5]),)
        _in_range(hz, LED_BREATHE_HZ, "breathing frequency")
        return Led(LedMode.BREATHE, colors, hz)
    if args and args[0] == LedMode.BLINK:
        _arity(args, 8)
        hz = _float(args[1])
        colors = (_rgb(args[2:5]), _rgb(args[5:8]))
        _in_range(hz, LED_BLINK_HZ, "blink frequency")
        return Led(LedMode.BLINK, colors, hz)
    raise _malformed("EXT led takes `r g b`, `br t r g b` or `bl t r1 g1 b1 r2 g2 b2`")


def _color(token: str) -> MatrixColor:
    try:
        return MatrixColor(token)
    except ValueError:
        raise _malformed(f"matrix colour must be r, b or p, got {token!r}") from None


def _parse_mled(text: str) -> Command:
    # Split the original text, not the tokens: scrolled text keeps its own spacing.
    parts = text.split(None, 5)
    args = parts[2:]
    if not args:
        raise _malformed("EXT mled needs a sub-command")
    sub = args[0]
    if sub == "g":
        _arity(args, 2)
        pattern = args[1]
        if len(pattern) > MLED_PATTERN_MAX or set(pattern) - set("rbp0"):
            raise _malformed("EXT mled g takes up to 64 characters of r/b/p/0")
        return MatrixPattern(pattern.ljust(MLED_PATTERN_MAX, "0"))
    if sub in {d.value for d in ScrollDirection}:
        _arity(args, 4)
        color = _color(args[1])
        rate = _float(args[2])
        message = args[3]
        _in_range(rate, MLED_RATE_HZ, "scroll rate")
        if len(message) > MLED_TEXT_MAX:
            raise _malformed(f"scroll text longer than {MLED_TEXT_MAX} characters")
        return MatrixScroll(ScrollDirection(sub), color, rate, message)
    if sub == "s":
        _arity(args, 3)
        char = args[2]
        if not (char == "heart" or (len(char) == 1 and char.isascii() and char.isprintable())):
            raise _malformed(f"EXT mled s shows one ASCII character or `heart`, got {char!r}")
        return MatrixChar(_color(args[1]), char)
    if sub == "sc":
        _arity(args, 1)
        return MatrixClear()
    if sub == "bl":
        _arity(args, 2)
        level = _int(args[1])
        _in_range(level, (0, 255), "matrix brightness")
        return MatrixBrightness(level)
    raise _Reject(unknown_command(f"EXT mled {sub}"), f"unknown matrix sub-command {sub!r}")


def _parse_ext(text: str, args: list[str]) -> Command:
    if not args:
        raise _Reject(unknown_command("EXT"), "EXT without a sub-command")
    sub, rest = args[0], args[1:]
    if sub == "tof?":
        _arity(rest, 0)
        return Read(Query.EXT_TOF)
    if sub == "led":
        return _parse_led(rest)
    if sub == "mled":
        return _parse_mled(text)
    raise _Reject(unknown_command(f"EXT {sub}"), f"unknown expansion command {sub!r}")


def _parse_tokens(text: str, verb: str, args: list[str]) -> Command:
    if verb in _NO_ARGS:
        _arity(args, 0)
        return _NO_ARGS[verb]
    if verb in {d.value for d in Direction}:
        _arity(args, 1)
        distance = _int(args[0])
        _in_range(distance, MOVE_RANGE_CM, "distance")
        return Move(Direction(verb), distance)
    if verb in ("cw", "ccw"):
        _arity(args, 1)
        degrees = _int(args[0])
        _in_range(degrees, ROTATE_RANGE_DEG, "angle")
        return Rotate(degrees if verb == "cw" else -degrees)
    if verb == "flip":
        _arity(args, 1)
        try:
            return Flip(FlipDirection(args[0]))
        except ValueError:
            raise _malformed(f"flip direction must be l, r, f or b, got {args[0]!r}") from None
    if verb == "go":
        return _parse_go(args)
    if verb == "curve":
        return _parse_curve(args)
    if verb == "speed":
        _arity(args, 1)
        speed = _int(args[0])
        _in_range(speed, SPEED_RANGE, "speed")
        return SetSpeed(speed)
    if verb == "rc":
        return _parse_rc(args)
    if verb == "mdirection":
        _arity(args, 1)
        direction = _int(args[0])
        _in_range(direction, (0, 2), "mission pad direction")
        return MissionPadDirection(direction)
    if verb == "port":
        _arity(args, 2)
        state_port, video_port = _int(args[0]), _int(args[1])
        _in_range(state_port, PORT_RANGE, "state port")
        _in_range(video_port, PORT_RANGE, "video port")
        return SetPorts(state_port, video_port)
    if verb in {o.value for o in VideoOption}:
        option = VideoOption(verb)
        _arity(args, 1)
        if args[0] not in _VIDEO_VALUES[option]:
            raise _malformed(f"{verb} does not take {args[0]!r}")
        return VideoSetting(option, args[0])
    if verb in {q.value for q in Query}:
        _arity(args, 0)
        return Read(Query(verb))
    if verb == "EXT":
        return _parse_ext(text, args)
    raise _Reject(unknown_command(verb), f"unknown verb {verb!r}")


def parse(text: str) -> Command | ParseError:
    """Parse one command datagram's text (already decoded; surrounding whitespace is ignored).

    Verbs are case-sensitive like the firmware's (`TAKEOFF` is unknown, `EXT` must be upper
    case). Arguments are ASCII integers except LED/matrix rates; anything malformed is `error`.
    """
    tokens = text.split()
    if not tokens:
        return ParseError(ERROR, "empty command")
    try:
        return _parse_tokens(text.strip(), tokens[0], tokens[1:])
    except _Reject as rejected:
        return ParseError(rejected.reply, rejected.reason)
