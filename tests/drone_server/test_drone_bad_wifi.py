"""Issue 9 as a model sees it: what the drone tools say when WiFi loses a datagram.

Each test loses exactly one datagram (the simulator's one-shot `lose_command`/`lose_reply`
faults), so what the tool result claims can be checked against ground truth exactly.
"""

from __future__ import annotations

import json

import anyio
from mcp import Client

from drone_sim import FlightState, Outcome
from servers.drone.core.verdict import REACTION_S
from tests.drone_server.harness import Drone, Schemas, call_ok, mark, sent_since, text_of


async def test_a_lost_move_fails_fast_as_did_not_start(airborne: Drone) -> None:
    async with Client(airborne.server) as client:
        with anyio.fail_after(60):
            airborne.sim.faults.lose_command = "forward 200"
            asked = airborne.now()
            lost = await client.call_tool("move", {"direction": "forward", "distance_cm": 200})
            answered = airborne.now()
            log = await client.read_resource("drone://flight-log")
    assert lost.is_error
    text = text_of(lost)
    assert "Verdict: did not start" in text
    assert "safe to send it again" in text
    # A 200 cm move waits ~10 s for its `ok`; with state flowing and no motion it gives up at
    # the drone's reaction bound instead.
    assert REACTION_S <= answered - asked < REACTION_S + 0.5
    assert [r.outcome for r in airborne.truth.executed if r.text == "forward 200"] == []
    assert not any(r.data == b"forward 200" and not r.dropped for r in airborne.truth.received)
    entries = json.loads(log.contents[0].text)  # pyright: ignore[reportAttributeAccessIssue]
    last = next(e for e in reversed(entries) if e["command"] == "forward 200")
    assert (last["outcome"], last["verdict"]) == ("outcome_unknown", "did_not_start")
    assert "no motion" in last["evidence"]


async def test_a_move_whose_ok_is_lost_is_executed_and_not_resent(airborne: Drone) -> None:
    async with Client(airborne.server) as client:
        with anyio.fail_after(60):
            airborne.sim.faults.lose_reply = "up 40"
            before = mark(airborne.truth)
            result = await client.call_tool("move", {"direction": "up", "distance_cm": 40})
    assert result.is_error
    assert "Verdict: executed" in text_of(result)
    assert "do not send it again" in text_of(result)
    assert sent_since(airborne.truth, before).count("up 40") == 1
    assert [r.outcome for r in airborne.truth.executed if r.text == "up 40"] == [Outcome.DONE]


async def test_a_landing_whose_ok_is_lost_succeeds_from_the_state_stream(airborne: Drone) -> None:
    async with Client(airborne.server) as client:
        schemas = await Schemas.of(client)
        with anyio.fail_after(60):
            airborne.sim.faults.lose_reply = "land"
            landed = await call_ok(client, schemas, "land")
    assert landed["sent"] is True
    assert landed["note"] is not None
    assert landed["note"].startswith("already landed: state shows the drone on the ground")
    assert landed["state"]["flight"] == "landed"
    assert airborne.truth.flight_state in (FlightState.LANDED, FlightState.LANDING)
    assert airborne.truth.executed_texts().count("land") >= 1


async def test_the_battery_is_live_during_a_long_move(airborne: Drone) -> None:
    async with Client(airborne.server) as client:
        schemas = await Schemas.of(client)
        with anyio.fail_after(60):
            await call_ok(client, schemas, "set_speed", {"speed_cm_s": 20})
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "move", {"direction": "forward", "distance_cm": 200})
                await airborne.sim.wait_for(lambda truth: truth.flight_state is FlightState.MOVING, 10.0)
                battery = await call_ok(client, schemas, "get_battery")
                assert airborne.truth.flight_state is FlightState.MOVING  # answered mid-move
                assert abs(battery["percent"] - airborne.truth.battery_pct) <= 1
                assert battery["source"] == "live"


async def test_a_takeoff_whose_ok_is_lost_leaves_a_known_position(drone: Drone) -> None:
    """An "executed" verdict means the drone is where the action leaves it: the next move is checked
    against a known position, not refused for an estimate made useless ("± max distance")."""
    async with Client(drone.server) as client:
        schemas = await Schemas.of(client)
        with anyio.fail_after(60):
            drone.sim.faults.lose_reply = "takeoff"
            took_off = await client.call_tool("takeoff", {})
            assert took_off.is_error
            assert "Verdict: executed" in text_of(took_off)
            state = await call_ok(client, schemas, "get_state")
            moved = await call_ok(client, schemas, "move", {"direction": "forward", "distance_cm": 100})
    estimate = state["position_estimate"]
    assert estimate is not None
    assert estimate["uncertainty_cm"] == 0
    assert moved["state"]["position_estimate"]["uncertainty_cm"] == 0
    assert moved["state"]["position_estimate"]["x_cm"] == 100


async def test_a_move_that_did_not_start_leaves_the_position_as_it_was(airborne: Drone) -> None:
    async with Client(airborne.server) as client:
        schemas = await Schemas.of(client)
        with anyio.fail_after(60):
            airborne.sim.faults.lose_command = "forward 200"
            lost = await client.call_tool("move", {"direction": "forward", "distance_cm": 200})
            assert "Verdict: did not start" in text_of(lost)
            state = await call_ok(client, schemas, "get_state")
    assert state["position_estimate"]["x_cm"] == 0
    assert state["position_estimate"]["uncertainty_cm"] == 0


async def test_takeoff_uses_fresh_state_when_every_battery_reply_is_lost(drone: Drone) -> None:
    async with Client(drone.server) as client:
        with anyio.fail_after(60):
            drone.sim.faults.loss = 1.0  # every command and reply; the state stream still flows
            result = await client.call_tool("takeoff", {})
    text = text_of(result)
    assert "could not read the battery" not in text
    # It went out (and was lost): the state stream then showed it never started.
    assert "Verdict: did not start" in text
    assert any(r.data == b"takeoff" for r in drone.truth.received)
