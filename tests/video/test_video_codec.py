"""Sans-IO pieces: H264Encoder, packetize, H264StreamDecoder (loss handling) and to_jpeg."""

from __future__ import annotations

from collections.abc import Iterable

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from drone_sim.pose import Pose
from drone_sim.video import ACCESS_UNIT_DELIMITER, MAX_DATAGRAM, H264Encoder, packetize, render
from servers.drone.camera import H264StreamDecoder, decode_jpeg, to_jpeg

GOP = 5


def mean_abs_diff(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def rgb(frame: av.VideoFrame) -> NDArray[np.uint8]:
    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def nal_types(data: bytes) -> list[int]:
    types: list[int] = []
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        types.append(data[start + 3] & 0x1F)
        start = data.find(b"\x00\x00\x01", start + 3)
    return types


def poses(n: int) -> list[Pose]:
    return [Pose(x=8.0 * i, z=100.0, yaw=3.0 * i) for i in range(n)]


@pytest.fixture(scope="module")
def stream() -> list[list[bytes]]:
    """Datagrams of 3 GOPs + 2 frames of a moving view, one list per frame."""
    encoder = H264Encoder(gop=GOP)
    return [list(packetize(encoder.encode(render(p)))) for p in poses(3 * GOP + 2)]


def decode(decoder: H264StreamDecoder, frames: Iterable[list[bytes]]) -> list[int]:
    """Frames published per input frame."""
    return [sum(len(decoder.feed(chunk)) for chunk in chunks) for chunks in frames]


def test_encoder_emits_headers_and_idr_every_gop(stream: list[list[bytes]]) -> None:
    frames = [b"".join(chunks) for chunks in stream]
    for i, data in enumerate(frames):
        types = nal_types(data)
        assert data.endswith(ACCESS_UNIT_DELIMITER)
        if i % GOP == 0:
            assert types[:2] == [7, 8], types  # SPS, PPS before every keyframe
            assert 5 in types
        else:
            assert 5 not in types
            assert 7 not in types
            assert 1 in types


def test_packetize_limits_datagrams(stream: list[list[bytes]]) -> None:
    sizes = [len(chunk) for chunks in stream for chunk in chunks]
    assert max(sizes) == MAX_DATAGRAM  # keyframes span several datagrams
    assert all(0 < s <= MAX_DATAGRAM for s in sizes)
    data = bytes(range(256)) * 20
    assert b"".join(packetize(data, 100)) == data
    assert [len(c) for c in packetize(data, 1000)] == [1000] * 5 + [120]


def test_decoder_returns_each_frame_on_arrival(stream: list[list[bytes]]) -> None:
    decoder = H264StreamDecoder()
    last: av.VideoFrame | None = None
    for pose, chunks in zip(poses(len(stream)), stream, strict=True):
        frames = [f for chunk in chunks for f in decoder.feed(chunk)]
        assert len(frames) == 1  # no one-frame parser delay, thanks to the trailing AUD
        last = frames[0]
        assert (last.width, last.height) == (960, 720)
        assert mean_abs_diff(rgb(last), render(pose)) < 6.0
    assert decoder.stats.frames_discarded == 0
    assert decoder.stats.decode_errors == 0


def test_joining_mid_stream_waits_for_a_keyframe(stream: list[list[bytes]]) -> None:
    decoder = H264StreamDecoder()
    published = decode(decoder, stream[2:])
    assert published == [0] * (GOP - 2) + [1] * (len(stream) - GOP)


@pytest.mark.parametrize(
    ("frame", "drop"),
    [
        pytest.param(GOP + 1, "all", id="whole-P-frame"),
        pytest.param(GOP + 1, 0, id="first-datagram"),
        pytest.param(GOP + 2, -1, id="last-datagram"),
        pytest.param(GOP, 2, id="inside-keyframe"),
    ],
)
def test_loss_hides_frames_until_the_next_keyframe(
    stream: list[list[bytes]], frame: int, drop: int | str
) -> None:
    lossy = [list(chunks) for chunks in stream]
    if drop == "all":
        lossy[frame] = []
    else:
        assert isinstance(drop, int)
        del lossy[frame][drop]
    decoder = H264StreamDecoder()
    published = decode(decoder, lossy)
    next_key = (frame // GOP + 1) * GOP
    assert published[:frame] == [1] * frame  # intact before the loss (or right after, see below)
    assert published[frame + 1 : next_key] == [0] * (next_key - frame - 1)  # never a smeared picture
    assert published[next_key:] == [1] * (len(stream) - next_key)  # recovered at the keyframe
    assert decoder.stats.resyncs == 2
    assert decoder.stats.frames_discarded + decoder.stats.decode_errors >= next_key - frame - 1


def test_decoder_survives_garbage(stream: list[list[bytes]]) -> None:
    decoder = H264StreamDecoder()
    rng = np.random.default_rng(7)
    for _ in range(50):
        decoder.feed(rng.integers(0, 256, 1460, dtype=np.uint8).tobytes())
    decoder.feed(b"\x00\x00\x00\x01\x67\xff\xff")  # a cut SPS
    assert decode(decoder, stream)[GOP:] == [1] * (len(stream) - GOP)


def test_to_jpeg_is_a_valid_downscaled_jpeg(stream: list[list[bytes]]) -> None:
    decoder = H264StreamDecoder()
    frame = next(f for chunk in stream[0] for f in decoder.feed(chunk))
    jpeg = to_jpeg(frame)
    assert jpeg[:2] == b"\xff\xd8"
    assert jpeg[-2:] == b"\xff\xd9"
    assert len(jpeg) < 40_000
    back = decode_jpeg(jpeg)
    assert (back.width, back.height) == (480, 360)
    expected = rgb(frame.reformat(width=480, height=360))
    assert mean_abs_diff(rgb(back), expected) < 6.0
    # Full size and quality control.
    full = to_jpeg(frame, size=None, quality=95)
    big = decode_jpeg(full)
    assert (big.width, big.height) == (960, 720)
    assert len(to_jpeg(frame, quality=10)) < len(jpeg) < len(to_jpeg(frame, quality=100))
    with pytest.raises(ValueError, match="quality"):
        to_jpeg(frame, quality=0)
    for bad in (b"", b"garbage"):
        with pytest.raises(ValueError, match="JPEG"):
            decode_jpeg(bad)


def test_encoder_rejects_wrong_shapes() -> None:
    encoder = H264Encoder(320, 240)
    with pytest.raises(ValueError, match="240x320x3"):
        encoder.encode(np.zeros((720, 960, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="even"):
        H264Encoder(321, 240)


_NAL_HEADERS = [b"\x67", b"\x68", b"\x65", b"\x41", b"\x01", b"\x27\x64", b"\x09"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(_NAL_HEADERS), st.binary(max_size=80)),
        max_size=12,
    )
)
def test_fuzzed_headers_never_break_the_decoder(
    stream: list[list[bytes]], nals: list[tuple[bytes, bytes]]
) -> None:
    decoder = H264StreamDecoder()
    junk = b"".join(b"\x00\x00\x00\x01" + head + body for head, body in nals)
    decoder.feed(junk + b"\x00\x00\x00\x01\x09\xf0")
    # A clean keyframe afterwards is decoded.
    published = decode(decoder, stream[:GOP])
    assert published[1:] == [1] * (GOP - 1)
