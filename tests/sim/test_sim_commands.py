"""The simulator's own SDK parser: every command form, every error the drone answers instead."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drone_sim.commands import (
    Command,
    Curve,
    Direction,
    Emergency,
    EnterSdk,
    Flip,
    FlipDirection,
    Go,
    Keepalive,
    Land,
    Led,
    LedMode,
    MatrixBrightness,
    MatrixChar,
    MatrixClear,
    MatrixColor,
    MatrixPattern,
    MatrixScroll,
    MissionPadDirection,
    MissionPads,
    MotorOff,
    MotorOn,
    Move,
    ParseError,
    Query,
    Rc,
    Read,
    Reboot,
    Rotate,
    ScrollDirection,
    SetPorts,
    SetSpeed,
    Stop,
    StreamOff,
    StreamOn,
    Takeoff,
    VideoOption,
    VideoSetting,
    is_flight_action,
    parse,
)

VALID: list[tuple[str, Command]] = [
    ("command", EnterSdk()),
    ("keepalive", Keepalive()),
    ("takeoff", Takeoff()),
    ("land", Land()),
    ("emergency", Emergency()),
    ("stop", Stop()),
    ("streamon", StreamOn()),
    ("streamoff", StreamOff()),
    ("motoron", MotorOn()),
    ("motoroff", MotorOff()),
    ("reboot", Reboot()),
    ("mon", MissionPads(enabled=True)),
    ("moff", MissionPads(enabled=False)),
    ("mdirection 2", MissionPadDirection(2)),
    ("up 20", Move(Direction.UP, 20)),
    ("down 500", Move(Direction.DOWN, 500)),
    ("left 35", Move(Direction.LEFT, 35)),
    ("right 100", Move(Direction.RIGHT, 100)),
    ("forward 250", Move(Direction.FORWARD, 250)),
    ("back 20", Move(Direction.BACK, 20)),
    ("cw 1", Rotate(1)),
    ("ccw 360", Rotate(-360)),
    ("flip l", Flip(FlipDirection.LEFT)),
    ("flip r", Flip(FlipDirection.RIGHT)),
    ("flip f", Flip(FlipDirection.FORWARD)),
    ("flip b", Flip(FlipDirection.BACK)),
    ("go 100 0 0 50", Go(100, 0, 0, 50)),
    ("go -500 500 21 10", Go(-500, 500, 21, 10)),
    ("go 0 0 21 100", Go(0, 0, 21, 100)),
    ("go 100 0 0 50 m1", Go(100, 0, 0, 50, pad=1)),
    ("go 100 0 0 50 m-2", Go(100, 0, 0, 50, pad=-2)),
    ("curve 100 100 0 200 0 0 60", Curve(100, 100, 0, 200, 0, 0, 60)),
    ("curve 100 100 0 200 0 0 10 m8", Curve(100, 100, 0, 200, 0, 0, 10, pad=8)),
    ("speed 10", SetSpeed(10)),
    ("speed 100", SetSpeed(100)),
    ("rc 0 0 0 0", Rc(0, 0, 0, 0)),
    ("rc -100 100 -5 +7", Rc(-100, 100, -5, 7)),
    ("port 8890 11111", SetPorts(8890, 11111)),
    ("setfps middle", VideoSetting(VideoOption.FPS, "middle")),
    ("setbitrate 0", VideoSetting(VideoOption.BITRATE, "0")),
    ("setresolution high", VideoSetting(VideoOption.RESOLUTION, "high")),
    ("downvision 1", VideoSetting(VideoOption.DOWNVISION, "1")),
    ("battery?", Read(Query.BATTERY)),
    ("speed?", Read(Query.SPEED)),
    ("time?", Read(Query.TIME)),
    ("height?", Read(Query.HEIGHT)),
    ("temp?", Read(Query.TEMP)),
    ("attitude?", Read(Query.ATTITUDE)),
    ("baro?", Read(Query.BARO)),
    ("acceleration?", Read(Query.ACCELERATION)),
    ("tof?", Read(Query.TOF)),
    ("wifi?", Read(Query.WIFI)),
    ("sdk?", Read(Query.SDK)),
    ("sn?", Read(Query.SN)),
    ("hardware?", Read(Query.HARDWARE)),
    ("EXT tof?", Read(Query.EXT_TOF)),
    ("EXT led 255 0 0", Led(LedMode.SOLID, ((255, 0, 0),))),
    ("EXT led br 2.5 0 255 0", Led(LedMode.BREATHE, ((0, 255, 0),), 2.5)),
    ("EXT led bl 0.1 255 0 0 0 0 255", Led(LedMode.BLINK, ((255, 0, 0), (0, 0, 255)), 0.1)),
    ("EXT mled g " + "rbp0" * 16, MatrixPattern("rbp0" * 16)),
    ("EXT mled g rrr", MatrixPattern("rrr" + "0" * 61)),
    ("EXT mled l r 1.5 Hello world", MatrixScroll(ScrollDirection.LEFT, MatrixColor.RED, 1.5, "Hello world")),
    ("EXT mled d p 0.1 x", MatrixScroll(ScrollDirection.DOWN, MatrixColor.PURPLE, 0.1, "x")),
    ("EXT mled s b A", MatrixChar(MatrixColor.BLUE, "A")),
    ("EXT mled s r heart", MatrixChar(MatrixColor.RED, "heart")),
    ("EXT mled sc", MatrixClear()),
    ("EXT mled bl 128", MatrixBrightness(128)),
    ("  takeoff \r\n", Takeoff()),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_commands_parse_to_typed_commands(text: str, expected: Command) -> None:
    assert parse(text) == expected


ERRORS: list[tuple[str, str | None]] = [
    # Unknown verbs name the verb, case-sensitively like the firmware.
    ("fly", "unknown command: fly"),
    ("TAKEOFF", "unknown command: TAKEOFF"),
    ("forwards 20", "unknown command: forwards"),
    ("ext tof?", "unknown command: ext"),
    ("EXT", "unknown command: EXT"),
    ("EXT foo", "unknown command: EXT foo"),
    ("EXT mled z", "unknown command: EXT mled z"),
    # Numbers out of their documented range.
    ("up 19", "out of range"),
    ("down 501", "out of range"),
    ("forward 0", "out of range"),
    ("back -20", "out of range"),
    ("cw 0", "out of range"),
    ("ccw 361", "out of range"),
    ("speed 9", "out of range"),
    ("speed 101", "out of range"),
    ("go 501 0 0 50", "out of range"),
    ("go 0 -501 100 50", "out of range"),
    ("go 20 -20 20 50", "out of range"),
    ("go 100 0 0 9", "out of range"),
    ("go 100 0 0 101", "out of range"),
    ("curve 10 10 10 200 0 0 30", "out of range"),
    ("curve 100 100 0 600 0 0 30", "out of range"),
    ("mdirection 3", "out of range"),
    ("port 80 11111", "out of range"),
    ("EXT led 256 0 0", "out of range"),
    ("EXT led br 2.6 0 0 0", "out of range"),
    ("EXT led bl 10.5 1 1 1 2 2 2", "out of range"),
    ("EXT mled l r 3 hi", "out of range"),
    ("EXT mled bl 256", "out of range"),
    # Curves: speed 10-60 and radius 0.5-10 m, else plain `error`.
    ("curve 100 100 0 200 0 0 61", "error"),
    ("curve 100 100 0 200 0 0 9", "error"),
    ("curve 30 30 0 60 0 0 30", "error"),
    ("curve 250 10 0 500 0 0 30", "error"),
    ("curve 100 0 0 200 0 0 30", "error"),
    # Malformed arguments.
    ("takeoff now", "error"),
    ("command 1", "error"),
    ("forward", "error"),
    ("forward 20 30", "error"),
    ("forward twenty", "error"),
    ("forward 20.5", "error"),
    ("forward 1_000", "error"),
    ("cw 9O", "error"),
    ("flip x", "error"),
    ("flip", "error"),
    ("go 100 0 0", "error"),
    ("go 100 0 0 50 m9", "error"),
    ("go 100 0 0 50 pad1", "error"),
    ("curve 1 2 3", "error"),
    ("setfps ultra", "error"),
    ("battery? now", "error"),
    ("EXT tof? 1", "error"),
    ("EXT led 1 2", "error"),
    ("EXT led br x 1 2 3", "error"),
    ("EXT mled g rgx", "error"),
    ("EXT mled g " + "r" * 65, "error"),
    ("EXT mled l x 1 hi", "error"),
    ("EXT mled l r 1 " + "x" * 71, "error"),
    ("EXT mled s r AB", "error"),
    ("EXT mled", "error"),
    ("", "error"),
    # rc never replies, not even to garbage.
    ("rc 0 0 0", None),
    ("rc 101 0 0 0", None),
    ("rc a b c d", None),
]


@pytest.mark.parametrize(("text", "reply"), ERRORS)
def test_rejected_commands_map_to_the_drones_reply(text: str, reply: str | None) -> None:
    result = parse(text)
    assert isinstance(result, ParseError), result
    assert result.reply == reply
    assert result.reason


def test_flight_actions_are_the_physical_commands() -> None:
    assert is_flight_action(Move(Direction.UP, 20))
    assert is_flight_action(Emergency())
    assert not is_flight_action(Read(Query.BATTERY))
    assert not is_flight_action(Rc(0, 0, 0, 0))
    assert not is_flight_action(Stop())


@given(st.text(max_size=80))
def test_parse_is_total_and_only_answers_known_error_forms(text: str) -> None:
    result = parse(text)
    if isinstance(result, ParseError):
        reply = result.reply
        if reply is None:
            assert text.split()[0] == "rc"
        else:
            assert reply in ("error", "out of range") or reply.startswith("unknown command: ")


@given(st.sampled_from(list(Direction)), st.integers(-1000, 1000))
def test_move_distance_range_is_20_to_500(direction: Direction, distance: int) -> None:
    result = parse(f"{direction} {distance}")
    if 20 <= distance <= 500:
        assert result == Move(direction, distance)
    else:
        assert result == ParseError("out of range", result.reason if isinstance(result, ParseError) else "")


@given(st.integers(-600, 600), st.integers(-600, 600), st.integers(-600, 600), st.integers(0, 120))
def test_go_ranges(x: int, y: int, z: int, speed: int) -> None:
    result = parse(f"go {x} {y} {z} {speed}")
    valid = (
        all(-500 <= v <= 500 for v in (x, y, z))
        and not all(-20 <= v <= 20 for v in (x, y, z))
        and 10 <= speed <= 100
    )
    if valid:
        assert result == Go(x, y, z, speed)
    else:
        assert isinstance(result, ParseError)
        assert result.reply == "out of range"
