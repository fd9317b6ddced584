"""The simulator over real UDP on loopback, driven by a raw client that knows nothing but the SDK."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import pytest

from drone_sim.config import DroneConfig
from drone_sim.flight import FlightState
from drone_sim.pose import Pose
from drone_sim.records import EventKind, Outcome
from drone_sim.server import DroneSimulator, SimConfig, default_video_factory
from tello_io.clock import Clock, ScaledClock

from .support import flying_rig, parse_state, raw_client

pytestmark = pytest.mark.anyio


async def test_silent_until_command_then_state_at_10_hz() -> None:
    async with flying_rig(speedup=5.0, enter_sdk=False) as (sim, client):
        await client.send("battery?", sim.address)
        truth = await sim.wait_for(lambda t: len(t.received) == 1)
        assert truth.received[0].ignored == "not in SDK mode"
        assert truth.replies == ()
        assert truth.dropped_replies == ()
        assert truth.state_packets_sent == 0

        assert await client.request("command", sim.address) == "ok"
        packet, sender = await client.state_packet()
        assert sender == sim.address
        fields = parse_state(packet)
        assert list(fields)[:5] == ["mid", "x", "y", "z", "mpry"]
        assert (fields["bat"], fields["h"], fields["agz"]) == ("100", "0", "-999.00")
        start, sent = sim.clock.now(), sim.truth.state_packets_sent
        await sim.wait_for(lambda t: sim.clock.now() >= start + 2.0)
        assert 15 <= sim.truth.state_packets_sent - sent <= 22  # 10 Hz of simulated time
        assert sim.truth.sdk_mode
        assert sim.truth.state_destination == ("127.0.0.1", client.state_port)


async def test_replies_come_from_the_bound_ephemeral_address() -> None:
    async with flying_rig(host="127.0.0.3") as (sim, client):
        host, port = sim.address
        assert host == "127.0.0.3"
        assert port != 0
        assert await client.request("sdk?", sim.address) == "30"
        assert await client.request("hardware?", sim.address) == "RMTT"
        assert [r.text for r in sim.truth.replies] == ["ok", "30", "RMTT"]
        assert all(r.to == ("127.0.0.1", client.command_port) for r in sim.truth.replies)


async def test_a_short_flight_replies_when_each_action_is_done() -> None:
    async with flying_rig(speedup=40.0) as (sim, client):
        clock = sim.clock
        for text, duration in [
            ("takeoff", 5.5),
            ("up 50", 1.5),
            ("cw 90", 1.5),
            ("flip b", 2.0),
            ("forward 100", 2.0),
        ]:
            started = clock.now()
            assert await client.request(text, sim.address) == "ok", text
            assert clock.now() - started >= duration, text  # never answered before it is done
            record = sim.truth.executed[-1]
            assert record.text == text
            assert record.finished_t is not None
            assert record.finished_t - record.t == pytest.approx(duration)
        assert await client.request("height?", sim.address) == "13dm"
        fields = await client.state_where(lambda f: f["h"] == "130" and f["yaw"] == "90")
        assert int(fields["time"]) >= 8
        assert int(fields["templ"]) > 60
        pose = sim.truth.pose
        assert (pose.x, pose.y, pose.z) == pytest.approx((0.0, -100.0, 130.0), abs=1e-6)
        assert await client.request("land", sim.address) == "ok"
        assert sim.truth.flight_state is FlightState.LANDED
        assert [r.text for r in sim.truth.executed_actions()] == [
            "takeoff",
            "up 50",
            "cw 90",
            "flip b",
            "forward 100",
            "land",
        ]


async def test_stop_interrupts_a_move_and_reads_are_answered_meanwhile() -> None:
    async with flying_rig(speedup=40.0) as (sim, client):
        assert await client.request("takeoff", sim.address) == "ok"
        assert await client.request("speed 10", sim.address) == "ok"  # 50 s of simulated travel
        await client.send("forward 500", sim.address)
        await sim.wait_for(lambda t: t.flight_state is FlightState.MOVING and t.pose.x > 20)
        assert (await client.request("battery?", sim.address)).isdigit()
        assert await client.request("back 20", sim.address) == "error Not joystick"
        await client.send("stop", sim.address)
        assert [(await client.reply())[0], (await client.reply())[0]] == ["forced stop", "ok"]
        move = next(r for r in sim.truth.executed if r.text == "forward 500")
        assert move.outcome is Outcome.INTERRUPTED
        assert 0 < sim.truth.pose.x < 500


async def test_rc_is_never_answered() -> None:
    async with flying_rig(speedup=40.0) as (sim, client):
        assert await client.request("takeoff", sim.address) == "ok"
        await client.send("rc 0 100 0 0", sim.address)
        await sim.wait_for(lambda t: t.pose.x > 50)
        assert await client.request("stop", sim.address) == "ok"  # the next reply is stop's, not rc's
        assert [r.text for r in sim.truth.replies] == ["ok", "ok", "ok"]


async def test_state_destination_port_can_change_at_runtime() -> None:
    async with flying_rig() as (sim, client), raw_client() as other:
        await client.state_packet()
        sim.state_port = other.state_port
        packet, sender = await other.state_packet()
        assert sender == sim.address
        assert parse_state(packet)["bat"] == "100"
        assert sim.truth.state_destination == ("127.0.0.1", other.state_port)


async def test_two_simulators_at_once() -> None:
    async with (
        flying_rig(host="127.0.0.4", drone=DroneConfig(serial="SIMFOUR")) as (four, client4),
        flying_rig(host="127.0.0.5", drone=DroneConfig(serial="SIMFIVE")) as (five, client5),
    ):
        assert four.address[0] == "127.0.0.4"
        assert five.address[0] == "127.0.0.5"
        assert await client4.request("sn?", four.address) == "SIMFOUR"
        assert await client5.request("sn?", five.address) == "SIMFIVE"
        assert await client4.request("takeoff", four.address) == "ok"
        assert four.truth.flying
        assert not five.truth.flying
        assert (await client4.state_packet())[1] == four.address
        assert (await client5.state_packet())[1] == five.address


async def test_same_port_number_on_two_loopback_addresses() -> None:
    async with flying_rig(host="127.0.0.4") as (first, client):
        port = first.address[1]
        config = SimConfig(host="127.0.0.6", port=port, state_port=client.state_port)
        async with DroneSimulator(config, clock=ScaledClock(20), video=None) as second:
            assert second.address == ("127.0.0.6", port)
            assert await client.request("command", second.address) == "ok"
            assert await client.request("sn?", first.address) == "0TQDG7REDACTED"


async def test_shares_its_port_with_a_wildcard_client_thanks_to_so_reuseaddr() -> None:
    async with DroneSimulator(SimConfig(host="127.0.0.2", port=0), clock=ScaledClock(20), video=None) as sim:
        port = sim.address[1]
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        raw.bind(("0.0.0.0", port))  # what djitellopy does, plus SO_REUSEADDR
        raw.setblocking(False)
        async with await anyio.abc.UDPSocket.from_socket(raw) as wildcard:
            await wildcard.send((b"command", sim.address))
            with anyio.fail_after(5):
                data, sender = await wildcard.receive()
            assert (data, sender) == (b"ok", sim.address)


async def test_wait_for_is_bounded() -> None:
    async with flying_rig(speedup=50.0) as (sim, _):
        with pytest.raises(TimeoutError):
            await sim.wait_for(lambda t: t.flying, timeout_s=1.0)


async def test_exiting_closes_the_socket_and_leaves_no_task_behind() -> None:
    tasks_before = len(asyncio.all_tasks())
    sim = DroneSimulator(SimConfig(host="127.0.0.1", port=0), clock=ScaledClock(20), video=None)
    async with sim.running() as running:
        assert running is sim
        assert sim.is_running
        address = sim.address
        assert len(asyncio.all_tasks()) > tasks_before
    assert not sim.is_running
    assert len(asyncio.all_tasks()) == tasks_before
    # The port is free again at once, without SO_REUSEADDR.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(address)
    with pytest.raises(RuntimeError):
        await sim.wait_for(lambda t: True)
    # And it can run again.
    async with sim, raw_client() as client:
        assert await client.request("command", sim.address) == "ok"


class FakeStreamer:
    """Stands in for drone_sim.video.VideoStreamer: one small datagram per simulated half second."""

    def __init__(self, pose: Callable[[], Pose], clock: Clock) -> None:
        self.pose = pose
        self.clock = clock
        self.frames = 0
        self.cancelled = False

    async def stream(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        try:
            while True:
                await send(f"frame {self.frames} z={self.pose().z:.0f}".encode())
                self.frames += 1
                await self.clock.sleep(0.5)
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise


async def test_streamon_streams_video_to_the_sender_until_streamoff() -> None:
    streamers: list[FakeStreamer] = []

    def factory(pose: Callable[[], Pose], clock: Clock) -> FakeStreamer:
        streamers.append(FakeStreamer(pose, clock))
        return streamers[-1]

    async with flying_rig(video=factory) as (sim, client):
        assert not sim.video_streaming
        assert await client.request("streamon", sim.address) == "ok"
        with anyio.fail_after(5):
            data, sender = await client.video.receive()
        assert (data, sender) == (b"frame 0 z=0", sim.address)
        assert sim.video_streaming
        assert sim.truth.video_to == ("127.0.0.1", client.video_port)
        assert streamers[0].clock is sim.clock
        assert await client.request("streamoff", sim.address) == "ok"
        await sim.wait_for(lambda t: streamers[0].cancelled)
        assert not sim.video_streaming

        assert await client.request("streamon", sim.address) == "ok"
        await sim.wait_for(lambda t: len(streamers) == 2 and streamers[1].frames > 0)
        sim.power_off()
        await sim.wait_for(lambda t: streamers[1].cancelled)
        assert not sim.video_streaming
        assert sim.truth.video_to is None


async def test_a_failing_video_streamer_does_not_take_the_drone_down() -> None:
    def broken(pose: Callable[[], Pose], clock: Clock) -> FakeStreamer:
        raise RuntimeError("no camera")

    async with flying_rig(video=broken) as (sim, client):
        assert await client.request("streamon", sim.address) == "ok"
        truth = await sim.wait_for(lambda t: bool(t.events_of(EventKind.VIDEO_FAILED)))
        assert "no camera" in truth.events_of(EventKind.VIDEO_FAILED)[0].detail
        assert await client.request("battery?", sim.address) == "100"


async def test_default_video_is_drone_sim_videos_h264_stream() -> None:
    from drone_sim.video import VideoStreamer

    assert default_video_factory() is VideoStreamer
    assert DroneSimulator(video=None).video_factory is None
    async with flying_rig(speedup=1.0, video=default_video_factory()) as (sim, client):
        assert sim.video_factory is VideoStreamer
        assert await client.request("streamon", sim.address) == "ok"
        with anyio.fail_after(10):
            data, sender = await client.video.receive()
        assert sender == sim.address
        assert 0 < len(data) <= 1460
        assert data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))  # Annex B H.264
        assert await client.request("streamoff", sim.address) == "ok"
        await sim.wait_for(lambda t: not sim.video_streaming)
