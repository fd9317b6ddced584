"""The simulated drone's camera: a synthetic view of a small world, streamed as H.264 like a Tello.

After `streamon` a real Tello sends raw H.264 (Annex B NAL units, SPS/PPS before every IDR) to UDP
port 11111 of the client, split across datagrams of at most 1460 bytes. `VideoStreamer` does the
same from the simulator's `Pose`:

- `render(pose)` draws a frame with numpy only (pure, deterministic): sky and a chequered floor
  split by a horizon that tilts with roll and shifts with pitch, and eight coloured posts at fixed
  world positions, so moving, climbing and turning all visibly change the picture; a gauge on the
  right edge shows the altitude.
- `H264Encoder.encode(image)` turns one frame into Annex-B bytes (libx264, ultrafast/zerolatency,
  no B-frames, SPS/PPS repeated with every keyframe) and ends each frame with an access unit
  delimiter, so a receiver's Annex-B parser can emit the frame at once instead of one frame later.
- `packetize(data)` splits the bytes into datagram payloads of at most 1460 bytes.

The streamer ticks on the injected `Clock` (a `ScaledClock` may run 20x faster than real time) but
never encodes faster than `max_real_fps` real frames per second: it stretches its frame period in
whole ticks and, if it still falls behind, skips ticks instead of sending a burst of stale frames.
Rendering + colour conversion + encoding a 960x720 frame costs ~10 ms of CPU, so that work runs in a
worker thread (numpy, swscale and libx264 all release the GIL): the simulator's command and state
sockets share the event loop and must not stall for a frame.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, Protocol, cast

import anyio
import anyio.to_thread
import av
import numpy as np
from av.error import FFmpegError
from av.packet import Packet
from av.stream import Stream
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame
from numpy.typing import NDArray

from drone_sim.pose import Pose
from tello_io.clock import Clock

__all__ = [
    "ACCESS_UNIT_DELIMITER",
    "HFOV_DEG",
    "MAX_DATAGRAM",
    "POSTS",
    "VIDEO_PORT",
    "H264Encoder",
    "Post",
    "StreamStats",
    "VideoStreamer",
    "packetize",
    "pick_h264_encoder",
    "render",
]

VIDEO_PORT: Final = 11111
"""The client port a Tello sends its video to."""

MAX_DATAGRAM: Final = 1460
"""Largest video datagram payload a Tello sends."""

HFOV_DEG: Final = 82.6
"""Horizontal field of view of the Tello camera."""

ACCESS_UNIT_DELIMITER: Final = b"\x00\x00\x00\x01\x09\xf0"
"""An H.264 AUD NAL (primary_pic_type 7 = any). Appended after every encoded frame: it is the legal
first NAL of the next access unit, and it lets an Annex-B parser (FFmpeg's h264 parser) close the
current frame without waiting for the next frame's bytes."""

CAMERA_MIN_HEIGHT_CM: Final = 5.0
"""The camera's height above the floor when landed (z = 0 is the takeoff point on the floor)."""

_Floats = NDArray[np.floating[Any]]

_SKY_TOP: Final = np.array([70, 120, 200], dtype=np.float32)
_SKY_HORIZON: Final = np.array([175, 205, 235], dtype=np.float32)
_FLOOR_LIGHT: Final = np.array([150, 140, 120], dtype=np.float32)
_FLOOR_DARK: Final = np.array([95, 90, 80], dtype=np.float32)
_FLOOR_FAR: Final = (_FLOOR_LIGHT + _FLOOR_DARK) / 2
_HORIZON_RGB: Final = (250.0, 250.0, 250.0)
_TILE_CM: Final = 100.0
_FLOOR_FADE_START_CM: Final = 600.0
_FLOOR_FADE_END_CM: Final = 1500.0


@dataclass(frozen=True, slots=True)
class Post:
    """A vertical post standing on the floor at world (x, y) cm, drawn as a flat coloured column."""

    x: float
    y: float
    rgb: tuple[int, int, int]
    radius: float = 15.0
    height: float = 250.0


def _ring_of_posts() -> tuple[Post, ...]:
    colours: list[tuple[int, int, int]] = [
        (220, 30, 30),  # straight ahead of the takeoff heading: red
        (240, 140, 20),
        (230, 220, 30),
        (40, 180, 60),
        (30, 170, 200),  # behind: cyan
        (40, 60, 210),
        (150, 50, 200),
        (230, 70, 170),
    ]
    posts: list[Post] = []
    for i, rgb in enumerate(colours):
        a = math.radians(45.0 * i)  # counter-clockwise from +x (forward) towards +y (left)
        posts.append(Post(x=400.0 * math.cos(a), y=400.0 * math.sin(a), rgb=rgb))
    return tuple(posts)


POSTS: Final[tuple[Post, ...]] = _ring_of_posts()
"""Eight posts on a 4 m circle around the takeoff point, red straight ahead at takeoff."""


def render(
    pose: Pose,
    width: int = 960,
    height: int = 720,
    *,
    hfov_deg: float = HFOV_DEG,
    posts: tuple[Post, ...] = POSTS,
) -> NDArray[np.uint8]:
    """Draw what the drone's camera sees from `pose`: an RGB image of shape (height, width, 3).

    Pure and deterministic. Conventions (matching `Pose`): yaw positive turns right (clockwise seen
    from above), so the world slides left in the image; pitch positive is nose up, so the horizon
    moves down; roll positive is right side down, so the horizon rises on the right of the image.
    Pitch is modelled as a vertical image shift (exact for the horizon, a good approximation for the
    small attitudes a Tello flies at).
    """
    if width < 2 or height < 2:
        raise ValueError(f"image must be at least 2x2, got {width}x{height}")
    cam = _Camera(pose, width, height, hfov_deg)
    img = _background(cam, pose)
    _draw_posts(img, cam, pose, posts)
    _draw_altitude_gauge(img, pose.z)
    return img


class _Camera:
    """Pinhole projection for one pose: image pixel offsets <-> the level camera frame.

    (du, dv) are offsets from the image centre (right, down); (ul, vl) the same point in a frame
    rotated by the roll and shifted by the pitch, so vl = 0 on the horizon and vl > 0 below it.
    """

    def __init__(self, pose: Pose, width: int, height: int, hfov_deg: float) -> None:
        self.width = width
        self.height = height
        self.f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        roll = math.radians(pose.roll)
        self.cos_r, self.sin_r = math.cos(roll), math.sin(roll)
        self.pitch_shift = self.f * math.tan(math.radians(max(-80.0, min(80.0, pose.pitch))))
        self.cam_h = max(pose.z, 0.0) + CAMERA_MIN_HEIGHT_CM
        yaw = math.radians(pose.yaw)
        # Forward and right unit vectors in world coordinates (x forward, y left at yaw 0).
        self.fwd = (math.cos(yaw), -math.sin(yaw))
        self.right = (-math.sin(yaw), -math.cos(yaw))

    def level(self, rows: _Floats, cols: _Floats) -> tuple[_Floats, _Floats]:
        """(ul, vl) grids for pixel centres at the given (fractional) row and column indices."""
        du = (cols - np.float32((self.width - 1) / 2))[None, :]
        dv = (rows - np.float32((self.height - 1) / 2))[:, None]
        c, s = np.float32(self.cos_r), np.float32(self.sin_r)
        ul = du * c - dv * s
        vl = dv * c + du * s - np.float32(self.pitch_shift)
        return ul, vl

    def bounding_box(self, u0: float, u1: float, v0: float, v1: float) -> tuple[int, int, int, int] | None:
        """Rows/columns (r0, r1, c0, c1) of the image covering a level-frame rectangle, or None."""
        cols: list[float] = []
        rows: list[float] = []
        for u in (u0, u1):
            for v in (v0, v1):
                vv = v + self.pitch_shift
                cols.append(self.cos_r * u + self.sin_r * vv + (self.width - 1) / 2)
                rows.append(-self.sin_r * u + self.cos_r * vv + (self.height - 1) / 2)
        c0 = max(0, math.floor(min(cols)) - 1)
        c1 = min(self.width, math.ceil(max(cols)) + 2)
        r0 = max(0, math.floor(min(rows)) - 1)
        r1 = min(self.height, math.ceil(max(rows)) + 2)
        if c0 >= c1 or r0 >= r1:
            return None
        return r0, r1, c0, c1


def _background_palette() -> NDArray[np.uint8]:
    """Colours of the background, indexed as laid out by `_background`."""
    sky_t = np.linspace(0.0, 1.0, _SKY_STEPS, dtype=np.float32)[:, None]
    sky = _SKY_HORIZON + (_SKY_TOP - _SKY_HORIZON) * sky_t
    fade_t = np.linspace(0.0, 1.0, _FADE_STEPS, dtype=np.float32)[:, None]
    dark = _FLOOR_DARK + (_FLOOR_FAR - _FLOOR_DARK) * fade_t
    light = _FLOOR_LIGHT + (_FLOOR_FAR - _FLOOR_LIGHT) * fade_t
    line = np.array([_HORIZON_RGB], dtype=np.float32)
    return np.round(np.concatenate([sky, dark, light, line])).astype(np.uint8)


_SKY_STEPS: Final = 64
_FADE_STEPS: Final = 16
_FLOOR_INDEX: Final = _SKY_STEPS
_LINE_INDEX: Final = _SKY_STEPS + 2 * _FADE_STEPS
_PALETTE: Final = _background_palette()
_BG_SUBSAMPLE: Final = 2
"""The background (sky, floor, horizon) is computed on 2x2 pixel blocks: it is smooth, and this
cuts the render cost by ~4x; the posts are drawn at full resolution on top."""


def _background(cam: _Camera, pose: Pose) -> NDArray[np.uint8]:
    """Sky gradient, chequered floor and horizon line as a (height, width, 3) RGB image."""
    k = _BG_SUBSAMPLE
    rows = np.arange(0, cam.height, k, dtype=np.float32) + np.float32((k - 1) / 2)
    cols = np.arange(0, cam.width, k, dtype=np.float32) + np.float32((k - 1) / 2)
    ul, vl = cam.level(rows, cols)
    # Sky: a vertical gradient, lighter towards the horizon (index 0 at the horizon).
    sky_scale = np.float32(_SKY_STEPS / (0.6 * cam.height))
    index = np.clip(-vl * sky_scale, 0, _SKY_STEPS - 1).astype(np.int32)
    # Floor: a 1 m chequerboard in world coordinates (position and altitude cue), fading to a flat
    # colour in the distance so the encoder does not spend bits on aliased tiles near the horizon.
    ground = vl >= 0
    vg = np.maximum(vl[ground], np.float32(0.5))
    dist = np.float32(cam.cam_h * cam.f) / vg  # cm along the (level) view direction
    lat = ul[ground] * (dist / np.float32(cam.f))
    inv_tile = np.float32(1.0 / _TILE_CM)
    wx = (np.float32(pose.x) + dist * np.float32(cam.fwd[0]) + lat * np.float32(cam.right[0])) * inv_tile
    wy = (np.float32(pose.y) + dist * np.float32(cam.fwd[1]) + lat * np.float32(cam.right[1])) * inv_tile
    parity = (np.floor(wx) + np.floor(wy)).astype(np.int32) & 1
    fade_scale = np.float32((_FADE_STEPS - 1) / (_FLOOR_FADE_END_CM - _FLOOR_FADE_START_CM))
    fade = np.clip((dist - np.float32(_FLOOR_FADE_START_CM)) * fade_scale + 0.5, 0, _FADE_STEPS - 1)
    index[ground] = _FLOOR_INDEX + parity * _FADE_STEPS + fade.astype(np.int32)
    # A bright horizon line, one block thick.
    index[np.abs(vl) < k / 2] = _LINE_INDEX
    full = np.repeat(np.repeat(index, k, axis=0), k, axis=1)[: cam.height, : cam.width]
    return np.take(_PALETTE, full, axis=0)


def _draw_posts(img: NDArray[np.uint8], cam: _Camera, pose: Pose, posts: tuple[Post, ...]) -> None:
    """Posts, far to near (painter's algorithm), each computed only within its image bounding box."""
    placed: list[tuple[float, Post]] = []
    for post in posts:
        rx, ry = post.x - pose.x, post.y - pose.y
        depth = rx * cam.fwd[0] + ry * cam.fwd[1]
        if depth > 10.0:
            placed.append((depth, post))
    placed.sort(key=lambda item: -item[0])
    for depth, post in placed:
        rx, ry = post.x - pose.x, post.y - pose.y
        u_c = cam.f * (rx * cam.right[0] + ry * cam.right[1]) / depth
        half = max(cam.f * post.radius / depth, 0.5)
        v_top = cam.f * (cam.cam_h - post.height) / depth
        v_bot = cam.f * cam.cam_h / depth
        box = cam.bounding_box(u_c - half, u_c + half, v_top, v_bot)
        if box is None:
            continue
        r0, r1, c0, c1 = box
        ul, vl = cam.level(np.arange(r0, r1, dtype=np.float32), np.arange(c0, c1, dtype=np.float32))
        inside = (np.abs(ul - np.float32(u_c)) <= half) & (vl >= v_top) & (vl <= v_bot)
        # A white band near the top makes the posts' orientation (and so the roll) readable.
        band = inside & (vl < v_top + (v_bot - v_top) * 0.12)
        region = img[r0:r1, c0:c1]
        region[inside] = post.rgb
        region[band] = (255, 255, 255)


def _draw_altitude_gauge(img: NDArray[np.uint8], z_cm: float, full_scale_cm: float = 500.0) -> None:
    """A vertical bar at the right edge, filled from the bottom in proportion to the altitude."""
    height, width = img.shape[0], img.shape[1]
    top, bottom = height // 6, height - height // 6
    left, right = width - max(4, width // 40) - 4, width - 4
    if left <= 0 or bottom <= top:
        return
    img[top:bottom, left:right] = (30, 30, 30)
    level = round((bottom - top) * min(max(z_cm, 0.0), full_scale_cm) / full_scale_cm)
    if level > 0:
        img[bottom - level : bottom, left:right] = (255, 200, 0)


class _Encoding(Protocol):
    """The part of PyAV's `VideoCodecContext` used to encode, typed fully: PyAV's stub returns a bare
    `list[Packet]`, and `Packet` is generic over its stream (unknown to pyright). Packets from a
    bare codec context belong to no container stream, so `Packet[Stream]` (the bound) is honest."""

    def encode(self, frame: VideoFrame | None = None) -> list[Packet[Stream]]: ...


def pick_h264_encoder() -> str:
    """The best software H.264 encoder in this PyAV build (libx264, else libopenh264)."""
    for name in ("libx264", "libopenh264"):
        if name in av.codecs_available:
            try:
                av.Codec(name, "w")
            except FFmpegError:  # listed but not usable in this build
                continue
            return name
    raise RuntimeError("this PyAV build has no software H.264 encoder (libx264 or libopenh264)")


class H264Encoder:
    """Sans-IO H.264 encoder: RGB frames in, Annex-B bytes out (one call per frame, no delay).

    Low-latency settings: ultrafast/zerolatency, baseline profile (no B-frames, no CABAC), a single
    encoder thread (two cores are shared with everything else), an IDR every `gop` frames with
    SPS/PPS repeated before each, so a client that joins mid-stream can decode within one GOP.
    `keyframe=True` forces an IDR now.
    """

    def __init__(
        self,
        width: int = 960,
        height: int = 720,
        *,
        fps: float = 10.0,
        gop: int = 10,
        codec_name: str | None = None,
        terminate_frames: bool = True,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"H.264 4:2:0 needs even dimensions, got {width}x{height}")
        if gop < 1:
            raise ValueError(f"gop must be >= 1, got {gop}")
        self.width = width
        self.height = height
        self.gop = gop
        self.codec_name = codec_name or pick_h264_encoder()
        self._terminate = terminate_frames
        rate = Fraction(fps).limit_denominator(1000)
        ctx = av.CodecContext.create(self.codec_name, "w")
        if not isinstance(ctx, VideoCodecContext):  # narrows the stub's generic overload
            raise TypeError(f"{self.codec_name} is not a video encoder")
        ctx.width = width
        ctx.height = height
        ctx.pix_fmt = "yuv420p"
        ctx.framerate = rate
        ctx.time_base = 1 / rate
        ctx.gop_size = gop
        ctx.max_b_frames = 0
        ctx.thread_count = 1
        if self.codec_name == "libx264":
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "profile": "baseline",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1:bframes=0",
            }
        self._ctx = ctx
        self._encoder = cast(_Encoding, ctx)
        self._pts = 0

    def encode(self, image: NDArray[np.uint8], *, keyframe: bool = False) -> bytes:
        """Encode one (height, width, 3) RGB frame; returns its Annex-B bytes (maybe empty)."""
        if image.shape != (self.height, self.width, 3):
            raise ValueError(f"expected a {self.height}x{self.width}x3 image, got {image.shape}")
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = self._pts
        frame.time_base = self._ctx.time_base
        if keyframe:
            frame.pict_type = PictureType.I
        self._pts += 1
        data = b"".join(bytes(packet) for packet in self._encoder.encode(frame))
        if data and self._terminate:
            data += ACCESS_UNIT_DELIMITER
        return data


def packetize(data: bytes, max_size: int = MAX_DATAGRAM) -> Iterator[bytes]:
    """Split an Annex-B byte string into datagram payloads of at most `max_size` bytes."""
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    view = memoryview(data)
    for start in range(0, len(data), max_size):
        yield bytes(view[start : start + max_size])


@dataclass(slots=True)
class StreamStats:
    """Counters of one `VideoStreamer` (cumulative over its `stream` calls)."""

    frames_sent: int = 0
    frames_skipped: int = 0
    """Frame ticks skipped because encoding (or the real-rate cap) could not keep up."""
    datagrams_sent: int = 0
    bytes_sent: int = 0
    keyframes_sent: int = 0
    send_errors: int = 0
    """Datagrams `send` refused with an OSError (e.g. ICMP port unreachable: nobody listening)."""
    last_encode_s: float = 0.0
    """Real (wall) seconds the last render + encode took, worker thread included."""


class VideoStreamer:
    """Streams the simulated camera as a Tello would after `streamon`.

    `stream(send)` runs until cancelled; cancel it on `streamoff`. Each call starts a fresh encoder,
    so the first frame is an IDR with SPS/PPS.
    """

    def __init__(
        self,
        pose: Callable[[], Pose],
        clock: Clock,
        fps: float = 10.0,
        width: int = 960,
        height: int = 720,
        gop: int | None = None,
        *,
        max_real_fps: float = 10.0,
        datagram_size: int = MAX_DATAGRAM,
        offload: bool = True,
    ) -> None:
        """`fps` is frames per second of `clock` time; `gop` is frames between keyframes (default:
        about one real second of encoded frames); `max_real_fps` caps the real encoding rate;
        `offload` runs render + encode in a worker thread (see the module docstring)."""
        if fps <= 0 or max_real_fps <= 0:
            raise ValueError("fps and max_real_fps must be > 0")
        if gop is not None and gop < 1:
            raise ValueError(f"gop must be >= 1, got {gop}")
        self._pose = pose
        self._clock = clock
        self.fps = fps
        self.width = width
        self.height = height
        self.max_real_fps = max_real_fps
        self.datagram_size = datagram_size
        self.offload = offload
        self.stride = self._stride()
        """Clock ticks per encoded frame: 1 unless the clock runs so fast that encoding every tick
        would exceed `max_real_fps`."""
        self.gop = gop if gop is not None else self._default_gop()
        self.stats = StreamStats()

    def _stride(self) -> int:
        real_period = self._clock.to_real(1.0 / self.fps)
        min_real_period = 1.0 / self.max_real_fps
        if real_period <= 0 or real_period >= min_real_period:
            return 1
        return math.ceil(min_real_period / real_period - 1e-9)

    def _default_gop(self) -> int:
        real_period = self._clock.to_real(self.stride / self.fps)
        if real_period <= 0:
            return max(1, round(self.fps))
        return max(1, round(1.0 / real_period))

    @property
    def frame_period(self) -> float:
        """Seconds of clock time between encoded frames."""
        return self.stride / self.fps

    def render_and_encode(self, encoder: H264Encoder, pose: Pose) -> bytes:
        """The blocking part of a frame tick (thread-safe as long as one encoder is used serially)."""
        return encoder.encode(render(pose, self.width, self.height))

    async def stream(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Send frames of the current pose via `send` (one datagram per call) until cancelled.

        An OSError from `send` is counted in `stats.send_errors` and the stream goes on; anything
        else (e.g. anyio.ClosedResourceError) ends it.
        """
        encoder = H264Encoder(self.width, self.height, fps=self.fps / self.stride, gop=self.gop)
        period = self.frame_period
        next_tick = self._clock.now()
        while True:
            await self._clock.sleep_until(next_tick)
            pose = self._pose()
            started = time.perf_counter()
            if self.offload:
                data = await anyio.to_thread.run_sync(self.render_and_encode, encoder, pose)
            else:
                data = self.render_and_encode(encoder, pose)
            self.stats.last_encode_s = time.perf_counter() - started
            if data:
                self.stats.frames_sent += 1
                if _has_idr(data):
                    self.stats.keyframes_sent += 1
                for chunk in packetize(data, self.datagram_size):
                    try:
                        await send(chunk)
                    except OSError:  # a drone keeps streaming whether or not anyone listens
                        self.stats.send_errors += 1
                        continue
                    self.stats.datagrams_sent += 1
                    self.stats.bytes_sent += len(chunk)
            next_tick += period
            now = self._clock.now()
            if next_tick < now:  # fell behind: skip the missed ticks rather than burst stale frames
                missed = math.floor((now - next_tick) / period) + 1
                next_tick += missed * period
                self.stats.frames_skipped += missed


def _has_idr(data: bytes) -> bool:
    """Whether Annex-B `data` contains an IDR slice NAL (type 5)."""
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        if data[start + 3] & 0x1F == 5:
            return True
        start = data.find(b"\x00\x00\x01", start + 3)
    return False
