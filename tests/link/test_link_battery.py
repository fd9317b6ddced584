"""`battery()`: live when the drone can answer, the state packet's value (with its age) when not."""

from __future__ import annotations

import anyio
import pytest

from drone_sim import Outcome
from servers.drone.core import commands
from servers.drone.core.errors import OutcomeUnknown
from servers.drone.core.protocol import LinkStatus
from tests.link.rig import Call, Rig, executions, verify_calls

pytestmark = pytest.mark.virtual_time


@pytest.mark.anyio
async def test_battery_is_live_when_the_wire_is_free(rig: Rig) -> None:
    rig.sim.set_battery(73.4)
    sent = len(rig.sim.truth.received)
    reading = await rig.link.battery()
    assert (reading.percent, reading.source, reading.age_s) == (74, "live", 0.0)
    assert reading.link is LinkStatus.CONNECTED
    assert [r.data for r in rig.sim.truth.received[sent:]] == [b"battery?"]


@pytest.mark.anyio
async def test_battery_is_live_beside_a_move_in_flight(rig: Rig) -> None:
    """A read does not queue behind a 5 s move: `battery?` answers with a number and the move
    with `ok`/`error`, so the core sends it beside the move (once the move's own refusal, if
    any, has had time to come back) and each reply finds its owner."""
    assert (await rig.call(commands.simple("takeoff"))).ok
    assert (await rig.call(commands.set_speed(20))).ok
    move = commands.move("forward", 100, speed_cm_s=20)  # 5 s of flight
    result: list[Call] = []
    async with anyio.create_task_group() as tg:

        async def mover() -> None:
            result.append(await rig.call(move))

        tg.start_soon(mover)
        await rig.until(lambda: executions(rig.sim, move.text) == [Outcome.RUNNING], 5.0, "the move")
        sent = len(rig.sim.truth.received)
        asked = rig.clock.now()
        rig.sim.set_battery(61.2)
        reading = await rig.link.battery(live_wait_s=1.5)
        answered = rig.clock.now()
        assert (reading.percent, reading.source, reading.age_s) == (62, "live", 0.0)
        assert reading.link is LinkStatus.CONNECTED
        assert answered - asked <= rig.link.config.protocol.side_after_s
        assert [r.data for r in rig.sim.truth.received[sent:]] == [b"battery?"]
        assert rig.sim.truth.flight_state.busy  # the move is still running
    assert result[0].ok
    assert executions(rig.sim, move.text) == [Outcome.DONE]
    verify_calls(rig.sim, rig.calls)


@pytest.mark.anyio
async def test_battery_falls_back_with_its_age_when_the_drone_is_silent(rig: Rig) -> None:
    rig.sim.power_off()
    await rig.status(LinkStatus.STALE, timeout_s=3.0)
    reading = await rig.link.battery()
    assert reading.source == "state"
    assert reading.percent == rig.sim.truth.battery_pct
    assert reading.age_s > 1.0
    assert reading.link is not LinkStatus.CONNECTED


@pytest.mark.anyio
async def test_battery_is_live_during_a_quarantine(rig: Rig) -> None:
    """After a flight action's outcome went unknown the main wire stays closed for
    quarantine_s (its late `ok`/`error` must not reach the next command); a read answers with
    a number, which cannot be mistaken for that late reply, so `battery()` still asks live."""
    assert (await rig.call(commands.simple("takeoff"))).ok
    rig.sim.faults.loss = 1.0
    lost = await rig.call(commands.move("up", 30, speed_cm_s=100))
    assert isinstance(lost.error, OutcomeUnknown)
    rig.faults_off()
    sent = len(rig.sim.truth.received)
    asked = rig.clock.now()
    reading = await rig.link.battery(live_wait_s=1.0)
    assert reading.source == "live"
    assert rig.clock.now() - asked < 1.0
    quarantine_ends = lost.t1 + rig.link.config.protocol.quarantine_s
    asks = [r for r in rig.sim.truth.received[sent:] if r.data == b"battery?"]
    assert asks
    assert asks[0].t < quarantine_ends
    assert abs(reading.percent - rig.sim.truth.battery_pct) <= 1
    verify_calls(rig.sim, rig.calls)
