"""Freshness: a dead state stream is reported as `stale` (with its age), never as live.

The fault is injected in the simulator (`faults.state_dropout`: the drone stops sending state
packets but still answers commands), and time moves on the shared scaled clock.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client

from servers.drone.core.protocol import LinkStatus
from servers.drone.server import STATE_URI
from tests.drone_server.harness import (
    Drone,
    Schemas,
    call_ok,
    connect,
    drone_settings,
    flying,
    text_of,
    wait_connected,
    wait_simulated,
    wait_status,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("transport", ["memory-legacy", "http-2026-07-28"])
async def test_cut_state_stream_reads_stale_with_growing_age(transport: str) -> None:
    async with connect(transport) as conn:
        client, sim, runtime = conn.client, conn.sim, conn.runtime
        schemas = await Schemas.of(client)
        with anyio.fail_after(20):
            live = await call_ok(client, schemas, "get_state")
            assert live["freshness"]["link"] == "connected"

            sim.faults.state_dropout = True
            await wait_status(sim, runtime, LinkStatus.STALE)
            first = await call_ok(client, schemas, "get_state")
            await wait_simulated(sim, runtime, 1.0)
            second = await call_ok(client, schemas, "get_state")
            battery = await call_ok(client, schemas, "get_battery")  # the drone still answers

            assert first["freshness"]["link"] == second["freshness"]["link"] == "stale"
            assert first["freshness"]["state_age_s"] >= runtime.settings.stale_after_s
            assert second["freshness"]["state_age_s"] >= first["freshness"]["state_age_s"] + 1.0
            assert first["telemetry"] is not None  # the old numbers are kept, and marked old
            assert battery["freshness"]["link"] == "stale"

            sim.faults.state_dropout = False
            await wait_connected(runtime)
            back = await call_ok(client, schemas, "get_state")
        assert back["freshness"]["link"] == "connected"
        assert back["freshness"]["state_age_s"] < 1.0


async def test_flight_actions_refused_while_stale(drone: Drone) -> None:
    sim, truth = drone.sim, drone.truth
    async with Client(drone.server) as client:
        with anyio.fail_after(15):
            sim.faults.state_dropout = True
            await wait_status(sim, drone.runtime, LinkStatus.STALE)
            refused = await client.call_tool("takeoff", {})
            assert refused.is_error
            assert "link is stale" in text_of(refused)
            assert "Nothing was sent" in text_of(refused)
            assert "takeoff" not in truth.executed_texts()


async def test_powered_off_drone_reads_disconnected(drone: Drone) -> None:
    async with Client(drone.server) as client:
        schemas = await Schemas.of(client)
        with anyio.fail_after(20):
            drone.sim.power_off()
            await wait_status(drone.sim, drone.runtime, LinkStatus.DISCONNECTED)
            state = await call_ok(client, schemas, "get_state")
            assert state["freshness"]["link"] == "disconnected"
            refused = await client.call_tool("takeoff", {})
            assert refused.is_error
            assert "disconnected" in text_of(refused)

            drone.sim.power_on()  # the keepalive brings the link back without a restart
            await wait_connected(drone.runtime, within=10)
            back = await call_ok(client, schemas, "get_state")
        assert back["freshness"]["link"] == "connected"


@pytest.mark.virtual_time
async def test_state_subscribers_hear_promptly_when_the_stream_dies() -> None:
    """The connected->stale change happens on the clock alone (no datagram arrives): the link
    must still wake `wait_changed()`, or the publisher stays silent until the next keepalive
    reply, ~5 s later."""
    async with (
        flying(drone_settings(stale_after_s=1.0)) as drone,
        Client(drone.server, mode="2026-07-28") as client,
    ):
        sim, runtime = drone.sim, drone.runtime
        stale_after = runtime.settings.stale_after_s
        with anyio.fail_after(10):
            async with client.listen(resource_subscriptions=[STATE_URI]) as updates:
                # A command now, so the next keepalive (and its reply) is 5 s away.
                await client.call_tool("get_battery", {})
                sim.faults.state_dropout = True
                cut_at = drone.now()
                state: dict[str, Any] = {}
                async for _ in updates:
                    read = await client.read_resource(STATE_URI)
                    state = _json(read.contents[0])
                    if state["freshness"]["link"] != "connected":
                        break
        heard_after = drone.now() - cut_at
        assert state["freshness"]["link"] == "stale"
        assert heard_after < stale_after + 2.5, f"first stale update {heard_after:.1f} s after the cut"


def _json(content: Any) -> dict[str, Any]:
    text = getattr(content, "text", None)
    assert isinstance(text, str), content
    decoded: dict[str, Any] = json.loads(text)
    return decoded
