"""A flight action whose reply is lost: the link says what the state stream proves, and the
simulator's ground truth agrees with it (virtual time, in memory)."""

from __future__ import annotations

import pytest

from drone_sim import Faults, Outcome
from servers.drone.core import commands
from servers.drone.core.commands import Command
from servers.drone.core.errors import OutcomeUnknown
from tests.link.rig import Rig, executions, make_rig, verify_calls

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


async def _airborne(rig: Rig) -> None:
    assert (await rig.call(commands.simple("takeoff"))).ok
    assert (await rig.call(commands.set_speed(50))).ok


def _unknown(call_error: object) -> OutcomeUnknown:
    assert isinstance(call_error, OutcomeUnknown), call_error
    return call_error


@pytest.mark.parametrize(
    ("command", "evidence"),
    [
        (commands.move("up", 40, speed_cm_s=50), "height"),
        (commands.move("forward", 100, speed_cm_s=50), "cm"),
        (commands.rotate("cw", 90), "yaw"),
    ],
    ids=["up", "forward", "cw"],
)
async def test_a_lost_reply_to_an_action_that_ran_is_executed(command: Command, evidence: str) -> None:
    async with make_rig(faults=Faults(seed=5)) as rig:
        await _airborne(rig)
        rig.sim.faults.lose_reply = command.text
        call = await rig.call(command)
        error = _unknown(call.error)
        assert executions(rig.sim, command.text) == [Outcome.DONE]
        assert error.verdict == "executed", error
        assert evidence in (error.evidence or ""), error.evidence
        assert "do not send it again" in str(error)
        [entry] = [e for e in rig.link.flight_log if e.command == command.text]
        assert (entry.outcome, entry.verdict) == ("outcome_unknown", "executed")
        verify_calls(rig.sim, rig.calls)


async def test_a_lost_command_did_not_start_and_is_safe_to_send_again() -> None:
    move = commands.move("forward", 60, speed_cm_s=50)
    async with make_rig(faults=Faults(seed=6)) as rig:
        await _airborne(rig)
        rig.sim.faults.lose_command = move.text
        first = await rig.call(move)
        error = _unknown(first.error)
        assert executions(rig.sim, move.text) == []  # the drone never heard it
        assert error.verdict == "did_not_start", error
        assert "safe to send it again" in str(error)
        again = await rig.call(move)  # the caller's choice, on the verdict's word
        assert again.ok
        assert executions(rig.sim, move.text) == [Outcome.DONE]
        verify_calls(rig.sim, rig.calls)


async def test_without_state_the_verdict_stays_unknown() -> None:
    move = commands.move("back", 60, speed_cm_s=50)
    async with make_rig(faults=Faults(seed=7)) as rig:
        await _airborne(rig)
        rig.sim.faults.state_dropout = True
        rig.sim.faults.lose_reply = move.text
        call = await rig.call(move)
        error = _unknown(call.error)
        assert error.verdict == "unknown", error
        assert "outcome unknown" in str(error)
        assert "NOT re-sent" in str(error)
        rig.faults_off()
        verify_calls(rig.sim, rig.calls)
