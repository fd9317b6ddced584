"""VideoStreamer -> real UDP on 127.0.0.1 -> VideoReceiver."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import numpy as np
import pytest
from anyio.abc import TaskGroup
from numpy.typing import NDArray

from drone_sim.pose import Pose
from drone_sim.video import MAX_DATAGRAM, VideoStreamer, render
from servers.drone.camera import Frame, VideoReceiver, decode_jpeg
from tello_io.clock import MonotonicClock, ScaledClock

pytestmark = pytest.mark.anyio

Send = Callable[[bytes], Awaitable[None]]


def mean_abs_diff(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


@dataclass
class World:
    pose: Pose = field(default_factory=lambda: Pose(z=100.0))
    sizes: list[int] = field(default_factory=list[int])


@asynccontextmanager
async def link(
    streamer_for: Callable[[World], VideoStreamer],
    wrap: Callable[[Send], Send] = lambda send: send,
    clock: MonotonicClock | ScaledClock | None = None,
) -> AsyncGenerator[tuple[World, VideoStreamer, VideoReceiver, TaskGroup]]:
    """A receiver on an ephemeral port and a streamer sending to it; cancelled on exit."""
    world = World()
    receiver = VideoReceiver(clock or MonotonicClock(), host="127.0.0.1", port=0)
    streamer = streamer_for(world)
    async with anyio.create_task_group() as tg:
        port = await tg.start(receiver.run)
        assert port == receiver.port != 0
        async with await anyio.create_connected_udp_socket("127.0.0.1", port) as sock:

            async def send(data: bytes) -> None:
                world.sizes.append(len(data))
                await sock.send(data)

            tg.start_soon(streamer.stream, wrap(send))
            yield world, streamer, receiver, tg
            tg.cancel_scope.cancel()


def fast_streamer(world: World, gop: int = 5) -> VideoStreamer:
    # 30 frames per real second: enough frames for the test, cheap enough for two cores.
    return VideoStreamer(lambda: world.pose, MonotonicClock(), fps=30.0, gop=gop, max_real_fps=30.0)


async def test_round_trip_decodes_960x720_and_follows_yaw() -> None:
    async with link(fast_streamer) as (world, streamer, receiver, _tg):
        first = await receiver.wait_for_frame(timeout_s=5)
        assert (first.width, first.height) == (960, 720)
        before = first.to_ndarray()
        assert mean_abs_diff(before, render(world.pose)) < 6.0

        jpeg = first.to_jpeg()
        assert jpeg.startswith(b"\xff\xd8")
        assert jpeg.endswith(b"\xff\xd9")
        decoded = decode_jpeg(jpeg)
        assert (decoded.width, decoded.height) == (480, 360)

        world.pose = Pose(z=100.0, yaw=30.0)
        # Frame n+1 may have read the pose before the change; frame n+2 cannot have.
        sent = streamer.stats.frames_sent
        after = await receiver.wait_for_frame(after_seq=sent + 1, timeout_s=5)
        turned = after.to_ndarray()
        assert mean_abs_diff(turned, before) > 5.0
        assert mean_abs_diff(turned, render(world.pose)) < 6.0
        assert after.received_at > first.received_at
        assert receiver.latest() is not None
        assert max(world.sizes) <= MAX_DATAGRAM
        assert receiver.stats.frames_discarded == 0


async def test_receiver_recovers_from_dropped_datagrams_at_the_next_keyframe() -> None:
    dropped: list[int] = []

    def lossy(send: Send) -> Send:
        count = 0

        async def maybe_send(data: bytes) -> None:
            nonlocal count
            count += 1
            if 12 <= count <= 14:  # a few datagrams inside the second or third frame
                dropped.append(count)
                return
            await send(data)

        return maybe_send

    async with link(fast_streamer, lossy) as (world, streamer, receiver, _tg):
        with anyio.fail_after(5):
            while receiver.stats.resyncs < 2:  # the first keyframe, then the one after the loss
                await receiver.wait_for_frame(after_seq=receiver.stats.frames_published)
        assert dropped == [12, 13, 14]
        lost = receiver.stats
        assert lost.frames_discarded + lost.decode_errors + lost.frame_num_gaps > 0
        # Published frames are intact: each matches the (unchanging) view closely.
        frame = await receiver.wait_for_frame(after_seq=lost.frames_published, timeout_s=5)
        assert mean_abs_diff(frame.to_ndarray(), render(world.pose)) < 6.0
        assert streamer.stats.frames_sent > frame.seq  # frames were hidden, none invented


async def test_a_fast_clock_is_capped_in_real_frames_per_second() -> None:
    clock = ScaledClock(speedup=20.0)

    def streamer_for(world: World) -> VideoStreamer:
        return VideoStreamer(lambda: world.pose, clock, fps=10.0)

    async with link(streamer_for, clock=clock) as (_world, streamer, receiver, _tg):
        # 10 simulated fps at 20x would be 200 real fps: encode every 20th tick (10 real fps).
        assert streamer.stride == 20
        assert streamer.frame_period == pytest.approx(2.0)
        assert streamer.gop == 10  # about one real second between keyframes
        frame = await receiver.wait_for_frame(timeout_s=20.0)  # 1 real second
        nxt = await receiver.wait_for_frame(after_seq=frame.seq, timeout_s=20.0)
        assert nxt.received_at - frame.received_at > 1.0  # simulated seconds between frames


async def test_wait_for_frame_times_out_on_the_receivers_clock() -> None:
    clock = ScaledClock(speedup=100.0)
    receiver = VideoReceiver(clock, host="127.0.0.1", port=0)
    async with anyio.create_task_group() as tg:
        await tg.start(receiver.run)
        with anyio.fail_after(2):  # real seconds: the 10 s timeout is 0.1 s of real time
            with pytest.raises(TimeoutError):
                await receiver.wait_for_frame(timeout_s=10.0)
        assert receiver.latest() is None
        tg.cancel_scope.cancel()


async def test_receiver_survives_garbage_then_decodes() -> None:
    def garbage_first(send: Send) -> Send:
        started = False

        async def send_after_garbage(data: bytes) -> None:
            nonlocal started
            if not started:
                started = True
                rng = np.random.default_rng(3)
                for _ in range(20):
                    await send(rng.integers(0, 256, 1000, dtype=np.uint8).tobytes())
                await send(b"\x00\x00\x00\x01\x67\xff")  # a cut SPS
            await send(data)

        return send_after_garbage

    async with link(fast_streamer, garbage_first) as (world, _streamer, receiver, _tg):
        frame = await receiver.wait_for_frame(timeout_s=5)
        assert receiver.stats.datagrams > 21
        assert mean_abs_diff(frame.to_ndarray(), render(world.pose)) < 6.0


async def test_receiver_closes_its_socket_on_cancel() -> None:
    receiver = VideoReceiver(MonotonicClock(), host="127.0.0.1", port=0)
    assert not receiver.running
    port = 0
    async with anyio.create_task_group() as tg:
        port = await tg.start(receiver.run)
        assert receiver.running
        assert receiver.port == port
        tg.cancel_scope.cancel()
    assert not receiver.running
    # The port is free again.
    async with await anyio.create_udp_socket(local_host="127.0.0.1", local_port=port):
        pass


async def test_wait_for_frame_returns_at_once_when_a_fresh_frame_exists() -> None:
    async with link(fast_streamer) as (_world, _streamer, receiver, _tg):
        frame: Frame = await receiver.wait_for_frame(timeout_s=5)
        again = await receiver.wait_for_frame(after=frame.received_at - 1e-6, timeout_s=0.0)
        assert again.seq >= frame.seq
        assert frame.age(frame.received_at + 0.5) == pytest.approx(0.5)
        assert not math.isnan(frame.received_at)


async def test_streamer_keeps_going_when_send_fails() -> None:
    calls = 0
    enough = anyio.Event()

    async def flaky_send(data: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls >= 40:
            enough.set()
        if calls % 2:
            raise ConnectionRefusedError("nobody is listening")

    streamer = VideoStreamer(lambda: Pose(), MonotonicClock(), fps=30.0, gop=2, max_real_fps=30.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(streamer.stream, flaky_send)
        with anyio.fail_after(5):
            await enough.wait()
        tg.cancel_scope.cancel()
    assert streamer.stats.send_errors >= 20
    assert streamer.stats.datagrams_sent >= 19
    assert streamer.stats.frames_sent >= 2


async def test_receiver_survives_a_decoder_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def buggy_feed(original: Callable[[bytes], Frame | None]) -> Callable[[bytes], Frame | None]:
        def feed(data: bytes) -> Frame | None:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise RuntimeError("simulated decoder bug")
            return original(data)

        return feed

    world = World()
    receiver = VideoReceiver(MonotonicClock(), host="127.0.0.1", port=0)
    monkeypatch.setattr(receiver, "feed", buggy_feed(receiver.feed))
    streamer = fast_streamer(world, gop=3)
    async with anyio.create_task_group() as tg:
        port = await tg.start(receiver.run)
        async with await anyio.create_connected_udp_socket("127.0.0.1", port) as sock:
            tg.start_soon(streamer.stream, sock.send)
            frame = await receiver.wait_for_frame(timeout_s=5)
            while receiver.stats.internal_errors == 0:
                frame = await receiver.wait_for_frame(after_seq=frame.seq, timeout_s=5)
            after = await receiver.wait_for_frame(after_seq=frame.seq, timeout_s=5)
            assert after.seq > frame.seq
            tg.cancel_scope.cancel()
    assert receiver.stats.internal_errors == 1
