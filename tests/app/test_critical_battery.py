"""The operator's envelope lands a flying drone by itself when the battery gets critical."""

from __future__ import annotations

import anyio
import pytest

from tests.support.virtual import virtual_runtime


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_critical_battery_lands_a_flying_drone_once() -> None:
    async with virtual_runtime(critical_battery=15) as runtime:
        sim = runtime.sim
        assert sim is not None
        with anyio.fail_after(10):
            while not runtime.connected():
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
