"""Drone-link families on virtual time, through a real MCP client against the simulator: video
frames, reconnects and the landings the server makes by itself, scraped from the
`--metrics-port` app in process (no socket: virtual time) with Prometheus's parser."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from servers.drone.core.protocol import LinkStatus
from tests.drone_server.harness import drone_settings, flying, text_of, wait_connected, wait_status
from tests.metrics.scrape import scrape_app

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

AUTO_LANDS = "tello_mcp_safety_auto_lands_total"


async def test_video_counters_are_the_receivers_after_a_photo() -> None:
    async with flying() as drone, Client(drone.server) as client:
        address = drone.runtime.link.drone_address
        with anyio.fail_after(30):
            photo = await client.call_tool("capture_photo", {})
        assert not photo.is_error, text_of(photo)
        scraped = await scrape_app()
        stats = drone.runtime.photos.receiver.stats
        assert stats.frames_published >= 1
        expected = {
            "frames_decoded": stats.frames_decoded,
            "frames_dropped": stats.frames_discarded,
            "decode_errors": stats.decode_errors,
            "received_bytes": stats.bytes,
        }
        for name, value in expected.items():
            assert scraped.value(f"tello_mcp_drone_video_{name}_total", drone=address) == value, name
        assert stats.bytes > 0


async def test_a_reconnect_is_counted_and_the_first_connection_is_not() -> None:
    reconnects = "tello_mcp_drone_link_reconnects_total"
    before = await scrape_app()  # the in-memory simulator's address is the same in every test
    async with flying() as drone:
        address = drone.runtime.link.drone_address
        first = (await scrape_app()).value(reconnects, drone=address)
        assert first == before.value(reconnects, drone=address)  # connected once, never lost
        with anyio.fail_after(60):
            drone.sim.power_off()
            await wait_status(drone.sim, drone.runtime, LinkStatus.DISCONNECTED)
            drone.sim.power_on()
            await wait_connected(drone.runtime, within=30)
        back = await scrape_app()
        assert back.value(reconnects, drone=address) - first == 1
        assert back.value("tello_mcp_drone_link_status", drone=address, status="connected") == 1


async def test_a_critical_battery_landing_is_an_auto_land() -> None:
    async with flying(drone_settings(critical_battery=15)) as drone, Client(drone.server) as client:
        address = drone.runtime.link.drone_address
        before = await scrape_app()
        with anyio.fail_after(30):
            assert not (await client.call_tool("takeoff", {})).is_error
            drone.sim.set_battery(14)
            while drone.truth.flying or drone.runtime.link.is_flying():
                await drone.runtime.link.wait_changed()
        after = await scrape_app()
        assert drone.truth.executed_texts().count("land") == 1
    labels = {"drone": address, "reason": "critical_battery"}
    assert after.value(AUTO_LANDS, **labels) - before.value(AUTO_LANDS, **labels) == 1


async def test_a_shutdown_landing_is_an_auto_land_and_a_landed_drone_is_not() -> None:
    async with flying() as drone, Client(drone.server) as client:
        address = drone.runtime.link.drone_address
        labels = {"drone": address, "reason": "shutdown"}
        before = await scrape_app()
        with anyio.fail_after(30):
            assert not (await client.call_tool("takeoff", {})).is_error
            await drone.runtime.land_for_shutdown()
            assert not drone.truth.flying
            await drone.runtime.land_for_shutdown()  # on the ground: nothing sent, nothing counted
        after = await scrape_app()
    assert after.value(AUTO_LANDS, **labels) - before.value(AUTO_LANDS, **labels) == 1


async def test_state_packets_received_are_what_the_simulator_sent() -> None:
    """Every state packet the simulator sent (none lost: no fault set) is counted, no more."""
    async with flying() as drone:
        address = drone.runtime.link.drone_address
        with anyio.fail_after(30):
            await anyio.sleep(2)  # virtual: twenty state packets' worth
        scraped = await scrape_app()
        counted = scraped.value("tello_mcp_drone_link_state_packets_total", drone=address)
        sent = drone.truth.state_packets_sent
        assert sent >= 10
        assert sent - 1 <= counted <= sent  # one may be on its way when scraped
        assert scraped.value("tello_mcp_drone_link_bad_state_total", drone=address) == 0
