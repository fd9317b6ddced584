"""The command table and builders against the SDK reference (tello-sdk.md).

Expected values are copied from the reference, not from `servers.drone.core.commands`, so a drift in
either shows up here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from servers.drone.core import commands
from servers.drone.core.commands import SPECS, Command, Motion, ReplyKind
from servers.drone.core.errors import OutOfRange

from .helpers import Point, arc_length_cm, circumcircle

# ---- exact SDK text ------------------------------------------------------------------------------

SIMPLE = ["command", "takeoff", "land", "emergency", "stop", "streamon", "streamoff", "motoron", "motoroff"]
SIMPLE += ["reboot", "mon", "moff"]
READS = ["battery?", "speed?", "time?", "height?", "temp?", "attitude?", "baro?", "acceleration?", "tof?"]
READS += ["wifi?", "sdk?", "sn?", "hardware?", "EXT tof?"]


@pytest.mark.parametrize("verb", SIMPLE)
def test_simple_command_text_is_the_verb(verb: str) -> None:
    cmd = commands.simple(verb)
    assert (cmd.verb, cmd.text, cmd.encode()) == (verb, verb, verb.encode())


@pytest.mark.parametrize("verb", READS)
def test_query_text_is_the_query(verb: str) -> None:
    cmd = commands.query(verb)
    assert (cmd.verb, cmd.text, cmd.encode()) == (verb, verb, verb.encode("ascii"))


def test_the_builders_know_exactly_the_reference_reads_and_simple_commands() -> None:
    assert frozenset(READS) == commands.QUERIES
    assert frozenset(SIMPLE) == commands.SIMPLE_COMMANDS


@pytest.mark.parametrize(
    "verb", ["battery", "takeoff?", "Command", "", "up", "rc", "keepalive", "emergency "]
)
def test_unknown_simple_or_query_is_rejected(verb: str) -> None:
    with pytest.raises(OutOfRange) as simple_err:
        commands.simple(verb)
    assert simple_err.value.field == "command"
    with pytest.raises(OutOfRange) as query_err:
        commands.query(verb)
    assert query_err.value.field == "query"


@pytest.mark.parametrize(
    ("build", "text"),
    [
        (lambda: commands.move("up", 20), "up 20"),
        (lambda: commands.move("down", 500), "down 500"),
        (lambda: commands.move("left", 77), "left 77"),
        (lambda: commands.move("right", 100), "right 100"),
        (lambda: commands.move("forward", 250), "forward 250"),
        (lambda: commands.move("back", 21), "back 21"),
        (lambda: commands.rotate("cw", 1), "cw 1"),
        (lambda: commands.rotate("ccw", 360), "ccw 360"),
        (lambda: commands.flip("l"), "flip l"),
        (lambda: commands.flip("right"), "flip r"),
        (lambda: commands.flip("forward"), "flip f"),
        (lambda: commands.flip("b"), "flip b"),
        (lambda: commands.go(100, -50, 30, 60), "go 100 -50 30 60"),
        (lambda: commands.go(-500, 500, 0, 10, "m3"), "go -500 500 0 10 m3"),
        (lambda: commands.go(0, 0, 21, 100, "m-2"), "go 0 0 21 100 m-2"),
        (lambda: commands.curve(100, 100, 0, 200, 0, 0, 30), "curve 100 100 0 200 0 0 30"),
        (lambda: commands.curve(100, 100, 0, 200, 0, 0, 60, "m-1"), "curve 100 100 0 200 0 0 60 m-1"),
        (lambda: commands.set_speed(55), "speed 55"),
        (lambda: commands.rc(-100, 0, 100, 7), "rc -100 0 100 7"),
        (lambda: commands.mdirection(2), "mdirection 2"),
        (lambda: commands.led_solid(255, 0, 128), "EXT led 255 0 128"),
        (lambda: commands.led_breathe(1.5, 0, 255, 0), "EXT led br 1.5 0 255 0"),
        (lambda: commands.led_breathe(2, 1, 2, 3), "EXT led br 2 1 2 3"),
        (lambda: commands.led_blink(10.0, (255, 0, 0), (0, 0, 255)), "EXT led bl 10 255 0 0 0 0 255"),
        (lambda: commands.led_blink(0.5, (1, 2, 3), (4, 5, 6)), "EXT led bl 0.5 1 2 3 4 5 6"),
        (lambda: commands.matrix_pattern("r" * 64), "EXT mled g " + "r" * 64),
        (lambda: commands.matrix_pattern("rbp0" * 16), "EXT mled g " + "rbp0" * 16),
        (lambda: commands.matrix_scroll("l", "b", 1.0, "Hi TT"), "EXT mled l b 1 Hi TT"),
        (lambda: commands.matrix_scroll("u", "p", 0.5, "x"), "EXT mled u p 0.5 x"),
        (lambda: commands.matrix_char("r", "A"), "EXT mled s r A"),
        (lambda: commands.matrix_char("p", "heart"), "EXT mled s p heart"),
    ],
)
def test_builder_encodes_exact_sdk_text(build: Callable[[], Command], text: str) -> None:
    cmd = build()
    assert cmd.text == text
    assert cmd.encode() == text.encode("ascii")


def test_command_carries_its_spec() -> None:
    for cmd in (commands.move("up", 20), commands.go(100, 0, 0, 10), commands.query("sn?")):
        spec = SPECS[cmd.verb]
        assert (cmd.reply, cmd.idempotent, cmd.motion) == (spec.reply, spec.idempotent, spec.motion)
    assert commands.rc(0, 0, 0, 0).expects_reply is False
    assert commands.simple("land").expects_reply is True
    assert commands.led_solid(1, 2, 3).reply is ReplyKind.LED_OK
    assert commands.matrix_char("r", "x").reply is ReplyKind.MATRIX_OK


def test_command_is_frozen() -> None:
    cmd = commands.simple("land")
    with pytest.raises(AttributeError):
        cmd.text = "takeoff"  # type: ignore[misc]


# ---- reply forms of reads (reference "Read commands and their real replies") ---------------------

READ_REPLY_KIND = {
    "battery?": ReplyKind.INT,
    "speed?": ReplyKind.FLOAT,
    "time?": ReplyKind.SECONDS,
    "height?": ReplyKind.DECIMETRES,
    "temp?": ReplyKind.TEMPERATURE,
    "attitude?": ReplyKind.ATTITUDE,
    "baro?": ReplyKind.FLOAT,
    "acceleration?": ReplyKind.ACCELERATION,
    "tof?": ReplyKind.MILLIMETRES,
    "wifi?": ReplyKind.INT,
    "sdk?": ReplyKind.INT,
    "sn?": ReplyKind.TEXT,
    "hardware?": ReplyKind.TEXT,
    "EXT tof?": ReplyKind.EXT_TOF,
}


def test_every_read_expects_the_form_of_its_real_reply() -> None:
    assert {q: SPECS[q].reply for q in READS} == READ_REPLY_KIND


def test_actions_expect_ok_led_ok_matrix_ok_or_nothing() -> None:
    assert SPECS["EXT led"].reply is ReplyKind.LED_OK
    assert SPECS["EXT mled"].reply is ReplyKind.MATRIX_OK
    assert SPECS["rc"].reply is ReplyKind.NONE
    others = set(SPECS) - set(READS) - {"EXT led", "EXT mled", "rc"}
    assert {v: SPECS[v].reply for v in others} == dict.fromkeys(others, ReplyKind.OK)


# ---- retry safety (reference "Retry safety") ----------------------------------------------------

# The two rows of the reference table, verbatim.
RETRY_YES_ROW = (
    "`command`, every read (`...?`), `land`, `emergency`, `stop`, `speed x`, `EXT led ...`, "
    "`EXT mled ...`, `mon`/`moff`"
)
RETRY_NEVER_ROW = "`takeoff`, all moves, `cw/ccw`, `flip`, `go`, `curve`, `rc`, `motoron`, `reboot`"
# "all moves" are the reference's `up/down/left/right/forward/back x` row.
ALL_MOVES = ["up", "down", "left", "right", "forward", "back"]
# Verbs in SPECS the reference retry table says nothing about; listed so a new verb is a decision.
UNLISTED_IN_RETRY_TABLE = {"streamon": True, "streamoff": True, "motoroff": True, "mdirection": True}


def _verbs_of_row(row: str) -> set[str]:
    verbs: set[str] = set()
    for item in re.findall(r"`([^`]+)`", row):
        if item == "...?":
            verbs |= {v for v in SPECS if v.endswith("?")}
            continue
        item = re.sub(r" (x|\.\.\.)$", "", item)
        verbs |= set(item.split("/")) if not item.startswith("EXT") else {item}
    if "all moves" in row:
        verbs |= set(ALL_MOVES)
    return verbs


def test_reference_rows_parse_into_the_expected_verbs() -> None:
    # Guards the little row parser itself, so the table test below cannot pass vacuously.
    assert _verbs_of_row(RETRY_YES_ROW) == {
        "command", "land", "emergency", "stop", "speed", "EXT led", "EXT mled", "mon", "moff", *READS,
    }  # fmt: skip
    assert _verbs_of_row(RETRY_NEVER_ROW) == {
        "takeoff", *ALL_MOVES, "cw", "ccw", "flip", "go", "curve", "rc", "motoron", "reboot",
    }  # fmt: skip


def test_retry_table_matches_reference_exactly() -> None:
    yes, never = _verbs_of_row(RETRY_YES_ROW), _verbs_of_row(RETRY_NEVER_ROW)
    assert not yes & never
    idempotent = {v for v, s in SPECS.items() if s.idempotent}
    not_idempotent = {v for v, s in SPECS.items() if not s.idempotent}
    unlisted_yes = {v for v, ok in UNLISTED_IN_RETRY_TABLE.items() if ok}
    assert idempotent == yes | unlisted_yes
    assert not_idempotent == never
    assert set(SPECS) == yes | never | set(UNLISTED_IN_RETRY_TABLE)


@pytest.mark.parametrize(
    "cmd",
    [
        commands.move("up", 20),
        commands.rotate("cw", 90),
        commands.flip("l"),
        commands.go(100, 0, 0, 50),
        commands.curve(100, 100, 0, 200, 0, 0, 30),
        commands.rc(0, 0, 0, 0),
        commands.simple("takeoff"),
        commands.simple("motoron"),
        commands.simple("reboot"),
    ],
    ids=lambda c: c.text,
)
def test_built_flight_actions_are_never_retried(cmd: Command) -> None:
    assert cmd.idempotent is False


@pytest.mark.parametrize(
    "cmd",
    [
        commands.simple("command"),
        commands.simple("land"),
        commands.simple("emergency"),
        commands.simple("stop"),
        commands.set_speed(50),
        commands.led_solid(1, 2, 3),
        commands.matrix_char("r", "a"),
        commands.simple("mon"),
        commands.simple("moff"),
        *(commands.query(q) for q in READS),
    ],
    ids=lambda c: c.text,
)
def test_built_harmless_commands_may_be_retried(cmd: Command) -> None:
    assert cmd.idempotent is True


def test_motion_class() -> None:
    flight = {v for v, s in SPECS.items() if s.motion is Motion.FLIGHT}
    assert flight == {"takeoff", "land", *ALL_MOVES, "cw", "ccw", "flip", "go", "curve"}


# ---- ranges: every edge of every parameter -------------------------------------------------------

IntBuilder = Callable[[Any], Command]


def _curve_with(index: int, value: int) -> Command:
    """A curve whose coordinate `index` (x1..z2) is `value` and whose radius is legal."""
    fillers: list[tuple[int, ...]] = [
        (100, 100, 0, 200, 0, 0),
        (0, 100, 100, 0, 200, 0),
        (100, 0, 100, 200, 0, 0),
        (-100, 100, 0, -200, 0, 0),
        (100, 100, 0, 0, 200, 0),
        (300, 300, 0, 0, 300, 0),
        (0, 300, 300, 0, 0, 300),
    ]

    def build(coords: list[Any]) -> Command:
        x1, y1, z1, x2, y2, z2 = coords
        return commands.curve(x1, y1, z1, x2, y2, z2, 30)

    if isinstance(value, bool) or not isinstance(value, int):
        coords: list[Any] = list(fillers[0])
        coords[index] = value
        return build(coords)
    for base in fillers:
        coords = list(base)
        coords[index] = value
        p1: Point = (coords[0], coords[1], coords[2])
        p2: Point = (coords[3], coords[4], coords[5])
        circle = circumcircle(p1, p2)
        if circle is not None and 50**2 <= circle[1] <= 1000**2:
            return build(coords)
    raise AssertionError(f"no legal curve with coordinate {index} = {value}")


def _blink(index: int) -> IntBuilder:
    def build(v: Any) -> Command:
        colours = [10, 20, 30, 40, 50, 60]
        colours[index] = v
        return commands.led_blink(
            1.0, (colours[0], colours[1], colours[2]), (colours[3], colours[4], colours[5])
        )

    return build


# (id, builder taking the parameter, OutOfRange.field, min, max)
INT_PARAMS: list[tuple[str, IntBuilder, str, int, int]] = [
    *[(f"{d} x", lambda v, d=d: commands.move(d, v), "distance_cm", 20, 500) for d in ALL_MOVES],
    *[(f"{d} x", lambda v, d=d: commands.rotate(d, v), "degrees", 1, 360) for d in ("cw", "ccw")],
    ("go x", lambda v: commands.go(v, 0, 100, 50), "x", -500, 500),
    ("go y", lambda v: commands.go(100, v, 0, 50), "y", -500, 500),
    ("go z", lambda v: commands.go(0, 100, v, 50), "z", -500, 500),
    ("go speed", lambda v: commands.go(100, 0, 0, v), "speed", 10, 100),
    *[
        (f"curve {name}", lambda v, i=i: _curve_with(i, v), name, -500, 500)
        for i, name in enumerate(("x1", "y1", "z1", "x2", "y2", "z2"))
    ],
    ("curve speed", lambda v: commands.curve(100, 100, 0, 200, 0, 0, v), "speed", 10, 60),
    ("speed x", lambda v: commands.set_speed(v), "speed", 10, 100),
    ("rc a", lambda v: commands.rc(v, 0, 0, 0), "roll", -100, 100),
    ("rc b", lambda v: commands.rc(0, v, 0, 0), "pitch", -100, 100),
    ("rc c", lambda v: commands.rc(0, 0, v, 0), "throttle", -100, 100),
    ("rc d", lambda v: commands.rc(0, 0, 0, v), "yaw", -100, 100),
    ("mdirection", lambda v: commands.mdirection(v), "mdirection", 0, 2),
    ("led r", lambda v: commands.led_solid(v, 0, 0), "r", 0, 255),
    ("led g", lambda v: commands.led_solid(0, v, 0), "g", 0, 255),
    ("led b", lambda v: commands.led_solid(0, 0, v), "b", 0, 255),
    ("led br r", lambda v: commands.led_breathe(1.0, v, 0, 0), "r", 0, 255),
    ("led br g", lambda v: commands.led_breathe(1.0, 0, v, 0), "g", 0, 255),
    ("led br b", lambda v: commands.led_breathe(1.0, 0, 0, v), "b", 0, 255),
    *[
        (f"led bl {name}", _blink(i), name, 0, 255)
        for i, name in enumerate(("first.r", "first.g", "first.b", "second.r", "second.g", "second.b"))
    ],
]
INT_IDS = [p[0] for p in INT_PARAMS]


@pytest.mark.parametrize(("name", "build", "field", "low", "high"), INT_PARAMS, ids=INT_IDS)
def test_int_range_edges_are_accepted(name: str, build: IntBuilder, field: str, low: int, high: int) -> None:
    for value in (low, high):
        cmd = build(value)
        assert str(value) in cmd.text.split(), name


@pytest.mark.parametrize(("name", "build", "field", "low", "high"), INT_PARAMS, ids=INT_IDS)
def test_int_just_outside_range_is_rejected_naming_field_and_range(
    name: str, build: IntBuilder, field: str, low: int, high: int
) -> None:
    for value in (low - 1, high + 1, low - 1000, high + 1000):
        with pytest.raises(OutOfRange) as err:
            build(value)
        assert err.value.field == field, name
        assert err.value.value == value
        assert f"{low}..{high}" in err.value.allowed
        assert field in str(err.value)
        assert f"{low}..{high}" in str(err.value)


@pytest.mark.parametrize(("name", "build", "field", "low", "high"), INT_PARAMS, ids=INT_IDS)
def test_non_int_is_rejected_where_an_int_is_required(
    name: str, build: IntBuilder, field: str, low: int, high: int
) -> None:
    # True == 1 and 20.0 == 20 would slip through a plain range check and encode as "True"/"20.0".
    for value in (True, False, float(low), float(high), low + 0.5, math.nan, math.inf, str(low), None):
        with pytest.raises(OutOfRange) as err:
            build(value)
        assert err.value.field == field, (name, value)
        assert f"{low}..{high}" in err.value.allowed


FLOAT_PARAMS: list[tuple[str, Callable[[Any], Command], str, float, float]] = [
    ("led br t", lambda v: commands.led_breathe(v, 1, 2, 3), "frequency_hz", 0.1, 2.5),
    ("led bl t", lambda v: commands.led_blink(v, (1, 2, 3), (4, 5, 6)), "frequency_hz", 0.1, 10.0),
    ("mled scroll rate", lambda v: commands.matrix_scroll("l", "r", v, "hi"), "rate_hz", 0.1, 2.5),
]
FLOAT_IDS = [p[0] for p in FLOAT_PARAMS]


@pytest.mark.parametrize(("name", "build", "field", "low", "high"), FLOAT_PARAMS, ids=FLOAT_IDS)
def test_float_range_edges(
    name: str, build: Callable[[Any], Command], field: str, low: float, high: float
) -> None:
    for value in (low, high):
        assert float(build(value).text.split()[3 if name.startswith("led") else 4]) == pytest.approx(value)
    for value in (low - 0.01, high + 0.01, low - 1, high + 1, -math.inf, math.inf, math.nan, True, "1", None):
        with pytest.raises(OutOfRange) as err:
            build(value)
        assert err.value.field == field, (name, value)
        assert f"{low:g}..{high:g}" in err.value.allowed


def test_integral_frequency_is_written_without_decimals() -> None:
    assert commands.led_blink(5, (0, 0, 0), (1, 1, 1)).text.split()[3] == "5"
    assert commands.led_breathe(1.0, 0, 0, 0).text.split()[3] == "1"


# ---- choices ----


@pytest.mark.parametrize("direction", ["Up", "upward", "", "cw", "l", "north", "forward "])
def test_move_rejects_unknown_direction(direction: str) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.move(direction, 100)
    assert err.value.field == "direction"
    assert all(d in err.value.allowed for d in ALL_MOVES)


@pytest.mark.parametrize("direction", ["CW", "clockwise", "left", ""])
def test_rotate_rejects_unknown_direction(direction: str) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.rotate(direction, 90)
    assert err.value.field == "direction"


@pytest.mark.parametrize("direction", ["L", "up", "down", "x", "", "lr"])
def test_flip_rejects_unknown_direction(direction: str) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.flip(direction)
    assert err.value.field == "direction"


@pytest.mark.parametrize("mid", ["m0", "m9", "M1", "1", "", "m-3"])
def test_go_and_curve_reject_unknown_mission_pad(mid: str) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.go(100, 0, 0, 50, mid)
    assert err.value.field == "mid"
    with pytest.raises(OutOfRange):
        commands.curve(100, 100, 0, 200, 0, 0, 30, mid)


@pytest.mark.parametrize("mid", [*(f"m{i}" for i in range(1, 9)), "m-1", "m-2"])
def test_every_mission_pad_id_is_accepted(mid: str) -> None:
    assert commands.go(100, 0, 0, 50, mid).text.endswith(f" {mid}")


# ---- go: "not all three within ±20" --------------------------------------------------------------


@pytest.mark.parametrize(
    "xyz", [(0, 0, 0), (20, 20, 20), (-20, -20, -20), (20, -20, 0), (-20, 0, 20), (5, -7, 19)]
)
def test_go_rejects_targets_all_within_20(xyz: tuple[int, int, int]) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.go(*xyz, 50)
    assert err.value.field == "x,y,z"
    assert err.value.value == xyz
    assert "20" in err.value.allowed


@pytest.mark.parametrize(
    "xyz", [(21, 0, 0), (0, -21, 0), (0, 0, 21), (20, 20, -21), (-21, -21, -21), (500, 500, 500)]
)
def test_go_accepts_targets_with_one_axis_beyond_20(xyz: tuple[int, int, int]) -> None:
    x, y, z = xyz
    assert commands.go(x, y, z, 50).text == f"go {x} {y} {z} 50"


# ---- curve: radius 0.5..10 m and collinear points ------------------------------------------------


@pytest.mark.parametrize(
    ("p1", "p2"),
    [
        ((100, 0, 0), (200, 0, 0)),
        ((100, 100, 100), (200, 200, 200)),
        ((-50, 0, 50), (100, 0, -100)),
        ((-100, -50, 0), (100, 50, 0)),
        ((100, 50, 0), (100, 50, 0)),
    ],
)
def test_curve_rejects_collinear_or_degenerate_points(p1: Point, p2: Point) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.curve(*p1, *p2, 30)
    assert err.value.field == "arc radius"
    assert "0.5..10 m" in err.value.allowed


@pytest.mark.parametrize(
    ("p1", "p2", "radius_cm"),
    [
        ((21, 21, 0), (42, 0, 0), 21.0),
        ((49, 49, 0), (98, 0, 0), 49.0),
        ((100, 1, 0), (200, 0, 0), None),
        ((500, 2, 0), (-500, 0, 0), None),
    ],
)
def test_curve_rejects_radius_outside_half_to_ten_metres(
    p1: Point, p2: Point, radius_cm: float | None
) -> None:
    circle = circumcircle(p1, p2)
    assert circle is not None
    r = math.sqrt(circle[1])
    if radius_cm is not None:
        assert r == pytest.approx(radius_cm)
    assert not 50 <= r <= 1000
    with pytest.raises(OutOfRange) as err:
        commands.curve(*p1, *p2, 30)
    assert err.value.field == "arc radius"
    assert err.value.allowed == "0.5..10 m"


@pytest.mark.parametrize(
    ("p1", "p2"),
    [
        ((50, 50, 0), (100, 0, 0)),  # exactly 0.5 m, computed exactly in floats
        ((-280, 40, 0), (280, 40, 0)),  # exactly 10 m, computed exactly in floats
        ((100, 100, 0), (200, 0, 0)),  # 1 m
        ((0, 300, 300), (0, 0, 300)),
    ],
)
def test_curve_accepts_radius_within_range(p1: Point, p2: Point) -> None:
    circle = circumcircle(p1, p2)
    assert circle is not None
    assert Fraction(50**2) <= circle[1] <= Fraction(1000**2)
    assert commands.curve(*p1, *p2, 30).verb == "curve"


@pytest.mark.parametrize(
    ("p1", "p2"),
    [((-48, 36, 0), (30, 90, 0)), ((280, 40, 0), (352, 64, 0))],
    ids=["exactly-0.5m", "exactly-10m"],
)
def test_curve_accepts_exact_boundary_radius(p1: Point, p2: Point) -> None:
    circle = circumcircle(p1, p2)
    assert circle is not None
    assert circle[1] in (Fraction(50**2), Fraction(1000**2))
    commands.curve(*p1, *p2, 30)


def test_curve_speed_is_capped_at_60_not_100() -> None:
    commands.curve(100, 100, 0, 200, 0, 0, 60)
    with pytest.raises(OutOfRange) as err:
        commands.curve(100, 100, 0, 200, 0, 0, 61)
    assert err.value.allowed.startswith("10..60")


# ---- LED and matrix forms ------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["r" * 63, "r" * 65, "", "x" * 64, "R" * 64, "r" * 63 + " ", "g" * 64])
def test_matrix_pattern_must_be_64_pixels_of_rbp0(pattern: str) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.matrix_pattern(pattern)
    assert err.value.field == "pattern"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("x", "r", 1.0, "hi"), "direction"),
        (("L", "r", 1.0, "hi"), "direction"),
        (("l", "g", 1.0, "hi"), "colour"),
        (("l", "red", 1.0, "hi"), "colour"),
        (("l", "r", 1.0, ""), "text"),
        (("l", "r", 1.0, "x" * 71), "text"),
        (("l", "r", 1.0, "héllo"), "text"),
        (("l", "r", 1.0, "a\nb"), "text"),
        (("l", "r", 1.0, "tab\there"), "text"),
    ],
)
def test_matrix_scroll_rejects(args: tuple[str, str, float, str], field: str) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.matrix_scroll(*args)
    assert err.value.field == field


def test_matrix_scroll_text_length_edges() -> None:
    assert commands.matrix_scroll("d", "r", 2.5, "x" * 70).text == "EXT mled d r 2.5 " + "x" * 70
    assert commands.matrix_scroll("r", "r", 0.1, "!").text == "EXT mled r r 0.1 !"


@pytest.mark.parametrize("text", [" ", "   "])
def test_matrix_scroll_rejects_blank_text(text: str) -> None:
    with pytest.raises(OutOfRange):
        commands.matrix_scroll("l", "r", 1.0, text)


@pytest.mark.parametrize(("colour", "char"), [("r", " "), ("r", "ab"), ("r", ""), ("r", "é"), ("x", "a")])
def test_matrix_char_rejects(colour: str, char: str) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.matrix_char(colour, char)
    assert err.value.field == ("colour" if colour == "x" else "char")


# ---- timeouts scale with the physical duration ---------------------------------------------------


def test_move_timeout_scales_with_distance_over_speed() -> None:
    slowest = commands.move("forward", 500, speed_cm_s=10)
    assert slowest.timeout_s >= 50.0  # reference: a 500 cm move at 10 cm/s takes ~50 s
    assert commands.move("forward", 500).timeout_s == slowest.timeout_s  # unknown speed → slowest
    fast = commands.move("forward", 500, speed_cm_s=100)
    assert 5.0 <= fast.timeout_s < slowest.timeout_s
    short = commands.move("forward", 20, speed_cm_s=10)
    assert 2.0 <= short.timeout_s < slowest.timeout_s
    for d in (20, 100, 300, 500):
        for s in (10, 30, 100):
            assert commands.move("up", d, speed_cm_s=s).timeout_s >= d / s


@pytest.mark.parametrize("speed", [0, -5, 5])
def test_move_timeout_never_assumes_slower_than_the_slowest_legal_speed(speed: float) -> None:
    assert commands.move("up", 500, speed_cm_s=speed).timeout_s == commands.move("up", 500).timeout_s


@pytest.mark.parametrize("speed", [math.nan, math.inf, 1e9, 1000])
def test_move_timeout_is_sane_for_any_speed_claim(speed: float) -> None:
    try:
        cmd = commands.move("forward", 500, speed_cm_s=speed)
    except OutOfRange:
        return
    assert math.isfinite(cmd.timeout_s)
    # No Tello flies faster than 100 cm/s: the budget at the fastest legal speed is the floor.
    assert cmd.timeout_s >= commands.move("forward", 500, speed_cm_s=commands.SPEED_MAX).timeout_s


def test_rotate_timeout_grows_with_angle() -> None:
    timeouts = [commands.rotate("cw", d).timeout_s for d in (1, 90, 180, 360)]
    assert timeouts == sorted(timeouts)
    assert timeouts[0] < timeouts[-1]
    assert timeouts[-1] >= 360 / 45  # the code's own conservative 45 deg/s


def test_go_timeout_covers_straight_line_distance() -> None:
    slow = commands.go(500, 500, 500, 10)
    assert slow.timeout_s >= math.sqrt(3 * 500**2) / 10
    assert commands.go(500, 500, 500, 100).timeout_s < slow.timeout_s
    assert commands.go(30, 0, 0, 10).timeout_s < slow.timeout_s


def test_curve_timeout_covers_a_half_circle() -> None:
    p1, p2 = (100, 100, 0), (200, 0, 0)  # origin → top → far end of a 1 m circle
    arc = arc_length_cm(p1, p2)
    assert arc == pytest.approx(math.pi * 100)
    for speed in (10, 60):
        assert commands.curve(*p1, *p2, speed).timeout_s >= arc / speed


def test_curve_timeout_covers_a_nearly_full_circle() -> None:
    # On the 0.5 m circle through the origin centred at (0, 50): over the top to (30, 10), 323°.
    p1, p2 = (0, 100, 0), (30, 10, 0)
    circle = circumcircle(p1, p2)
    assert circle is not None
    assert 50**2 <= circle[1] <= 1000**2
    arc = arc_length_cm(p1, p2)
    assert arc > 280
    assert commands.curve(*p1, *p2, 10).timeout_s >= arc / 10


# ---- hypothesis: valid parameters round-trip through the text -----------------------------------


def parse_sdk_text(text: str) -> tuple[object, ...]:
    """A small independent reading of SDK command text back into (builder, *params)."""
    assert text.isascii()
    if text.startswith("EXT mled ") and text.split(" ")[2] in ("l", "r", "u", "d"):
        _, _, direction, colour, rate, scroll = text.split(" ", 5)
        return ("matrix_scroll", direction, colour, float(rate), scroll)
    assert text == text.strip()
    assert "  " not in text
    head, *rest = text.split(" ")
    if not rest:
        return ("simple-or-query", head)
    if text == "EXT tof?":
        return ("simple-or-query", text)
    if head in ALL_MOVES:
        return ("move", head, int(rest[0]))
    if head in ("cw", "ccw"):
        return ("rotate", head, int(rest[0]))
    if head == "flip":
        return ("flip", rest[0])
    if head in ("go", "curve"):
        n = 4 if head == "go" else 7
        mid = rest[n] if len(rest) > n else None
        assert len(rest) in (n, n + 1)
        return (head, *(int(v) for v in rest[:n]), mid)
    if head == "speed":
        return ("speed", int(rest[0]))
    if head == "rc":
        return ("rc", *(int(v) for v in rest))
    if head == "mdirection":
        return ("mdirection", int(rest[0]))
    assert head == "EXT"
    if rest[0] == "led":
        if rest[1] == "br":
            return ("led_breathe", float(rest[2]), *(int(v) for v in rest[3:]))
        if rest[1] == "bl":
            return ("led_blink", float(rest[2]), *(int(v) for v in rest[3:]))
        return ("led_solid", *(int(v) for v in rest[1:]))
    assert rest[0] == "mled"
    form = rest[1]
    if form == "g":
        return ("matrix_pattern", rest[2])
    assert form == "s"
    assert len(rest) == 4
    return ("matrix_char", rest[2], rest[3])


coord = st.integers(-500, 500)
colour8 = st.integers(0, 255)
mids = st.none() | st.sampled_from(commands.MISSION_PADS)
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=70)


CALL_KINDS = ["simple", "query", "move", "rotate", "flip", "go", "curve", "speed", "rc", "mdirection"]
CALL_KINDS += ["led", "br", "bl", "pattern", "scroll", "char"]


@st.composite
def valid_calls(draw: st.DrawFn) -> tuple[Command, tuple[object, ...]]:
    """A valid builder call and the parameters its text must carry."""
    kind = draw(st.sampled_from(CALL_KINDS))
    match kind:
        case "simple":
            v = draw(st.sampled_from(sorted(commands.SIMPLE_COMMANDS)))
            return commands.simple(v), ("simple-or-query", v)
        case "query":
            v = draw(st.sampled_from(sorted(commands.QUERIES)))
            return commands.query(v), ("simple-or-query", v)
        case "move":
            d, n = draw(st.sampled_from(ALL_MOVES)), draw(st.integers(20, 500))
            return commands.move(d, n), ("move", d, n)
        case "rotate":
            d, n = draw(st.sampled_from(["cw", "ccw"])), draw(st.integers(1, 360))
            return commands.rotate(d, n), ("rotate", d, n)
        case "flip":
            d = draw(st.sampled_from(["l", "r", "f", "b", "left", "right", "forward", "back"]))
            return commands.flip(d), ("flip", d[0])
        case "go":
            x, y, z = draw(coord), draw(coord), draw(coord)
            assume(max(abs(x), abs(y), abs(z)) > 20)
            s, mid = draw(st.integers(10, 100)), draw(mids)
            return commands.go(x, y, z, s, mid), ("go", x, y, z, s, mid)
        case "curve":
            p = (draw(coord), draw(coord), draw(coord), draw(coord), draw(coord), draw(coord))
            assume(max(map(abs, p[:3])) > 20 and max(map(abs, p[3:])) > 20)
            circle = circumcircle((p[0], p[1], p[2]), (p[3], p[4], p[5]))
            # Stay clear of the float-noisy boundary (see test_curve_accepts_exact_boundary_radius).
            assume(circle is not None and 50.01**2 <= circle[1] <= 999.99**2)
            s, mid = draw(st.integers(10, 60)), draw(mids)
            return commands.curve(*p, s, mid), ("curve", *p, s, mid)
        case "speed":
            s = draw(st.integers(10, 100))
            return commands.set_speed(s), ("speed", s)
        case "rc":
            a = [draw(st.integers(-100, 100)) for _ in range(4)]
            return commands.rc(*a), ("rc", *a)
        case "mdirection":
            v = draw(st.integers(0, 2))
            return commands.mdirection(v), ("mdirection", v)
        case "led":
            r, g, b = draw(colour8), draw(colour8), draw(colour8)
            return commands.led_solid(r, g, b), ("led_solid", r, g, b)
        case "br":
            f = draw(st.floats(0.1, 2.5))
            r, g, b = draw(colour8), draw(colour8), draw(colour8)
            return commands.led_breathe(f, r, g, b), ("led_breathe", f, r, g, b)
        case "bl":
            f = draw(st.floats(0.1, 10.0))
            c1 = (draw(colour8), draw(colour8), draw(colour8))
            c2 = (draw(colour8), draw(colour8), draw(colour8))
            return commands.led_blink(f, c1, c2), ("led_blink", f, *c1, *c2)
        case "pattern":
            pat = draw(st.text(st.sampled_from("rbp0"), min_size=64, max_size=64))
            return commands.matrix_pattern(pat), ("matrix_pattern", pat)
        case "scroll":
            d, c = draw(st.sampled_from("lrud")), draw(st.sampled_from("rbp"))
            f = draw(st.floats(0.1, 2.5))
            # Blank text is the subject of test_matrix_scroll_rejects_blank_text.
            text = draw(printable.filter(lambda t: t.strip() != ""))
            return commands.matrix_scroll(d, c, f, text), ("matrix_scroll", d, c, f, text)
        case _:
            c = draw(st.sampled_from("rbp"))
            ch = draw(st.sampled_from(["heart"]) | st.characters(min_codepoint=0x21, max_codepoint=0x7E))
            return commands.matrix_char(c, ch), ("matrix_char", c, ch)


def _same(parsed: tuple[object, ...], expected: tuple[object, ...]) -> bool:
    if len(parsed) != len(expected):
        return False
    for got, want in zip(parsed, expected, strict=True):
        if isinstance(want, float) and not isinstance(want, bool):
            # Frequencies go out with one decimal: the drone gets the nearest tenth.
            if not isinstance(got, float) or abs(got - want) > 0.05 + 1e-9:
                return False
        elif got != want:
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(valid_calls())
def test_valid_parameters_round_trip_through_the_text(call: tuple[Command, tuple[object, ...]]) -> None:
    cmd, expected = call
    parsed = parse_sdk_text(cmd.text)
    assert _same(parsed, expected), (cmd.text, parsed, expected)
    assert cmd.encode() == cmd.text.encode("ascii")
    assert cmd.verb in SPECS
    assert cmd.timeout_s >= 0
    assert math.isfinite(cmd.timeout_s)
    if cmd.motion is Motion.FLIGHT:
        assert cmd.timeout_s >= commands.MOTION_MARGIN_S


def _bad_int(low: int, high: int) -> st.SearchStrategy[object]:
    return st.one_of(
        st.integers(max_value=low - 1),
        st.integers(min_value=high + 1),
        st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=4),
        st.none(),
    )


# builder of (bad value) → Command, with the valid range of the corrupted parameter
INVALID_TARGETS: list[tuple[str, Callable[[object], Command], int, int]] = [
    ("move", lambda v: commands.move("up", v), 20, 500),  # type: ignore[arg-type]
    ("rotate", lambda v: commands.rotate("ccw", v), 1, 360),  # type: ignore[arg-type]
    ("go x", lambda v: commands.go(v, 0, 100, 50), -500, 500),  # type: ignore[arg-type]
    ("go speed", lambda v: commands.go(0, 0, 100, v), 10, 100),  # type: ignore[arg-type]
    ("curve z2", lambda v: commands.curve(100, 100, 0, 200, 0, v, 30), -500, 500),  # type: ignore[arg-type]
    ("curve speed", lambda v: commands.curve(100, 100, 0, 200, 0, 0, v), 10, 60),  # type: ignore[arg-type]
    ("speed", lambda v: commands.set_speed(v), 10, 100),  # type: ignore[arg-type]
    ("rc", lambda v: commands.rc(0, 0, v, 0), -100, 100),  # type: ignore[arg-type]
    ("mdirection", lambda v: commands.mdirection(v), 0, 2),  # type: ignore[arg-type]
    ("led", lambda v: commands.led_solid(0, v, 0), 0, 255),  # type: ignore[arg-type]
    ("led bl", lambda v: commands.led_blink(1, (0, 0, 0), (0, 0, v)), 0, 255),  # type: ignore[arg-type]
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(INVALID_TARGETS).flatmap(lambda t: st.tuples(st.just(t), _bad_int(t[2], t[3]))))
def test_any_invalid_int_parameter_raises_out_of_range(
    case: tuple[tuple[str, Callable[[object], Command], int, int], object],
) -> None:
    (_name, build, _, _), value = case
    with pytest.raises(OutOfRange):
        build(value)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(FLOAT_PARAMS).flatmap(
        lambda t: st.tuples(
            st.just(t),
            st.one_of(
                st.floats(max_value=t[3], exclude_max=True),
                st.floats(min_value=t[4], exclude_min=True),
                st.just(math.nan),
                st.booleans(),
                st.text(max_size=3),
            ),
        )
    )
)
def test_any_invalid_frequency_raises_out_of_range(
    case: tuple[tuple[str, Callable[[Any], Command], str, float, float], object],
) -> None:
    (_, build, field, _, _), value = case
    with pytest.raises(OutOfRange) as err:
        build(value)
    assert err.value.field == field


@settings(max_examples=300, deadline=None)
@given(coord, coord, coord, coord, coord, coord, st.integers(10, 60))
def test_curve_accepts_exactly_the_legal_radii(
    x1: int, y1: int, z1: int, x2: int, y2: int, z2: int, speed: int
) -> None:
    circle = circumcircle((x1, y1, z1), (x2, y2, z2))
    if circle is not None:
        assume(abs(math.sqrt(circle[1]) - 50) > 1e-6 and abs(math.sqrt(circle[1]) - 1000) > 1e-6)
    dead_zone = [n for n, p in (("1", (x1, y1, z1)), ("2", (x2, y2, z2))) if max(map(abs, p)) <= 20]
    legal = not dead_zone and circle is not None and 50**2 <= circle[1] <= 1000**2
    if legal:
        assert commands.curve(x1, y1, z1, x2, y2, z2, speed).verb == "curve"
    else:
        with pytest.raises(OutOfRange) as err:
            commands.curve(x1, y1, z1, x2, y2, z2, speed)
        n = dead_zone[0] if dead_zone else None
        assert err.value.field == (f"x{n},y{n},z{n}" if n else "arc radius")


@pytest.mark.parametrize(
    ("p1", "p2", "field"), [((0, 0, 1), (10, 205, 436), "x1,y1,z1"), ((100, 100, 0), (-5, 0, 0), "x2,y2,z2")]
)
def test_curve_points_may_not_all_lie_within_20_cm(p1: Point, p2: Point, field: str) -> None:
    with pytest.raises(OutOfRange) as err:
        commands.curve(*p1, *p2, 30)
    assert err.value.field == field
    assert "outside -20..20 cm" in err.value.allowed


@settings(max_examples=200, deadline=None)
@given(coord, coord, coord, st.integers(10, 100))
def test_go_accepts_exactly_targets_beyond_20(x: int, y: int, z: int, speed: int) -> None:
    if max(abs(x), abs(y), abs(z)) > 20:
        cmd = commands.go(x, y, z, speed)
        assert cmd.timeout_s >= math.dist((0, 0, 0), (x, y, z)) / speed
    else:
        with pytest.raises(OutOfRange):
            commands.go(x, y, z, speed)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(ALL_MOVES),
    st.integers(20, 500),
    st.integers(20, 500),
    st.integers(10, 100),
    st.integers(10, 100),
)
def test_move_timeout_is_monotonic(direction: str, d1: int, d2: int, s1: int, s2: int) -> None:
    def t(d: int, s: int) -> float:
        return commands.move(direction, d, speed_cm_s=s).timeout_s

    if d1 <= d2:
        assert t(d1, s1) <= t(d2, s1)
    if s1 <= s2:
        assert t(d1, s1) >= t(d1, s2)
    assert t(d1, s1) >= d1 / s1
