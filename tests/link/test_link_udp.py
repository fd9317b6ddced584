"""The link against the simulator over real UDP on loopback: the integration check.

The logic is tested on virtual time in memory (every other module here). These few flights
prove the same link works through the kernel's sockets, on a modestly scaled wall clock
(`rig.SPEEDUP`), judged only by ground truth, with no assertion on how fast anything was: a
loaded machine may slow them down, but not change their outcome.
"""

from __future__ import annotations

import anyio
import pytest

from drone_sim import Faults, FlightState, Outcome
from servers.drone.core import commands
from servers.drone.core.errors import Preempted
from tests.link.rig import Call, executions, make_rig, verify_calls
from tests.support.virtual import in_virtual_time

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("loss", [0.0, 0.1], ids=["clean", "loss-10"])
async def test_a_short_flight_over_udp(loss: float) -> None:
    assert not in_virtual_time()
    async with make_rig(faults=Faults(seed=11)) as rig:
        rig.sim.faults.loss = loss
        for query in ("battery?", "height?", "temp?"):
            await rig.call(commands.query(query))
        if (await rig.call(commands.simple("takeoff"))).ok:
            await rig.call(commands.move("up", 30, speed_cm_s=100))
            await rig.call(commands.rotate("cw", 90))
        rig.faults_off()
        await rig.connected()
        await rig.call(commands.simple("land"))
        await rig.until(lambda: rig.sim.truth.flight_state is FlightState.LANDED, 30.0, "landed")
        verify_calls(rig.sim, rig.calls)
        if loss == 0.0:
            assert all(c.ok for c in rig.calls), [str(c) for c in rig.calls]


async def test_emergency_overtakes_a_long_move_over_udp() -> None:
    async with make_rig(faults=Faults(seed=3)) as rig:
        assert (await rig.call(commands.simple("takeoff"))).ok
        assert (await rig.call(commands.set_speed(10))).ok
        move = commands.move("forward", 500, speed_cm_s=10)  # 50 s of flight
        results: dict[str, Call] = {}
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                results["move"] = await rig.call(move)

            tg.start_soon(run)
            await rig.until(lambda: executions(rig.sim, move.text) == [Outcome.RUNNING], 10.0, "the move")
            results["emergency"] = await rig.call(commands.simple("emergency"))
        assert results["emergency"].ok
        assert isinstance(results["move"].error, Preempted)
        assert rig.sim.truth.flight_state is FlightState.FALLEN
        assert executions(rig.sim, move.text) == [Outcome.INTERRUPTED]
        verify_calls(rig.sim, rig.calls)
