"""The protocol core and the simulator were written independently; here each checks the other.

Every command the core can encode must parse in `drone_sim` to the same parameters, every
reply the simulator sends must parse in the core as the form the core's table expects, and
every state packet the simulator streams must parse in the core to the simulator's truth.
"""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from drone_sim import commands as sim
from drone_sim.drone import Drone, Reply
from servers.drone.core import commands as core
from servers.drone.core.replies import is_error, parse_reply
from servers.drone.core.telemetry import parse_state

SENDER = ("127.0.0.1", 50000)


def sim_parse(command: core.Command) -> sim.Command:
    parsed = sim.parse(command.text)
    assert not isinstance(parsed, sim.ParseError), (command.text, parsed)
    return parsed


distances = st.integers(core.MOVE_MIN_CM, core.MOVE_MAX_CM)
coords = st.integers(core.COORD_MIN, core.COORD_MAX)
bytes_ = st.integers(0, 255)


@given(st.sampled_from(core.DIRECTIONS), distances)
def test_moves_round_trip(direction: str, distance: int) -> None:
    parsed = sim_parse(core.move(direction, distance))
    assert isinstance(parsed, sim.Move)
    assert (parsed.direction.value, parsed.distance_cm) == (direction, distance)


@given(st.sampled_from(["cw", "ccw"]), st.integers(1, 360))
def test_rotations_round_trip(direction: str, degrees: int) -> None:
    parsed = sim_parse(core.rotate(direction, degrees))
    assert isinstance(parsed, sim.Rotate)
    assert parsed.degrees == (degrees if direction == "cw" else -degrees)  # the sim signs by direction


@given(st.sampled_from(["left", "right", "forward", "back", "l", "r", "f", "b"]))
def test_flips_round_trip(direction: str) -> None:
    parsed = sim_parse(core.flip(direction))
    assert isinstance(parsed, sim.Flip)
    assert parsed.direction.value == direction[0]


@given(coords, coords, coords, st.integers(10, 100))
def test_go_round_trips(x: int, y: int, z: int, speed: int) -> None:
    assume(not all(-20 <= v <= 20 for v in (x, y, z)))  # the core refuses the dead zone
    parsed = sim_parse(core.go(x, y, z, speed))
    assert isinstance(parsed, sim.Go)
    assert (parsed.x, parsed.y, parsed.z, parsed.speed, parsed.pad) == (x, y, z, speed, None)


@given(coords, coords, coords, coords, coords, coords, st.integers(10, 60))
def test_curves_the_core_accepts_parse_in_the_sim(
    x1: int, y1: int, z1: int, x2: int, y2: int, z2: int, speed: int
) -> None:
    try:
        command = core.curve(x1, y1, z1, x2, y2, z2, speed)
    except core.OutOfRange:
        assume(False)  # radius outside 0.5..10 m: never sent
        raise
    parsed = sim_parse(command)
    assert isinstance(parsed, sim.Curve)
    assert (parsed.x1, parsed.y1, parsed.z1, parsed.x2, parsed.y2, parsed.z2, parsed.speed) == (
        x1,
        y1,
        z1,
        x2,
        y2,
        z2,
        speed,
    )


@given(st.integers(10, 100))
def test_speed_round_trips(speed: int) -> None:
    parsed = sim_parse(core.set_speed(speed))
    assert isinstance(parsed, sim.SetSpeed)
    assert parsed.speed_cm_s == speed


@given(st.integers(-100, 100), st.integers(-100, 100), st.integers(-100, 100), st.integers(-100, 100))
def test_rc_round_trips(a: int, b: int, c: int, d: int) -> None:
    parsed = sim_parse(core.rc(a, b, c, d))
    assert isinstance(parsed, sim.Rc)
    assert (parsed.left_right, parsed.forward_back, parsed.up_down, parsed.yaw) == (a, b, c, d)


@given(bytes_, bytes_, bytes_)
def test_led_solid_round_trips(r: int, g: int, b: int) -> None:
    parsed = sim_parse(core.led_solid(r, g, b))
    assert isinstance(parsed, sim.Led)
    assert parsed.colors == ((r, g, b),)


@given(st.integers(1, 25).map(lambda t: t / 10), bytes_, bytes_, bytes_)
def test_led_breathe_round_trips(hz: float, r: int, g: int, b: int) -> None:
    parsed = sim_parse(core.led_breathe(hz, r, g, b))
    assert isinstance(parsed, sim.Led)
    assert parsed.colors == ((r, g, b),)
    assert parsed.hz == hz


@given(
    st.integers(1, 100).map(lambda t: t / 10),
    st.tuples(bytes_, bytes_, bytes_),
    st.tuples(bytes_, bytes_, bytes_),
)
def test_led_blink_round_trips(hz: float, first: tuple[int, int, int], second: tuple[int, int, int]) -> None:
    parsed = sim_parse(core.led_blink(hz, first, second))
    assert isinstance(parsed, sim.Led)
    assert parsed.colors == (first, second)
    assert parsed.hz == hz


@given(st.text(st.sampled_from("rbp0"), min_size=64, max_size=64))
def test_matrix_pattern_round_trips(pattern: str) -> None:
    parsed = sim_parse(core.matrix_pattern(pattern))
    assert isinstance(parsed, sim.MatrixPattern)
    assert parsed.pattern == pattern


@given(
    st.sampled_from(["l", "r", "u", "d"]),
    st.sampled_from(["r", "b", "p"]),
    st.integers(1, 25).map(lambda t: t / 10),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=70),
)
def test_matrix_scroll_round_trips(direction: str, colour: str, rate: float, text: str) -> None:
    parsed = sim_parse(core.matrix_scroll(direction, colour, rate, text))
    assert isinstance(parsed, sim.MatrixScroll)
    assert (parsed.direction.value, parsed.color.value, parsed.rate_hz, parsed.text) == (
        direction,
        colour,
        rate,
        text,
    )


@given(
    st.sampled_from(["r", "b", "p"]), st.characters(min_codepoint=33, max_codepoint=126) | st.just("heart")
)
def test_matrix_char_round_trips(colour: str, char: str) -> None:
    parsed = sim_parse(core.matrix_char(colour, char))
    assert isinstance(parsed, sim.MatrixChar)
    assert (parsed.color.value, parsed.char) == (colour, char)


def test_every_simple_command_and_query_parses_in_the_sim() -> None:
    for verb in sorted(core.SIMPLE_COMMANDS):
        sim_parse(core.simple(verb))
    for verb in sorted(core.QUERIES):
        parsed = sim_parse(core.query(verb))
        assert isinstance(parsed, sim.Read)


def _replies(drone: Drone, text: str, now: float) -> list[str]:
    return [o.text for o in drone.handle(text, SENDER, now).outputs if isinstance(o, Reply)]


def _fly(drone: Drone) -> float:
    """Enter SDK mode and take off; returns a time at which the drone hovers."""
    assert _replies(drone, "command", 0.0) == ["ok"]
    assert _replies(drone, "takeoff", 0.1) == []  # answered when the climb is done
    hovering = 12.0
    assert drone.pose_at(hovering).z > 0
    return hovering


def test_every_reply_the_sim_sends_to_a_read_parses_as_the_core_expects() -> None:
    for flying in (False, True):
        drone = Drone()
        now = _fly(drone) if flying else 0.0
        if not flying:
            assert _replies(drone, "command", now) == ["ok"]
        drone.advance(now)  # flush the takeoff's own answer
        for verb in sorted(core.QUERIES):
            [reply] = _replies(drone, verb, now)
            kind = core.SPECS[verb].reply
            parse_reply(kind, reply)  # raises ProtocolError if the forms disagree


def test_state_packets_parse_to_the_sims_truth() -> None:
    drone = Drone()
    now = _fly(drone)
    packet = drone.state_packet(now)
    assert packet is not None
    state = parse_state(packet)
    assert abs(state.battery_pct - drone.battery_pct) <= 1
    assert abs(state.height_cm - drone.pose_at(now).z) <= 10  # the drone reports h in 10 cm steps


def test_action_replies_are_ok_or_an_error_the_core_classifies() -> None:
    drone = Drone()
    _replies(drone, "command", 0.0)
    for command in (core.move("up", 50), core.rotate("cw", 90), core.flip("l"), core.simple("land")):
        [reply] = _replies(drone, command.text, 1.0)
        assert is_error(reply), reply  # on the ground every one of them is refused
    [reply] = _replies(drone, core.led_solid(1, 2, 3).text, 1.0)
    assert parse_reply(core.ReplyKind.LED_OK, reply) is True
    [reply] = _replies(drone, core.matrix_char("r", "A").text, 1.0)
    assert parse_reply(core.ReplyKind.MATRIX_OK, reply) is True
