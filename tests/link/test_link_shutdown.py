"""Leaving `async with DroneLink` lands a flying drone (bounded), then leaves nothing behind."""

from __future__ import annotations

import asyncio
import socket

import anyio
import pytest

from drone_sim import DroneSimulator, FlightState, Outcome, SimConfig
from servers.drone.core import commands
from servers.drone.core.errors import ShuttingDown
from servers.drone.core.protocol import LinkStatus
from servers.drone.link import DroneLink, LinkConfig
from tello_io.clock import ScaledClock
from tests.link.rig import LOCAL, SPEEDUP, link_config, make_rig, verify_calls


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((LOCAL, port))
        except OSError:
            return False
        return True


async def _connected(sim: DroneSimulator, link: DroneLink) -> None:
    sim.state_port = link.state_port
    await sim.wait_for(lambda _: link.status() is LinkStatus.CONNECTED, 10.0)


@pytest.mark.anyio
@pytest.mark.parametrize("mid_move", [False, True], ids=["hovering", "mid-move"])
async def test_shutdown_lands_then_closes(mid_move: bool, anyio_backend: str) -> None:
    clock = ScaledClock(SPEEDUP)
    async with DroneSimulator(SimConfig(host=LOCAL, port=0, state_port=0), clock=clock, video=None) as sim:
        tasks_before = len(asyncio.all_tasks())
        config = link_config(sim)
        async with DroneLink(config, clock) as link:
            await _connected(sim, link)
            ports = (link.local_port, link.state_port)
            await link.request(commands.simple("takeoff"))
            if mid_move:
                # A caller is cancelled while its long move holds the wire (the server is
                # being stopped): the move is still running on the drone.
                await link.request(commands.set_speed(10))
                with anyio.move_on_after(clock.to_real(2.0)):
                    await link.request(commands.move("forward", 500, speed_cm_s=10))
                assert sim.truth.flight_state is FlightState.MOVING
            assert link.is_flying()
            leaving = clock.now()
        left = clock.now()
        truth = sim.truth
        assert truth.flight_state is FlightState.LANDED
        assert left - leaving <= LinkConfig().land_on_exit_s
        (land,) = [r for r in truth.executed if r.text == "land"]
        assert land.outcome is Outcome.DONE
        if mid_move:
            assert [r.outcome for r in truth.executed if r.text == "forward 500"] == [Outcome.INTERRUPTED]
        assert len(asyncio.all_tasks()) == tasks_before
        assert all(_port_is_free(p) for p in ports)


@pytest.mark.anyio
async def test_shutdown_right_after_start_does_not_hang(anyio_backend: str) -> None:
    clock = ScaledClock(SPEEDUP)
    async with DroneSimulator(SimConfig(host=LOCAL, port=0, state_port=0), clock=clock, video=None) as sim:
        tasks_before = len(asyncio.all_tasks())
        with anyio.fail_after(2):
            async with DroneLink(link_config(sim), clock) as link:
                ports = (link.local_port, link.state_port)
        assert len(asyncio.all_tasks()) == tasks_before
        assert all(_port_is_free(p) for p in ports)


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_once_shutting_down_no_flight_action_but_landing_goes_out() -> None:
    """What a `run_code` script still running during a shutdown meets: takeoff and moves are
    refused with nothing sent; reads, `stop` and `land` still go out."""
    async with make_rig() as rig:
        assert (await rig.call(commands.simple("takeoff"))).ok
        rig.link.begin_shutdown()
        before = len(rig.sim.truth.received)
        for refused in (commands.move("up", 30, speed_cm_s=100), commands.rotate("cw", 90)):
            call = await rig.call(refused)
            assert isinstance(call.error, ShuttingDown), call
            assert "shutting down" in str(call.error)
            assert "nothing was sent" in str(call.error)
        assert rig.sim.truth.received[before:] == ()
        assert (await rig.call(commands.query("battery?"))).ok
        assert (await rig.call(commands.simple("land"))).ok
        assert rig.sim.truth.flight_state is FlightState.LANDED
        again = await rig.call(commands.simple("takeoff"))
        assert isinstance(again.error, ShuttingDown)
        assert [r.text for r in rig.sim.truth.executed if r.is_flight_action] == ["takeoff", "land"]
        verify_calls(rig.sim, rig.calls)
