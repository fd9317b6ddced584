"""The flight log records every caller command with what became of it, as it happened."""

from __future__ import annotations

import pytest

from servers.drone.core import commands
from servers.drone.core.protocol import LinkStatus
from servers.drone.core.verdict import REACTION_S
from servers.drone.link import LogEntry
from tests.link.rig import Rig

pytestmark = pytest.mark.virtual_time


def _last(rig: Rig, command: str) -> LogEntry:
    return [e for e in rig.link.flight_log if e.command == command][-1]


@pytest.mark.anyio
async def test_flight_log_tells_what_became_of_each_command(rig: Rig) -> None:
    assert (await rig.call(commands.simple("takeoff"))).ok
    takeoff = _last(rig, "takeoff")
    assert (takeoff.outcome, takeoff.reply, takeoff.attempts) == ("ok", "ok", 1)
    assert takeoff.latency_s == pytest.approx(5.5, abs=0.3)

    await rig.call(commands.simple("takeoff"))  # already flying: the drone says no
    refused = _last(rig, "takeoff")
    assert (refused.outcome, refused.reply) == ("rejected", "error")

    rig.sim.faults.loss = 1.0
    await rig.call(commands.query("height?"))
    timeout = _last(rig, "height?")
    assert (timeout.outcome, timeout.attempts) == ("timeout", 3)
    assert timeout.latency_s == pytest.approx(3.2, abs=0.3)  # 3 x 1 s + 2 x 0.1 s backoff

    move = commands.move("forward", 50, speed_cm_s=100)
    await rig.call(move)
    unknown = _last(rig, move.text)
    assert (unknown.outcome, unknown.attempts) == ("outcome_unknown", 1)
    # The state kept flowing without motion: it failed fast, well before its own timeout.
    assert unknown.verdict == "did_not_start"
    assert unknown.evidence is not None
    assert "no motion" in unknown.evidence
    assert unknown.latency_s == pytest.approx(REACTION_S, abs=0.15)
    assert unknown.latency_s < move.timeout_s / 2

    rig.sim.power_off()
    rig.faults_off()
    await rig.status(LinkStatus.DISCONNECTED, timeout_s=40.0)
    await rig.call(commands.query("battery?"))
    assert _last(rig, "battery?").outcome == "not_connected"
    # Ordered as they happened, on the shared clock.
    times = [e.at for e in rig.link.flight_log]
    assert times == sorted(times)
