"""What a model and a newcomer read from the drone server: the flight log with wall-clock time,
and a stale-link refusal that says when the last state packet came, in plain words."""

from __future__ import annotations

import json
import time
from datetime import datetime

import anyio
import pytest
from mcp import Client

from servers.drone.core.protocol import LinkStatus
from servers.drone.server import FLIGHT_LOG_URI
from tests.drone_server.harness import Drone, text_of, wait_status

pytestmark = pytest.mark.anyio


async def test_the_flight_log_resource_gives_iso_8601_wall_clock_beside_seconds(drone: Drone) -> None:
    before = time.time()
    async with Client(drone.server) as client:
        with anyio.fail_after(20):
            assert not (await client.call_tool("get_battery", {})).is_error
            read = await client.read_resource(FLIGHT_LOG_URI)
    entries = json.loads(getattr(read.contents[0], "text", "[]"))
    [battery] = [e for e in entries if e["command"] == "battery?"][-1:]
    assert isinstance(battery["at_s"], float)
    at = datetime.fromisoformat(battery["at"])
    assert at.utcoffset() is not None
    assert at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert before - 1 <= at.timestamp() <= time.time() + 1


async def test_a_stale_link_refusal_says_when_the_last_state_packet_came(drone: Drone) -> None:
    async with Client(drone.server) as client:
        with anyio.fail_after(15):
            drone.sim.faults.state_dropout = True
            await wait_status(drone.sim, drone.runtime, LinkStatus.STALE)
            refused = await client.call_tool("takeoff", {})
    text = text_of(refused)
    assert refused.is_error
    assert "the link is stale, the last state packet came " in text
    assert " s ago" in text
    assert "never" not in text
