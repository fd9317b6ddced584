"""The operator's envelope lands a flying drone by itself when the battery gets critical."""

from __future__ import annotations

import anyio
import pytest

from servers.drone.config import DroneSettings
from servers.drone.runtime import DroneRuntime


@pytest.mark.anyio
async def test_critical_battery_lands_a_flying_drone_once() -> None:
    settings = DroneSettings(sim=True, time_scale=20, stale_after_s=3.0, critical_battery=15)
    async with DroneRuntime(settings) as runtime:
        sim = runtime.sim
        assert sim is not None
        with anyio.fail_after(10):
            while not runtime.ready():
                await runtime.link.wait_changed()
        await runtime.pilot.takeoff()
        assert sim.truth.flying

        sim.set_battery(16)  # above critical: nothing happens
        with anyio.fail_after(5):
            while (t := runtime.link.reading().telemetry) is None or t.battery_pct != 16:
                await runtime.link.wait_changed()
        assert sim.truth.flying

        sim.set_battery(14)

        def lands() -> list[tuple[str, str | None]]:
            return [(e.outcome, e.reply) for e in runtime.link.flight_log if e.command == "land"]

        with anyio.fail_after(10):
            while not lands():
                await runtime.link.wait_changed()
        assert not sim.truth.flying
        assert sim.truth.executed_texts().count("land") == 1
        assert lands() == [("ok", "ok")]
        assert not runtime.link.is_flying()
