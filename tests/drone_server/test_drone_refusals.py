"""What the server refuses, and proof from the simulator that nothing reached the drone for it.

Range violations are caught by the tools' schemas or by the command builders; either way the
model gets an `isError` result naming the argument and what is allowed, the drone receives
nothing (ground truth), and the server keeps serving. Above that sit the operator's safety
envelope (height, distance, takeoff battery) and the confirmation step of `emergency`.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import structlog
from mcp import Client
from mcp.client import ClientRequestContext
from mcp_types import ElicitRequestParams, ElicitResult, ErrorData

from drone_sim import FlightState
from tests.drone_server.harness import (
    ERAS,
    TRANSPORTS,
    Drone,
    Schemas,
    assert_nothing_sent,
    call_ok,
    connect,
    drone_settings,
    executed,
    flying,
    mark,
    sent_since,
    text_of,
)

pytestmark = pytest.mark.anyio

# (tool, arguments, the argument named in the error, how the allowed range is worded)
RANGE_VIOLATIONS: list[tuple[str, dict[str, Any], str, str]] = [
    ("move", {"direction": "up", "distance_cm": 19}, "distance_cm", "between 20 and 500 (got 19)"),
    ("move", {"direction": "forward", "distance_cm": 501}, "distance_cm", "between 20 and 500 (got 501)"),
    ("move", {"direction": "sideways", "distance_cm": 50}, "direction", "'forward'"),
    ("rotate", {"direction": "clockwise", "degrees": 0}, "degrees", "between 1 and 360 (got 0)"),
    ("rotate", {"direction": "clockwise", "degrees": 361}, "degrees", "between 1 and 360 (got 361)"),
    ("rotate", {"direction": "left", "degrees": 90}, "direction", "'counter-clockwise'"),
    ("go_to", {"x": 501, "y": 0, "z": 0, "speed": 50}, "x", "between -500 and 500 (got 501)"),
    ("go_to", {"x": -501, "y": 0, "z": 0, "speed": 50}, "x", "between -500 and 500 (got -501)"),
    ("go_to", {"x": 0, "y": 501, "z": 0, "speed": 50}, "y", "between -500 and 500 (got 501)"),
    ("go_to", {"x": 0, "y": -501, "z": 0, "speed": 50}, "y", "between -500 and 500 (got -501)"),
    ("go_to", {"x": 0, "y": 0, "z": 501, "speed": 50}, "z", "between -500 and 500 (got 501)"),
    ("go_to", {"x": 0, "y": 0, "z": -501, "speed": 50}, "z", "between -500 and 500 (got -501)"),
    ("go_to", {"x": 20, "y": -20, "z": 0, "speed": 50}, "x,y,z", "outside -20..20 cm"),
    ("go_to", {"x": -20, "y": 20, "z": 20, "speed": 50}, "x,y,z", "outside -20..20 cm"),
    ("go_to", {"x": 100, "y": 0, "z": 0, "speed": 9}, "speed", "between 10 and 100 (got 9)"),
    ("go_to", {"x": 100, "y": 0, "z": 0, "speed": 101}, "speed", "between 10 and 100 (got 101)"),
    ("go_to", {"x": 100, "y": 0, "z": 0, "speed": 50, "mission_pad": "m9"}, "mission_pad", "'m8'"),
    ("set_speed", {"speed_cm_s": 9}, "speed_cm_s", "between 10 and 100 (got 9)"),
    ("set_speed", {"speed_cm_s": 101}, "speed_cm_s", "between 10 and 100 (got 101)"),
    ("set_led", {"color": "red"}, "color", "^#[0-9a-fA-F]{6}$"),
    ("set_led", {"color": "#ff88"}, "color", "^#[0-9a-fA-F]{6}$"),
    ("set_led", {"color": "#ff8800", "mode": "breathe", "frequency_hz": 2.6}, "frequency_hz", "0.1..2.5 Hz"),
    (
        "set_led",
        {"color": "#ff8800", "mode": "blink", "frequency_hz": 10.5},
        "frequency_hz",
        "between 0.1 and 10.0 (got 10.5)",
    ),
    (
        "set_led",
        {"color": "#ff8800", "mode": "blink", "frequency_hz": 0.05},
        "frequency_hz",
        "between 0.1 and 10.0 (got 0.05)",
    ),
    ("set_led", {"color": "#ff8800", "mode": "blink"}, "second_color", "required when mode is blink"),
    (
        "set_led",
        {"color": "#ff8800", "mode": "blink", "second_color": "blue"},
        "second_color",
        "^#[0-9a-fA-F]{6}$",
    ),
    ("set_led", {"color": "#ff8800", "mode": "strobe"}, "mode", "'blink'"),
    ("show_matrix", {"mode": "pattern", "pattern": "r" * 63}, "pattern", "^[rbp0]{64}$"),
    ("show_matrix", {"mode": "pattern", "pattern": "x" * 64}, "pattern", "^[rbp0]{64}$"),
    ("show_matrix", {"mode": "pattern"}, "pattern", "required in pattern mode"),
    ("show_matrix", {"mode": "scroll", "text": "a" * 71}, "text", "at most 70 characters"),
    ("show_matrix", {"mode": "scroll", "text": "caf\u00e9"}, "text", "1..70 printable ASCII characters"),
    ("show_matrix", {"mode": "scroll"}, "text", "required in scroll mode"),
    ("show_matrix", {"mode": "char"}, "text", "required in char mode"),
    ("show_matrix", {"mode": "char", "text": "ab"}, "text", "one printable ASCII character, or 'heart'"),
    (
        "show_matrix",
        {"mode": "scroll", "text": "hi", "rate_hz": 2.6},
        "rate_hz",
        "between 0.1 and 2.5 (got 2.6)",
    ),
    ("show_matrix", {"mode": "scroll", "text": "hi", "color": "g"}, "color", "'p'"),
    ("show_matrix", {}, "mode", "mode is required"),
    ("get_sensor", {"sensor": "humidity"}, "sensor", "'wifi_snr'"),
    ("get_sensor", {}, "sensor", "sensor is required"),
    ("flip", {"direction": "up"}, "direction", "'forward'"),
]


def _case_id(case: tuple[str, dict[str, Any], str, str]) -> str:
    tool, arguments, _, _ = case
    return f"{tool}-" + "-".join(f"{k}={str(v)[:8]}" for k, v in arguments.items())


@pytest.mark.parametrize("case", RANGE_VIOLATIONS, ids=[_case_id(c) for c in RANGE_VIOLATIONS])
async def test_range_violation_is_refused_and_nothing_is_sent(
    airborne: Drone, case: tuple[str, dict[str, Any], str, str]
) -> None:
    tool, arguments, field, allowed = case
    truth = airborne.truth
    async with Client(airborne.server) as client:
        with anyio.fail_after(10):
            before = mark(truth)
            result = await client.call_tool(tool, arguments)
            assert result.is_error
            assert result.structured_content is None
            text = text_of(result)
            assert field in text
            assert allowed in text
            assert_nothing_sent(truth, before)

            still = await client.call_tool("get_state", {})
    assert not still.is_error
    assert still.structured_content is not None
    assert still.structured_content["flight"] == "flying"
    assert truth.flying


@pytest.mark.parametrize("mode", ERAS)
async def test_range_violations_over_http_in_both_eras(mode: str) -> None:
    """The same refusals through streamable HTTP, one session per era, all cases in a row."""
    async with connect(f"http-{mode}") as conn:
        with anyio.fail_after(30):
            before = mark(conn.truth)
            for tool, arguments, field, allowed in RANGE_VIOLATIONS:
                result = await conn.client.call_tool(tool, arguments)
                assert result.is_error, (tool, arguments)
                assert field in text_of(result), (tool, arguments)
                assert allowed in text_of(result), (tool, arguments)
            assert_nothing_sent(conn.truth, before)
            state = await conn.client.call_tool("get_state", {})
    assert not state.is_error


async def test_blink_second_colour_is_validated_like_the_first(airborne: Drone) -> None:
    truth = airborne.truth
    async with Client(airborne.server) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "set_led")
        before = mark(truth)
        with anyio.fail_after(10):
            result = await client.call_tool(
                "set_led", {"color": "#ff8800", "mode": "blink", "second_color": "#fff"}
            )
    sent = sent_since(truth, before)
    assert result.is_error, f"accepted, and the drone received {sent}"
    assert "second_color" in text_of(result)
    assert_nothing_sent(truth, before)
    second = tool.input_schema["properties"]["second_color"]["anyOf"][0]
    assert second["pattern"] == "^#[0-9a-fA-F]{6}$"


async def test_matrix_char_error_names_the_text_argument(airborne: Drone) -> None:
    async with Client(airborne.server) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("show_matrix", {"mode": "char", "text": "ab"})
    assert result.is_error
    assert "text=" in text_of(result) or "text:" in text_of(result), text_of(result)


# ---- the confirmation step of emergency ----

REFUSED = "emergency NOT sent"


async def _takeoff(client: Client) -> None:
    result = await client.call_tool("takeoff", {})
    assert not result.is_error, text_of(result)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_emergency_needs_confirm(transport: str) -> None:
    async with connect(transport) as conn:
        truth = conn.truth
        schemas = await Schemas.of(conn.client)
        with anyio.fail_after(20):
            await _takeoff(conn.client)
            before = mark(truth)
            refused = await conn.client.call_tool("emergency", {})
            assert refused.is_error
            assert REFUSED in text_of(refused)
            assert "confirm=true" in text_of(refused)
            assert_nothing_sent(truth, before)
            assert truth.flying
            assert (await conn.client.call_tool("get_state", {})).structured_content is not None

            explicit_false = await conn.client.call_tool("emergency", {"confirm": False})
            assert explicit_false.is_error
            assert_nothing_sent(truth, before)

            killed = await call_ok(conn.client, schemas, "emergency", {"confirm": True})
        assert killed["command"] == "emergency"
        assert killed["state"]["flight"] == "landed"
        assert not truth.flying
        assert truth.flight_state is FlightState.FALLEN
        assert "emergency" in executed(truth)


class Answer:
    """An elicitation callback that records the question and answers with `action`."""

    def __init__(self, action: str, confirm: bool = True) -> None:
        self.action = action
        self.confirm = confirm
        self.asked: list[str] = []

    async def __call__(
        self, context: ClientRequestContext, params: ElicitRequestParams
    ) -> ElicitResult | ErrorData:
        self.asked.append(params.message)
        if self.action == "accept":
            return ElicitResult(action="accept", content={"confirm": self.confirm})
        return ElicitResult(action="decline" if self.action == "decline" else "cancel")


@pytest.mark.parametrize(
    ("transport", "action", "confirm", "sent"),
    [
        ("memory-legacy", "accept", True, True),
        ("memory-legacy", "accept", False, False),
        ("memory-legacy", "decline", True, False),
        ("http-legacy", "accept", True, True),  # stateful HTTP: the server can ask back
        # The stateless era asks through an input_required round trip instead.
        ("memory-2026-07-28", "accept", True, True),
        ("memory-2026-07-28", "decline", True, False),
        ("http-2026-07-28", "accept", True, True),
        ("http-2026-07-28", "accept", False, False),
    ],
)
async def test_emergency_asks_a_client_that_can_elicit(
    transport: str, action: str, confirm: bool, sent: bool
) -> None:
    answer = Answer(action, confirm)
    async with connect(transport, elicitation_callback=answer) as conn:
        truth = conn.truth
        with anyio.fail_after(20):
            await _takeoff(conn.client)
            before = mark(truth)
            result = await conn.client.call_tool("emergency", {})
        assert len(answer.asked) == 1
        assert "EMERGENCY" in answer.asked[0]
        if sent:
            assert not result.is_error, text_of(result)
            assert "emergency" in sent_since(truth, before)
            assert not truth.flying
        else:
            assert result.is_error
            assert REFUSED in text_of(result)
            assert_nothing_sent(truth, before)
            assert truth.flying


@pytest.mark.parametrize("transport", ["memory-legacy", "memory-2026-07-28", "http-2026-07-28"])
async def test_confirm_true_does_not_skip_a_client_that_can_ask(transport: str) -> None:
    """One rule: where the client can elicit, its user is asked and decides; an agent's
    `confirm: true` is not a way around them (a declined question sends nothing)."""
    answer = Answer("decline")
    async with connect(transport, elicitation_callback=answer) as conn:
        truth = conn.truth
        with anyio.fail_after(20):
            await _takeoff(conn.client)
            before = mark(truth)
            result = await conn.client.call_tool("emergency", {"confirm": True})
        assert len(answer.asked) == 1
        assert result.is_error
        assert REFUSED in text_of(result)
        assert_nothing_sent(truth, before)
        assert truth.flying


# ---- the safety envelope ----


async def test_takeoff_refused_on_low_battery(drone: Drone) -> None:
    drone.sim.set_battery(15)
    truth = drone.truth
    async with Client(drone.server) as client:
        with anyio.fail_after(10):
            before = mark(truth)
            refused = await client.call_tool("takeoff", {})
            state = await client.call_tool("get_state", {})
    assert refused.is_error
    text = text_of(refused)
    assert "battery 15%" in text
    assert "min_takeoff_battery=20%" in text
    assert "Nothing was sent" in text
    # Only the live battery read went out.
    assert [t for t in sent_since(truth, before) if t != "command"] == ["battery?"]
    assert "takeoff" not in executed(truth)
    assert not truth.flying
    assert state.structured_content is not None
    assert state.structured_content["flight"] == "landed"


@pytest.mark.virtual_time
async def test_takeoff_minimum_comes_from_the_settings() -> None:
    async with flying(drone_settings(min_takeoff_battery=60, critical_battery=30)) as drone:
        drone.sim.set_battery(55)
        async with Client(drone.server) as client:
            with anyio.fail_after(10):
                refused = await client.call_tool("takeoff", {})
        assert refused.is_error
        assert "min_takeoff_battery=60%" in text_of(refused)
        assert "takeoff" not in executed(drone.truth)


async def test_move_above_max_height_is_refused_before_sending(drone: Drone) -> None:
    truth = drone.truth
    async with Client(drone.server) as client:
        with anyio.fail_after(15):
            await _takeoff(client)
            height = truth.pose.z
            before = mark(truth)
            refused = await client.call_tool("move", {"direction": "up", "distance_cm": 250})
            assert refused.is_error
            assert "max_height_cm=300" in text_of(refused)
            assert "Nothing was sent" in text_of(refused)
            assert_nothing_sent(truth, before)
            assert truth.pose.z == pytest.approx(height, abs=1)

            went = await client.call_tool("go_to", {"x": 0, "y": 0, "z": 250, "speed": 50})
            assert went.is_error
            assert "max_height_cm=300" in text_of(went)

            below = await client.call_tool("move", {"direction": "down", "distance_cm": 200})
            assert below.is_error
            assert "would hit the ground" in text_of(below)
            assert_nothing_sent(truth, before)

            within = await client.call_tool("move", {"direction": "up", "distance_cm": 100})
            assert not within.is_error, text_of(within)
    assert truth.pose.z == pytest.approx(height + 100, abs=2)


@pytest.mark.virtual_time
async def test_moves_beyond_max_distance_are_refused_before_sending() -> None:
    async with flying(drone_settings(max_distance_cm=200)) as drone:
        truth = drone.truth
        async with Client(drone.server) as client:
            with anyio.fail_after(20):
                await _takeoff(client)
                ok = await client.call_tool("move", {"direction": "forward", "distance_cm": 150})
                assert not ok.is_error, text_of(ok)
                before = mark(truth)
                x = truth.pose.x

                too_far = await client.call_tool("move", {"direction": "forward", "distance_cm": 60})
                assert too_far.is_error
                assert "max_distance_cm=200" in text_of(too_far)
                assert "210 cm" in text_of(too_far)

                sideways = await client.call_tool("go_to", {"x": 0, "y": 150, "z": 0, "speed": 50})
                assert sideways.is_error
                assert "max_distance_cm=200" in text_of(sideways)
                assert_nothing_sent(truth, before)
                assert truth.pose.x == pytest.approx(x, abs=1)

                # Back towards the takeoff point is always allowed.
                back = await client.call_tool("move", {"direction": "back", "distance_cm": 100})
                assert not back.is_error, text_of(back)


async def test_flight_actions_on_the_ground_are_refused(drone: Drone) -> None:
    truth = drone.truth
    async with Client(drone.server) as client:
        with anyio.fail_after(10):
            before = mark(truth)
            for tool, arguments in (
                ("move", {"direction": "up", "distance_cm": 50}),
                ("rotate", {"direction": "clockwise", "degrees": 90}),
                ("flip", {"direction": "left"}),
                ("go_to", {"x": 50, "y": 0, "z": 0, "speed": 50}),
            ):
                result = await client.call_tool(tool, arguments)
                assert result.is_error, tool
                assert "not flying" in text_of(result), tool
            assert_nothing_sent(truth, before)


@pytest.mark.virtual_time
async def test_the_elicitation_answer_never_reaches_a_log_line() -> None:
    answer = Answer("accept", True)
    async with connect("memory-legacy", elicitation_callback=answer) as conn:
        with anyio.fail_after(20):
            await _takeoff(conn.client)
            with structlog.testing.capture_logs() as logs:
                result = await conn.client.call_tool("emergency", {})
    assert not result.is_error, text_of(result)
    [call] = [entry for entry in logs if entry["event"] == "tool_call" and entry["tool"] == "emergency"]
    assert call["outcome"] == "ok"
    # The model's own argument is logged; the human's answer only by its type.
    assert call["arguments"]["confirm"] is False
    answer_logged = call["arguments"]["answer"]
    assert answer_logged == f"<{answer_logged.strip('<>')}>", call
    assert "True" not in answer_logged, call
