"""Unmodified djitellopy 2.5 flies the simulator over real UDP, as it would fly a real drone.

djitellopy is an independent client: if it can connect, read state, take off, move, flip and
land, the simulator speaks the protocol. Where djitellopy mis-parses a reply form the real drone
sends (`int("8dm")`), the test shows the simulator sent exactly the real form and djitellopy
choked on it -- a djitellopy bug, kept visible here so nobody "fixes" the simulator to match.

djitellopy binds 0.0.0.0:8889 and 0.0.0.0:8890 in module-global sockets served by daemon
threads that never stop. The fixture gives those sockets SO_REUSEADDR (so they can share port
8889 with the simulator on 127.0.0.2), and on teardown shuts them down, which wakes the threads'
blocking `recvfrom` so they exit, joins the threads and closes the sockets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest
from djitellopy import Tello, TelloException

from drone_sim.config import DroneConfig
from drone_sim.djitellopy import shared_ports
from drone_sim.faults import Faults
from drone_sim.flight import FlightState
from drone_sim.records import EventKind
from drone_sim.server import DroneSimulator, SimConfig
from tello_io.clock import ScaledClock

SIM_HOST = "127.0.0.2"
SPEEDUP = 10.0

TelloFactory = Callable[[], Tello]


@pytest.fixture
def make_tello() -> Iterator[TelloFactory]:
    with shared_ports() as session:
        # Keep djitellopy's own stderr handler quiet; its records still reach pytest's log capture.
        handler_level = Tello.HANDLER.level
        Tello.HANDLER.setLevel(logging.CRITICAL + 1)
        try:
            yield lambda: session.tello(SIM_HOST)
        finally:
            Tello.HANDLER.setLevel(handler_level)
    alive = [t for t in session.threads if t.is_alive()]
    assert not alive, f"djitellopy threads still running: {alive}"
    assert len(session.threads) == 2
    assert len(session.sockets) == 2


def _simulator(**faults: Any) -> DroneSimulator:
    config = SimConfig(host=SIM_HOST, port=8889, state_port=8890, drone=DroneConfig(initial_battery_pct=90))
    return DroneSimulator(config, clock=ScaledClock(SPEEDUP), faults=Faults(**faults), video=None)


async def _fresh_state(sim: DroneSimulator) -> None:
    """Let a few state packets go out, so djitellopy's receiver thread has seen the latest state."""
    sent = sim.truth.state_packets_sent
    await sim.wait_for(lambda t: t.state_packets_sent >= sent + 3)


async def run(fn: Callable[..., Any], *args: Any) -> Any:
    with anyio.fail_after(8):
        return await anyio.to_thread.run_sync(fn, *args)


@pytest.mark.anyio
async def test_djitellopy_flies_a_mission(make_tello: TelloFactory) -> None:
    async with _simulator() as sim:
        tello = make_tello()
        await run(tello.connect)
        assert sim.truth.sdk_mode
        assert tello.get_battery() == 90
        assert tello.get_height() == 0
        assert await run(tello.query_battery) == 90

        await run(tello.takeoff)
        assert sim.truth.flight_state is FlightState.HOVERING
        await _fresh_state(sim)
        assert tello.get_height() == 80

        await run(tello.move_up, 50)
        await run(tello.rotate_clockwise, 90)
        await run(tello.move_forward, 100)
        await run(tello.flip_back)
        await run(tello.set_speed, 50)
        await run(tello.go_xyz_speed, 0, 50, 0, 50)
        await _fresh_state(sim)
        assert tello.get_height() == 130
        assert tello.get_yaw() == 90
        assert (tello.get_pitch(), tello.get_roll()) == (0, 0)
        assert (tello.get_speed_x(), tello.get_speed_y(), tello.get_speed_z()) == (0, 0, 0)
        assert tello.get_distance_tof() == 140
        assert tello.get_barometer() == pytest.approx(22130.0)
        assert tello.get_flight_time() >= 13
        assert tello.get_lowest_temperature() >= 60
        low, high = tello.get_lowest_temperature(), tello.get_highest_temperature()
        assert tello.get_temperature() == (low + high) / 2
        assert tello.get_acceleration_z() == -999.0
        assert tello.get_mission_pad_id() == -1
        assert tello.get_battery() == sim.truth.battery_pct

        pose = sim.truth.pose
        assert (pose.x, pose.y, pose.z, pose.yaw) == pytest.approx((50.0, -100.0, 130.0, 90.0), abs=1e-6)

        await run(tello.land)
        assert sim.truth.flight_state is FlightState.LANDED
        # djitellopy retries a command until `ok`; every action got its `ok` at once, so each ran once.
        assert [r.text for r in sim.truth.executed_actions()] == [
            "takeoff",
            "up 50",
            "cw 90",
            "forward 100",
            "flip b",
            "go 0 50 0 50",
            "land",
        ]


@pytest.mark.anyio
async def test_djitellopy_queries_and_its_parsing_bugs(make_tello: TelloFactory) -> None:
    async with _simulator() as sim:
        tello = make_tello()
        await run(tello.connect)

        def last_reply() -> str:
            return sim.truth.replies[-1].text

        # Replies djitellopy reads correctly.
        assert await run(tello.query_battery) == 90
        assert await run(tello.query_attitude) == {"pitch": 0, "roll": 0, "yaw": 0}
        assert await run(tello.query_distance_tof) == 10.0
        assert last_reply() == "100mm"
        assert await run(tello.query_wifi_signal_noise_ratio) == "90"
        assert await run(tello.query_sdk_version) == "30"
        assert await run(tello.query_serial_number) == "0TQDG7REDACTED"
        await run(tello.send_expansion_command, "led 255 0 0")
        assert last_reply() == "led ok"
        await run(tello.send_expansion_command, "mled s r A")
        assert last_reply() == "matrix ok"

        # Real reply forms djitellopy's int() cannot parse: the simulator sent exactly the
        # documented form, djitellopy raised. These are djitellopy bugs, not simulator bugs.
        for query, reply in [
            (tello.query_height, "0dm"),
            (tello.query_speed, "100.0"),
            (tello.query_flight_time, "0s"),
            (tello.query_temperature, "60~62C"),
            (tello.query_barometer, "220.00"),
        ]:
            with pytest.raises(ValueError, match="invalid literal for int"):
                await run(query)
            assert last_reply() == reply

        # djitellopy's keepalive sends `keepalive`, which this firmware does not know; it retries
        # three times and gives up. Clients must use `command` as their heartbeat.
        with pytest.raises(TelloException, match="unknown command: keepalive"):
            await run(tello.send_keepalive)
        assert sim.truth.executed_texts()[-3:] == ["keepalive"] * 3


@pytest.mark.anyio
async def test_djitellopy_errors_rc_and_emergency(make_tello: TelloFactory) -> None:
    async with _simulator(emergency_silence=1.0) as sim:
        tello = make_tello()
        await run(tello.connect)
        with pytest.raises(TelloException, match="error Motor stop"):
            await run(tello.move_forward, 50)
        with pytest.raises(TelloException, match="out of range"):
            await run(tello.move_forward, 10)
        await run(tello.takeoff)
        await run(tello.send_rc_control, 0, 50, 0, 0)
        await sim.wait_for(lambda t: t.pose.x > 20)
        await run(tello.send_rc_control, 0, 0, 0, 0)
        # djitellopy sends emergency without waiting for a reply: the motors stop regardless.
        await run(tello.emergency)
        truth = await sim.wait_for(lambda t: t.flight_state is FlightState.FALLEN)
        assert truth.events_of(EventKind.EMERGENCY)
        assert truth.pose.z == 0.0
        assert [r.reason for r in truth.dropped_replies] == ["emergency not answered"]
