"""Late and surplus replies, end to end over real UDP: the cases that once broke the core.

Each scenario was found failing against `servers/drone/core/protocol.py` and is kept as a
regression test: a retried command's second reply, a retried keepalive's second reply, a
polling caller starving the reconnect probe, and a failed keepalive's late replies. Each is
timed with margins of several hundred simulated milliseconds so it is deterministic.
"""

from __future__ import annotations

import dataclasses

import pytest

from drone_sim import Outcome
from servers.drone.core import commands
from servers.drone.core.protocol import ProtocolConfig
from tests.link.rig import executions, make_rig, verify_calls

pytestmark = pytest.mark.virtual_time

QUIET = ProtocolConfig(keepalive_s=60.0)
"""No keepalive interferes with a scripted exchange."""
SLOW = 10.0
"""A slower clock than the other link tests: 0.4 simulated seconds of margin is 40 ms real."""


@pytest.mark.anyio
async def test_second_reply_of_a_retried_command_is_not_handed_to_the_next(anyio_backend: str) -> None:
    async with make_rig(protocol=QUIET, speedup=SLOW) as rig:
        assert (await rig.call(commands.simple("takeoff"))).ok
        # 1.6 s: later than a read's 1 s timeout, so `speed` is sent twice (t=0, t=1.1); the
        # first reply (t=1.6) answers the second copy, the second reply comes at t=2.7.
        rig.sim.faults.delay_s = 1.6
        speed = await rig.call(commands.set_speed(50))
        assert speed.ok
        assert speed.reply is not None
        assert speed.reply.attempts == 2
        # forward 100 at 50 cm/s: runs from ~1.6 to ~4.6, its `ok` arrives at ~6.2.
        move = await rig.call(commands.move("forward", 100, speed_cm_s=50))
        verify_calls(rig.sim, rig.calls)
        assert move.ok


@pytest.mark.anyio
async def test_second_reply_of_a_retried_keepalive_is_not_handed_to_a_move(anyio_backend: str) -> None:
    async with make_rig(protocol=ProtocolConfig(keepalive_s=2.0), speedup=SLOW) as rig:
        assert (await rig.call(commands.simple("takeoff"))).ok
        rig.sim.faults.delay_s = 1.6
        seen = len(rig.sim.truth.received)
        await rig.until(
            lambda: any(r.data == b"command" for r in rig.sim.truth.received[seen:]), 10.0, "a keepalive"
        )
        # The keepalive holds the wire; the move goes out right after it resolves.
        move = await rig.call(commands.move("left", 100, speed_cm_s=50))
        verify_calls(rig.sim, rig.calls)
        assert move.ok


@pytest.mark.anyio
async def test_a_polling_caller_does_not_starve_the_keepalive(anyio_backend: str) -> None:
    async with make_rig() as rig:
        assert (await rig.call(commands.simple("takeoff"))).ok
        rig.sim.reboot()
        rebooted = rig.clock.now()
        # The drone is listening again after ~4 s, out of SDK mode. A caller asks for the battery
        # over and over, as a model polling get_battery would.
        answered = False
        while rig.clock.now() < rebooted + 40.0 and not answered:
            answered = (await rig.call(commands.query("battery?"))).ok
        assert answered, (
            f"no reply in 40 s; the drone saw: {sorted({r.data for r in rig.sim.truth.received})}"
        )


@pytest.mark.anyio
async def test_late_replies_of_a_failed_keepalive_are_not_handed_to_a_move(anyio_backend: str) -> None:
    async with make_rig(protocol=ProtocolConfig(keepalive_s=2.0), speedup=SLOW) as rig:
        assert (await rig.call(commands.simple("takeoff"))).ok
        # 3.6 s: later than the keepalive's three attempts (K, K+1.1, K+2.2; it fails at K+3.2).
        # Its replies come at K+3.6, K+4.7 and K+5.8, inside the quarantine, and are dropped;
        # the waiting move goes out when the quarantine ends (ahead of the next keepalive) and
        # is completed by its own `ok`, never by a late one (verify_calls checks the timing).
        rig.sim.faults.delay_s = 3.6
        seen = len(rig.sim.truth.received)
        strays = rig.link.counters["strays"]
        await rig.until(
            lambda: any(r.data == b"command" for r in rig.sim.truth.received[seen:]), 10.0, "a keepalive"
        )
        move = await rig.call(commands.move("left", 100, speed_cm_s=50))
        verify_calls(rig.sim, rig.calls)
        assert move.ok, move
        assert executions(rig.sim, "left 100") == [Outcome.DONE]
        assert rig.link.counters["strays"] - strays >= 3


@pytest.mark.anyio
async def test_a_late_reply_after_the_final_timeout_is_quarantined(anyio_backend: str) -> None:
    """The guarantee that does hold: replies that come after a command finally failed are
    dropped during the quarantine, never handed to the next caller."""
    # Replies at 5.0, 6.1 and 7.2 s: after the final timeout (3.2 s), inside a 6 s quarantine.
    async with make_rig(protocol=dataclasses.replace(QUIET, quarantine_s=6.0)) as rig:
        assert (await rig.call(commands.simple("takeoff"))).ok
        rig.sim.faults.delay_s = 5.0
        read = await rig.call(commands.query("height?"))
        assert read.error is not None
        strays = rig.link.counters["strays"]
        rig.faults_off()
        move = await rig.call(commands.move("right", 50, speed_cm_s=100))
        height = await rig.call(commands.query("height?"))
        assert move.ok
        assert height.ok
        assert rig.link.counters["strays"] - strays == 3
        assert executions(rig.sim, "right 50") == [Outcome.DONE]
        verify_calls(rig.sim, rig.calls)
