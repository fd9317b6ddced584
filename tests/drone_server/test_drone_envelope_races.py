"""The envelope under concurrency and cancellation, judged on the simulator's ground truth.

Several MCP clients share one drone: flight actions queued together must each be checked
against where the drone is after the ones before them (one critical section per drone from
check to position update), and a move cut short (`stop`, the caller cancelling) must leave an
estimate that covers wherever the drone may be, never where it was.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from tests.drone_server.harness import (
    Drone,
    assert_nothing_sent,
    drone_settings,
    executed,
    flying,
    mark,
    structured,
    text_of,
)

pytestmark = pytest.mark.virtual_time


async def _race(drone: Drone, calls: list[tuple[str, dict[str, Any]]]) -> list[CallToolResult]:
    """Each call from its own MCP client, all at once."""
    results: list[CallToolResult | None] = [None] * len(calls)

    async def one(i: int, name: str, args: dict[str, Any]) -> None:
        async with Client(drone.server) as client:
            results[i] = await client.call_tool(name, args)

    async with anyio.create_task_group() as tg:
        for i, (name, args) in enumerate(calls):
            tg.start_soon(one, i, name, args)
    return [r for r in results if r is not None]


async def _assert_estimate_covers_truth(drone: Drone) -> None:
    async with Client(drone.server) as client:
        state = structured(await client.call_tool("get_state", {}))
    est = state["position_estimate"]
    pose = drone.truth.pose
    off = math.hypot(est["x_cm"] - pose.x, est["y_cm"] - pose.y)
    assert off <= est["uncertainty_cm"] + 5, (est, pose)


async def test_racing_climbs_never_pass_the_height_cap(airborne: Drone) -> None:
    with anyio.fail_after(120):
        results = await _race(airborne, [("move", {"direction": "up", "distance_cm": 200})] * 3)
    refused = [r for r in results if r.is_error]
    assert len(refused) == 2, [text_of(r) for r in results]
    assert all("max_height_cm=300" in text_of(r) for r in refused)
    assert airborne.truth.pose.z <= 300


async def test_racing_clients_never_leave_the_geofence(airborne: Drone) -> None:
    with anyio.fail_after(120):
        results = await _race(
            airborne,
            [("move", {"direction": "forward", "distance_cm": 400})] * 2
            + [("go_to", {"x": 300, "y": 0, "z": 0, "speed": 100})] * 2,
        )
    assert sum(not r.is_error for r in results) == 1, [text_of(r) for r in results]
    assert math.hypot(airborne.truth.pose.x, airborne.truth.pose.y) <= 500
    await _assert_estimate_covers_truth(airborne)


async def _move_then_stop(drone: Drone, mover: Client, stopper: Client) -> None:
    """`move forward 300`, and `stop` once it has flown 150 cm (unless it is answered first)."""
    start = drone.truth.pose.x
    answered: list[CallToolResult] = []

    async def move() -> None:
        answered.append(await mover.call_tool("move", {"direction": "forward", "distance_cm": 300}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(move)
        await drone.sim.wait_for(lambda t: bool(answered) or t.pose.x > start + 150, timeout_s=60)
        if not answered:
            await stopper.call_tool("stop", {})


async def test_stop_and_repeat_cannot_walk_out_of_the_geofence(airborne: Drone) -> None:
    truth = airborne.truth
    async with Client(airborne.server) as mover, Client(airborne.server) as stopper:
        with anyio.fail_after(300):
            for _ in range(6):
                await _move_then_stop(airborne, mover, stopper)
                assert math.hypot(truth.pose.x, truth.pose.y) <= 500
    await _assert_estimate_covers_truth(airborne)


async def test_a_cancelled_move_widens_the_estimate(airborne: Drone) -> None:
    truth = airborne.truth
    async with Client(airborne.server) as client:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:

                async def move() -> None:
                    await client.call_tool("move", {"direction": "forward", "distance_cm": 300})

                tg.start_soon(move)
                await airborne.sim.wait_for(lambda _: truth.pose.x > 100, timeout_s=60)
                tg.cancel_scope.cancel()
            # The drone may still be flying the move out: whatever it does, the estimate covers it.
            await airborne.sim.wait_for(lambda _: not truth.pose.x < 299, timeout_s=60)
    await _assert_estimate_covers_truth(airborne)


async def test_moves_have_a_floor(airborne: Drone) -> None:
    async with Client(airborne.server) as client:
        with anyio.fail_after(60):
            height = airborne.truth.pose.z
            down = await client.call_tool("move", {"direction": "down", "distance_cm": 60})
            assert down.is_error
            assert "min_height_cm=30" in text_of(down)
            assert airborne.truth.pose.z == pytest.approx(height, abs=2)


async def test_land_reaches_the_drone_promptly_during_a_long_move(airborne: Drone) -> None:
    truth = airborne.truth
    async with Client(airborne.server) as mover, Client(airborne.server) as lander:
        with anyio.fail_after(120):
            assert not (await mover.call_tool("set_speed", {"speed_cm_s": 10})).is_error
            async with anyio.create_task_group() as tg:

                async def move() -> None:
                    await mover.call_tool("move", {"direction": "forward", "distance_cm": 400})

                tg.start_soon(move)
                await airborne.sim.wait_for(lambda _: truth.pose.x > 20, timeout_s=60)
                asked = airborne.now()
                landed = await lander.call_tool("land", {})
                assert not landed.is_error, text_of(landed)
                # A 400 cm move at 10 cm/s has ~38 s to go; landing takes a few seconds.
                assert airborne.now() - asked < 10
                assert not truth.flying


@pytest.mark.anyio
async def test_flips_have_a_floor() -> None:
    """A flip dips: refused below `min_height_cm` (raised here above the hover height), with
    the floor named and nothing sent; at the default floor the same flip flies."""
    async with flying(drone_settings(min_height_cm=150)) as drone, Client(drone.server) as client:
        with anyio.fail_after(60):
            assert not (await client.call_tool("takeoff", {})).is_error
            before = mark(drone.truth)
            height = drone.truth.pose.z
            refused = await client.call_tool("flip", {"direction": "forward"})
            assert refused.is_error
            assert "min_height_cm=150" in text_of(refused)
            assert f"{height:.0f} cm" in text_of(refused)
            assert_nothing_sent(drone.truth, before)
    async with flying() as drone, Client(drone.server) as client:
        with anyio.fail_after(60):
            assert not (await client.call_tool("takeoff", {})).is_error
            flipped = await client.call_tool("flip", {"direction": "forward"})
            assert not flipped.is_error, text_of(flipped)
            assert "flip f" in executed(drone.truth)
