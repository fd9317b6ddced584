"""The operator's hold on virtual time, through real MCP clients: every new flight action from
every agent and mode is refused naming the hold with nothing sent; land, stop, emergency and
reads still work; the hold survives a reconnect and lands in the flight log."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from tests.drone_server.harness import (
    Drone,
    executed,
    flying,
    mark,
    sent_since,
    structured,
    text_of,
)
from tool_modes.modes import mode_mounts

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

FLIGHT_ACTIONS = [
    ("move", {"direction": "forward", "distance_cm": 50}),
    ("rotate", {"direction": "clockwise", "degrees": 90}),
    ("flip", {"direction": "forward"}),
    ("go_to", {"x": 50, "y": 0, "z": 0, "speed": 30}),
]


async def _take_off(drone: Drone) -> None:
    async with Client(drone.server) as client:
        took_off = await client.call_tool("takeoff", {})
    assert not took_off.is_error, text_of(took_off)


async def test_hold_refuses_every_flight_action_in_every_mode_and_lets_safety_through() -> None:
    async with flying() as drone:
        await _take_off(drone)
        hold = drone.runtime.hold
        hold.set("operator-ana", drone.runtime.link)
        search = mode_mounts(drone.server, "/drone", modes=("standard", "search"))["/drone-search"]
        since = mark(drone.truth)
        async with Client(drone.server) as standard, Client(search) as searcher:
            for name, arguments in FLIGHT_ACTIONS:
                refused = await standard.call_tool(name, arguments)
                assert refused.is_error, name
                text = text_of(refused)
                assert "an operator has put the drone on hold" in text, text
                assert "operator-ana" in text, text
                assert "Nothing was sent" in text, text
                through = await searcher.call_tool("invoke_tool", {"name": name, "arguments": arguments})
                assert through.is_error, name
                assert "on hold" in text_of(through), text_of(through)
            sent = {text.split()[0] for text in sent_since(drone.truth, since)}
            assert sent <= {"command"}, sent  # nothing at all: not even takeoff's battery read
            state = structured(await standard.call_tool("get_state", {}))
            assert state["hold"]["by"] == "operator-ana"
            assert not (await standard.call_tool("get_battery", {})).is_error
            stopped = await standard.call_tool("stop", {})
            assert not stopped.is_error, text_of(stopped)
            landed = await standard.call_tool("land", {})
            assert not landed.is_error, text_of(landed)
            assert not drone.truth.flying
            refused = await standard.call_tool("takeoff", {})
            assert refused.is_error
            assert "on hold" in text_of(refused)
            assert executed(drone.truth).count("takeoff") == 1  # the one before the hold
            log = [(e.command, e.client, e.verdict) for e in drone.runtime.link.flight_log]
            assert ("hold (operator)", "operator-ana", None) in log
            assert ("takeoff", None, "held") in log

            hold.release("operator-ana", drone.runtime.link)
            assert structured(await standard.call_tool("get_state", {}))["hold"] is None
            took_off = await standard.call_tool("takeoff", {})
            assert not took_off.is_error, text_of(took_off)
            assert executed(drone.truth).count("takeoff") == 2


async def test_hold_survives_a_reconnect_of_the_drone() -> None:
    async with flying() as drone:
        drone.runtime.hold.set("operator-ana")
        drone.sim.reboot()
        with anyio.fail_after(60):
            while drone.runtime.connected():
                await drone.runtime.link.wait_changed()
            while not drone.runtime.connected():
                await drone.runtime.link.wait_changed()
        since = mark(drone.truth)
        async with Client(drone.server) as client:
            refused = await client.call_tool("takeoff", {})
        assert refused.is_error
        assert "on hold" in text_of(refused)
        assert {text.split()[0] for text in sent_since(drone.truth, since)} <= {"command"}
        assert "takeoff" not in executed(drone.truth)


async def test_a_hold_set_while_actions_wait_stops_them_all() -> None:
    """Racing the hold: a long move holds the flight section and two more wait for it (another
    move, a flip) when the operator sets the hold. The running move finishes; neither waiting
    action reaches the drone, and each is refused naming the hold."""
    async with flying() as drone:
        await _take_off(drone)
        truth = drone.truth
        results: dict[str, str] = {}
        since = 0
        async with (
            Client(drone.server) as mover,
            Client(drone.server) as second,
            Client(drone.server) as third,
        ):
            with anyio.fail_after(120):
                assert not (await mover.call_tool("set_speed", {"speed_cm_s": 10})).is_error

                async def call(client: Client, key: str, name: str, arguments: dict[str, Any]) -> None:
                    results[key] = text_of(await client.call_tool(name, arguments))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, mover, "long", "move", {"direction": "forward", "distance_cm": 100})
                    await drone.sim.wait_for(lambda t: t.pose.x > 5, timeout_s=30)
                    since = mark(truth)
                    left: dict[str, Any] = {"direction": "left", "distance_cm": 50}
                    back: dict[str, Any] = {"direction": "back"}
                    tg.start_soon(call, second, "queued move", "move", left)
                    tg.start_soon(call, third, "queued flip", "flip", back)
                    await anyio.sleep(0.1)  # virtual: both are now waiting for the section
                    drone.runtime.hold.set("operator-ana", drone.runtime.link)
        sent = [text.split()[0] for text in sent_since(truth, since)]
        assert "left" not in sent
        assert "flip" not in sent
        assert "battery?" not in sent  # a held flip does not even read the battery first
        for key in ("queued move", "queued flip"):
            assert "an operator has put the drone on hold" in results[key], results
        assert truth.pose.x == pytest.approx(100, abs=5)  # the move already running finished
