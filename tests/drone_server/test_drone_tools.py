"""The 15 drone tools as an MCP client sees them: schemas, annotations and every happy path.

Listed in memory and over HTTP in both protocol eras; each tool is then called once on a real
(simulated) flight and its structured content is checked against the output schema the server
published, its freshness stamp read, and its effect confirmed in the simulator's ground truth.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import Tool

from drone_sim import FlightState
from servers.drone.core.commands import SPECS
from tests.drone_server.harness import (
    DESTRUCTIVE,
    IDEMPOTENT,
    NON_IDEMPOTENT,
    READ_ONLY,
    TOOL_NAMES,
    TRANSPORTS,
    Drone,
    Schemas,
    assert_fresh,
    assert_nothing_sent,
    call_ok,
    connect,
    executed,
    json_text,
    mark,
    text_of,
)

pytestmark = pytest.mark.anyio

# The SDK command each tool sends: its retry class (servers.drone.core.commands.SPECS) must be the
# tool's idempotentHint, so a client retrying by the annotations re-sends only what the link would.
COMMAND_OF = {
    "takeoff": "takeoff",
    "land": "land",
    "emergency": "emergency",
    "stop": "stop",
    "move": "forward",
    "rotate": "cw",
    "flip": "flip",
    "go_to": "go",
    "set_speed": "speed",
    "set_led": "EXT led",
    "show_matrix": "EXT mled",
    "get_battery": "battery?",
    "get_sensor": "height?",
}

OUTPUT_MODEL = {
    "get_state": "DroneState",
    "get_battery": "BatteryResult",
    "get_sensor": "SensorResult",
    "capture_photo": "PhotoResult",
    "emergency": "EmergencyResult",
}

SENSORS = (
    "height",
    "tof",
    "temperature",
    "attitude",
    "barometer",
    "acceleration",
    "speed",
    "flight_time",
    "wifi_snr",
    "sdk_version",
    "serial_number",
    "hardware",
)


def _prop(tool: Tool, name: str) -> dict[str, Any]:
    prop: dict[str, Any] = tool.input_schema["properties"][name]
    return prop


def _range(tool: Tool, name: str) -> tuple[float, float]:
    prop = _prop(tool, name)
    if "anyOf" in prop:  # optional: [{number with bounds}, {null}]
        prop = next(p for p in prop["anyOf"] if p.get("type") != "null")
    return prop["minimum"], prop["maximum"]


def _enum(tool: Tool, name: str) -> list[str]:
    prop = _prop(tool, name)
    if "anyOf" in prop:
        prop = next(p for p in prop["anyOf"] if p.get("type") != "null")
    enum: list[str] = prop["enum"]
    return enum


def _check_listing(tools: dict[str, Tool]) -> None:
    assert set(tools) == TOOL_NAMES
    for name, tool in tools.items():
        assert tool.description, name
        assert len(tool.description) > 40, name
        assert tool.title, name
        assert tool.input_schema["type"] == "object", name
        out = tool.output_schema
        assert out is not None, name
        assert out["title"] == OUTPUT_MODEL.get(name, "ActionResult"), name
        # Every result carries freshness, directly or in the state it left the drone in.
        assert "freshness" in out["properties"] or "state" in out["properties"], name
        assert "Freshness" in out["$defs"], name

        ann = tool.annotations
        assert ann is not None, name
        assert ann.read_only_hint is (name in READ_ONLY), name
        assert ann.destructive_hint is (name in DESTRUCTIVE), name
        assert ann.idempotent_hint is (name in READ_ONLY | IDEMPOTENT), name
        assert ann.idempotent_hint is not (name in NON_IDEMPOTENT), name
        if name in COMMAND_OF:
            assert ann.idempotent_hint is SPECS[COMMAND_OF[name]].idempotent, name

    move, rotate, go_to = tools["move"], tools["rotate"], tools["go_to"]
    assert _range(move, "distance_cm") == (20, 500)
    assert _enum(move, "direction") == ["up", "down", "left", "right", "forward", "back"]
    assert move.input_schema["required"] == ["direction", "distance_cm"]
    assert _range(rotate, "degrees") == (1, 360)
    assert _enum(rotate, "direction") == ["clockwise", "counter-clockwise"]
    for axis in ("x", "y", "z"):
        assert _range(go_to, axis) == (-500, 500)
    assert _range(go_to, "speed") == (10, 100)
    assert "m1" in _enum(go_to, "mission_pad")
    assert _enum(tools["flip"], "direction") == ["left", "right", "forward", "back"]
    assert _range(tools["set_speed"], "speed_cm_s") == (10, 100)
    set_led = tools["set_led"]
    assert _prop(set_led, "color")["pattern"] == "^#[0-9a-fA-F]{6}$"
    assert _enum(set_led, "mode") == ["solid", "breathe", "blink"]
    assert _range(set_led, "frequency_hz") == (0.1, 10.0)
    show = tools["show_matrix"]
    assert _enum(show, "mode") == ["pattern", "char", "scroll"]
    assert _enum(show, "color") == ["r", "b", "p"]
    assert _enum(show, "direction") == ["left", "right", "up", "down"]
    assert _range(show, "rate_hz") == (0.1, 2.5)
    assert _enum(tools["get_sensor"], "sensor") == list(SENSORS)
    confirm = _prop(tools["emergency"], "confirm")
    assert (confirm["type"], confirm["default"]) == ("boolean", False)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_list_tools_shows_the_15_tools_with_schemas_and_annotations(transport: str) -> None:
    async with connect(transport) as conn:
        with anyio.fail_after(10):
            listed = await conn.client.list_tools()
        _check_listing({tool.name: tool for tool in listed.tools})
        assert conn.client.protocol_version == ("2025-11-25" if conn.mode == "legacy" else "2026-07-28")


async def _fly_every_tool(client: Client, conn_truth: Any) -> None:
    """One flight calling each of the 15 tools; `conn_truth` is the simulator's GroundTruth."""
    schemas = await Schemas.of(client)
    truth = conn_truth

    state = await call_ok(client, schemas, "get_state")
    assert state["flight"] == "landed"
    assert state["telemetry"]["battery_pct"] > 20
    assert state["position_estimate"] is None
    assert_fresh(state)

    battery = await call_ok(client, schemas, "get_battery")
    assert (battery["source"], battery["age_s"]) == ("live", 0.0)
    assert battery["percent"] == truth.battery_pct
    assert_fresh(battery)

    height = await call_ok(client, schemas, "get_sensor", {"sensor": "height"})
    assert (height["sensor"], height["value"], height["unit"], height["raw"]) == ("height", 0, "cm", "0dm")
    assert_fresh(height)

    speed = await call_ok(client, schemas, "set_speed", {"speed_cm_s": 50})
    assert (speed["command"], speed["reply"]) == ("speed 50", "ok")
    assert speed["state"]["speed_cm_s"] == 50
    assert truth.speed_cm_s == 50

    took_off = await call_ok(client, schemas, "takeoff")
    assert (took_off["command"], took_off["reply"]) == ("takeoff", "ok")
    assert took_off["state"]["flight"] == "flying"
    assert_fresh(took_off)
    assert truth.flying
    start = truth.pose

    moved = await call_ok(client, schemas, "move", {"direction": "forward", "distance_cm": 50})
    assert (moved["command"], moved["reply"]) == ("forward 50", "ok")
    assert moved["state"]["position_estimate"]["x_cm"] == 50
    assert truth.pose.x == pytest.approx(start.x + 50, abs=1)

    turned = await call_ok(client, schemas, "rotate", {"direction": "clockwise", "degrees": 90})
    assert turned["command"] == "cw 90"
    assert turned["state"]["position_estimate"]["heading_deg"] == 90
    assert truth.pose.yaw == pytest.approx(start.yaw + 90, abs=1)

    flipped = await call_ok(client, schemas, "flip", {"direction": "left"})
    assert flipped["command"] == "flip l"
    assert "flip l" in executed(truth)

    before = truth.pose
    went = await call_ok(client, schemas, "go_to", {"x": 50, "y": 0, "z": 30, "speed": 50})
    assert (went["command"], went["reply"]) == ("go 50 0 30 50", "ok")
    assert truth.pose.z == pytest.approx(before.z + 30, abs=1)

    led = await call_ok(client, schemas, "set_led", {"color": "#ff8800"})
    assert (led["command"], led["reply"]) == ("EXT led 255 136 0", "led ok")
    breathe = await call_ok(
        client, schemas, "set_led", {"color": "#00ff00", "mode": "breathe", "frequency_hz": 1}
    )
    assert breathe["command"] == "EXT led br 1 0 255 0"
    blink = await call_ok(
        client,
        schemas,
        "set_led",
        {"color": "#ff0000", "mode": "blink", "frequency_hz": 2.5, "second_color": "#0000ff"},
    )
    assert blink["command"] == "EXT led bl 2.5 255 0 0 0 0 255"
    assert truth.led is not None
    assert truth.led.colors == ((255, 0, 0), (0, 0, 255))

    pattern = "rbp0" * 16
    shown = await call_ok(client, schemas, "show_matrix", {"mode": "pattern", "pattern": pattern})
    assert (shown["command"], shown["reply"]) == (f"EXT mled g {pattern}", "matrix ok")
    char = await call_ok(client, schemas, "show_matrix", {"mode": "char", "text": "heart", "color": "p"})
    assert char["command"] == "EXT mled s p heart"
    scroll = await call_ok(
        client, schemas, "show_matrix", {"mode": "scroll", "text": "hello drone", "direction": "up"}
    )
    assert scroll["command"] == "EXT mled u r 1 hello drone"
    assert truth.matrix is not None

    photo = await call_ok(client, schemas, "capture_photo")
    assert (photo["width"], photo["height"]) == (480, 360)
    assert photo["jpeg_bytes"] > 1000
    assert_fresh(photo)

    stopped = await call_ok(client, schemas, "stop")
    assert (stopped["command"], stopped["reply"]) == ("stop", "ok")
    assert truth.flying

    landed = await call_ok(client, schemas, "land")
    assert (landed["command"], landed["reply"]) == ("land", "ok")
    assert landed["state"]["flight"] == "landed"
    assert landed["state"]["position_estimate"] is None
    assert truth.flight_state is FlightState.LANDED

    # On the ground emergency is harmless; confirm=true is still required.
    killed = await call_ok(client, schemas, "emergency", {"confirm": True})
    assert killed["command"] == "emergency"
    assert "emergency" in executed(truth)
    assert_fresh(killed)


@pytest.mark.parametrize("transport", ["memory-2026-07-28", "http-legacy", "http-2026-07-28"])
async def test_every_tool_happy_path(transport: str) -> None:
    async with connect(transport) as conn:
        with anyio.fail_after(30):
            await _fly_every_tool(conn.client, conn.truth)


async def test_text_content_mirrors_structured_content(drone: Drone) -> None:
    async with Client(drone.server, mode="legacy") as client:
        with anyio.fail_after(10):
            for name, arguments in (
                ("get_state", {}),
                ("get_battery", {}),
                ("set_speed", {"speed_cm_s": 30}),
            ):
                result = await client.call_tool(name, arguments)
                assert not result.is_error
                assert json_text(result) == result.structured_content


async def test_every_sensor_reads_live(drone: Drone) -> None:
    async with Client(drone.server) as client:
        schemas = await Schemas.of(client)
        with anyio.fail_after(15):
            readings = {s: await call_ok(client, schemas, "get_sensor", {"sensor": s}) for s in SENSORS}
    sent = executed(drone.truth)
    for sensor, reading in readings.items():
        assert reading["sensor"] == sensor
        assert reading["raw"], sensor
        assert reading["latency_ms"] >= 0
        assert_fresh(reading)
    assert {"height?", "tof?", "temp?", "attitude?", "baro?", "acceleration?", "speed?"} <= set(sent)
    assert {"time?", "wifi?", "sdk?", "sn?", "hardware?"} <= set(sent)
    assert set(readings["temperature"]["value"]) == {"low", "high"}
    assert set(readings["attitude"]["value"]) == {"pitch", "roll", "yaw"}
    assert set(readings["acceleration"]["value"]) == {"x", "y", "z"}
    assert readings["hardware"]["value"] == "RMTT"
    assert readings["flight_time"]["value"] == 0


async def test_unknown_tool_is_an_error_result(drone: Drone) -> None:
    async with Client(drone.server) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("self_destruct", {})
            assert result.is_error
            state = await client.call_tool("get_state", {})
            assert not state.is_error


async def test_land_is_safe_to_repeat(drone: Drone) -> None:
    async with Client(drone.server) as client:
        schemas = await Schemas.of(client)
        with anyio.fail_after(15):
            await call_ok(client, schemas, "takeoff")
            await call_ok(client, schemas, "land")
            assert drone.truth.flight_state is FlightState.LANDED
            again = await client.call_tool("land", {})
        assert not again.is_error, text_of(again)
        assert schemas.check("land", again)["state"]["flight"] == "landed"
        assert drone.truth.flight_state is FlightState.LANDED


async def test_land_on_the_ground_says_so_and_sends_nothing(drone: Drone) -> None:
    async with Client(drone.server) as client:
        schemas = await Schemas.of(client)
        before = mark(drone.truth)
        with anyio.fail_after(15):
            landed = await call_ok(client, schemas, "land")
    assert landed["sent"] is False
    assert "already on the ground" in landed["note"]
    assert_nothing_sent(drone.truth, before)


async def test_second_takeoff_is_refused_from_the_known_flight_state(drone: Drone) -> None:
    async with Client(drone.server) as client:
        schemas = await Schemas.of(client)
        with anyio.fail_after(30):
            await call_ok(client, schemas, "takeoff")
            before = mark(drone.truth)
            again = await client.call_tool("takeoff", {})
    assert again.is_error
    assert "already flying" in text_of(again)
    assert "Nothing was sent" in text_of(again)
    assert_nothing_sent(drone.truth, before)
    assert drone.truth.executed_texts().count("takeoff") == 1


async def test_bad_argument_reads_as_one_sentence(drone: Drone) -> None:
    async with Client(drone.server) as client:
        with anyio.fail_after(15):
            result = await client.call_tool("move", {"direction": "up", "distance_cm": 600})
    assert result.is_error
    assert text_of(result) == "distance_cm must be between 20 and 500 (got 600); nothing was sent"
