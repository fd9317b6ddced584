"""Emergency takes its own path: out at once while a long move holds the wire."""

from __future__ import annotations

import anyio
import pytest

from drone_sim import EventKind, Faults, FlightState, Outcome
from servers.drone.core import commands
from servers.drone.core.errors import Preempted
from servers.drone.core.protocol import ProtocolConfig
from tests.link.rig import Call, executions, make_rig, verify_calls

pytestmark = pytest.mark.virtual_time


@pytest.mark.anyio
@pytest.mark.parametrize("silence", [0.0, 1.0], ids=["answered", "unanswered"])
async def test_emergency_overtakes_a_long_move(silence: float, anyio_backend: str) -> None:
    async with make_rig(faults=Faults(seed=3, emergency_silence=silence)) as rig:
        assert (await rig.call(commands.simple("takeoff"))).ok
        assert (await rig.call(commands.set_speed(10))).ok
        move = commands.move("forward", 500, speed_cm_s=10)  # 50 s of flight
        queued = commands.query("battery?")
        results: dict[str, Call] = {}
        sent, called_at = 0, 0.0
        async with anyio.create_task_group() as tg:

            async def run(command: commands.Command) -> None:
                results[command.text] = await rig.call(command)

            tg.start_soon(run, move)
            await rig.until(lambda: executions(rig.sim, move.text) == [Outcome.RUNNING], 5.0, "the move")
            tg.start_soon(run, queued)  # a second caller, waiting for the wire
            await rig.elapse(2.0)
            assert rig.sim.truth.flight_state is FlightState.MOVING

            sent = len(rig.sim.truth.received)
            called_at = rig.clock.now()
            results["emergency"] = await rig.call(commands.simple("emergency"))
        truth = rig.sim.truth
        emergency = results["emergency"]
        arrived = [r for r in truth.received[sent:] if r.data == b"emergency"]
        assert arrived, "emergency never reached the drone"
        # On virtual time, any wait at all (a turn, a deadline) would show as time passing.
        assert arrived[0].t == called_at, (
            f"emergency reached the drone {arrived[0].t - called_at:.3f} simulated s after the call"
        )

        assert emergency.ok
        assert emergency.reply is not None
        assert emergency.reply.raw == ("" if silence else "ok")
        if silence:  # unanswered: repeated, as the real drone often ignores it
            assert len(arrived) == ProtocolConfig().emergency_repeats
        assert isinstance(results[move.text].error, Preempted)
        assert results[queued.text].ok  # the queued caller got the wire afterwards
        assert truth.flight_state is FlightState.FALLEN
        assert truth.events_of(EventKind.EMERGENCY)
        assert truth.pose.z == 0.0
        assert executions(rig.sim, move.text) == [Outcome.INTERRUPTED]
        assert not rig.link.is_flying()
        verify_calls(rig.sim, rig.calls)
