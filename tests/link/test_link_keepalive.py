"""Keepalive: a hovering drone left alone by its callers never hits its 15 s auto-land."""

from __future__ import annotations

import itertools

import pytest

from drone_sim import EventKind, FlightState
from servers.drone.core import commands
from servers.drone.core.protocol import LinkStatus, ProtocolConfig
from tests.link.rig import make_rig

pytestmark = pytest.mark.virtual_time


@pytest.mark.anyio
async def test_keepalive_holds_a_hovering_drone_for_60s(anyio_backend: str) -> None:
    config = ProtocolConfig()
    async with make_rig() as rig:
        takeoff = await rig.call(commands.simple("takeoff"))
        assert takeoff.ok
        start = rig.clock.now()
        seen = len(rig.sim.truth.received)
        await rig.until(lambda: rig.clock.now() >= start + 60.0, 70.0, "60 s of hovering")

        truth = rig.sim.truth
        assert truth.flight_state is FlightState.HOVERING
        assert not truth.events_of(EventKind.AUTO_LAND)
        assert not truth.events_of(EventKind.SDK_EXITED)
        heard = truth.received[seen:]
        assert {r.data for r in heard} == {b"command"}, "callers were quiet: only keepalives went out"
        times = [r.t for r in heard]
        assert len(times) >= 60.0 / config.keepalive_s - 1
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(config.keepalive_s - 0.05 <= g <= config.keepalive_s + 0.5 for g in gaps), gaps
        assert all(r.reply == "ok" for r in truth.executed if r.text == "command")
        # The state never stopped: no watcher ever saw the link leave `connected`.
        assert {ob.status for ob in rig.observations if ob.at >= start} == {LinkStatus.CONNECTED}
        assert rig.link.is_flying()


@pytest.mark.anyio
async def test_without_keepalive_the_drone_auto_lands_after_15s(anyio_backend: str) -> None:
    """The control: the same hover with the keepalive pushed out of reach."""
    async with make_rig(protocol=ProtocolConfig(keepalive_s=1000.0)) as rig:
        takeoff = await rig.call(commands.simple("takeoff"))
        assert takeoff.ok
        truth = rig.sim.truth
        (record,) = [r for r in truth.executed if r.text == "takeoff"]
        assert record.finished_t is not None
        await rig.until(lambda: bool(truth.events_of(EventKind.AUTO_LAND)), 25.0, "the auto-land")
        (auto_land,) = truth.events_of(EventKind.AUTO_LAND)
        # 15 s after the last command, counted from the end of the takeoff it asked for.
        assert auto_land.t - record.finished_t == pytest.approx(15.0, abs=0.15)
        assert [r.data for r in truth.received if r.t > record.t] == []
        # It left SDK mode at the same moment, so its state stream stopped: the link says so.
        assert truth.events_of(EventKind.SDK_EXITED)
        await rig.status(LinkStatus.STALE, timeout_s=2.0)
        await rig.until(lambda: truth.flight_state is FlightState.LANDED, 10.0, "touchdown")
