"""The operator's hold on virtual time, through real MCP clients: every new flight action from
every agent and mode is refused naming the hold with nothing sent; land, stop, emergency and
reads still work; the hold survives a reconnect and lands in the flight log."""

from __future__ import annotations

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
