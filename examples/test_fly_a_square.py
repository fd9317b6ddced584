"""A user's own test of the drone MCP server against the simulated drone.

Nothing to import from tello-mcp: installing it gives pytest the fixtures (`drone_mcp`, an MCP
client to the drone server, and `drone_sim`, the simulator it flies, with its ground truth).
Run with `pytest` from anywhere.
"""

import math

import pytest

pytestmark = pytest.mark.anyio

SIDE_CM = 100


async def call(client, tool, **arguments):
    """Call a drone tool that must succeed; its structured result."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def test_fly_a_square(drone_mcp, drone_sim):
    state = await call(drone_mcp, "get_state")
    assert state["freshness"]["link"] == "connected"

    await call(drone_mcp, "takeoff")
    corners = []
    for _ in range(4):
        await call(drone_mcp, "move", direction="forward", distance_cm=SIDE_CM)
        corners.append(drone_sim.truth.pose)
        await call(drone_mcp, "rotate", direction="clockwise", degrees=90)
    await call(drone_mcp, "land")

    # Judged by what the drone did, not by what the server said.
    truth = drone_sim.truth
    assert not truth.flying
    assert truth.executed_texts().count(f"forward {SIDE_CM}") == 4
    # x is forward, y is left, yaw is clockwise: a clockwise square goes right.
    expected = [(SIDE_CM, 0), (SIDE_CM, -SIDE_CM), (0, -SIDE_CM), (0, 0)]
    for corner, (x, y) in zip(corners, expected, strict=True):
        assert math.hypot(corner.x - x, corner.y - y) < 5, (corner, (x, y))
    assert abs(truth.pose.yaw) < 1  # four quarter turns: facing the way it took off


async def test_no_takeoff_on_a_flat_battery(drone_mcp, drone_sim):
    drone_sim.set_battery(5)
    await drone_sim.wait_for(lambda truth: truth.battery_pct <= 5)
    sent_before = len(drone_sim.truth.received)

    result = await drone_mcp.call_tool("takeoff", {})

    assert result.is_error
    assert not drone_sim.truth.flying
    assert "takeoff" not in [r.data.decode() for r in drone_sim.truth.received[sent_before:]]
