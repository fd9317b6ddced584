"""The drone's video channel, client side: receive, reassemble and decode the H.264 stream.

After `streamon` a Tello sends raw H.264 (Annex B) to UDP port 11111, split across datagrams of at
most 1460 bytes with no header of their own. `VideoReceiver` concatenates the payloads into FFmpeg's
h264 parser, decodes every access unit with PyAV (P-frames need every predecessor) and keeps only the
latest good frame with the `Clock` time it arrived; JPEG encoding happens only on demand
(`to_jpeg`): following the simulator's stream costs ~1 ms of CPU per frame, in the event loop
(a Tello's 30 fps of real video should cost a few % of a core: not worth a worker thread).

Loss. UDP drops datagrams, and a raw Annex-B stream has no sequence numbers. The decoder itself
reports a frame it had to conceal (`VideoFrame.is_corrupt`) and raises on undecodable data, but it
silently decodes a P-frame whose reference frame was lost entirely. So `H264StreamDecoder` also
tracks the slice headers' `frame_num` (which counts reference frames) and treats a gap as loss.
After any loss it publishes nothing until the next keyframe (an IDR, or an access unit made only of
I slices) decodes cleanly: a caller never gets a smeared picture, only an older good one. Known
limit: a stream using MMCO 5 (frame_num reset without an IDR) would cost one needless resync per
use; Tello and x264 streams do not use it.

Latency. FFmpeg's parser closes an access unit when it sees the start of the next one, i.e. one frame
(~33 ms on a Tello) late. The simulator ends every frame with an access unit delimiter so its frames
are decoded on arrival.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Protocol, cast

import anyio
import av
import numpy as np
import structlog
from anyio.abc import TaskStatus
from av.error import FFmpegError
from av.packet import Packet
from av.stream import Stream
from av.video.frame import VideoFrame
from numpy.typing import NDArray

from tello_io.clock import Clock
from tello_io.datagram import Address, DatagramNetwork, UdpNetwork

__all__ = [
    "JPEG_SIZE",
    "VIDEO_PORT",
    "Frame",
    "H264StreamDecoder",
    "ReceiverStats",
    "VideoReceiver",
    "decode_jpeg",
    "to_jpeg",
]

_log = structlog.get_logger("drone.camera")

VIDEO_PORT: Final = 11111
"""The port a Tello sends its video to."""

JPEG_SIZE: Final = (480, 360)
"""Default (width, height) of `to_jpeg`: a quarter of the 960x720 frame keeps tool results small."""

_RECV_BUFFER_BYTES: Final = 1 << 20
"""Kernel receive buffer asked for: ~1 s of Tello video, so a busy event loop does not drop data."""

VideoSource = tuple[str, int | None]
"""Who may send video: the drone's host, and its port when known (None: any port of that host).
A Tello sends video from its own address but the reference gives no source port."""


class _Decoding(Protocol):
    """The part of PyAV's `VideoCodecContext` used to decode, typed fully: PyAV's stub uses a bare
    `Packet`, which is generic over its stream and so unknown to pyright. Packets parsed by a bare
    codec context belong to no container stream; `Packet[Stream]` (the bound) is honest."""

    def parse(self, raw_input: bytes | None = None) -> list[Packet[Stream]]: ...

    def decode(self, packet: Packet[Stream] | None = None) -> list[VideoFrame]: ...


class _Encoding(Protocol):
    """As `_Decoding`, for the JPEG encoder."""

    def encode(self, frame: VideoFrame | None = None) -> list[Packet[Stream]]: ...


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded video frame and when it arrived."""

    image: VideoFrame
    """The decoded picture (yuv420p as sent by the drone); convert with `to_ndarray` / `to_jpeg`."""
    received_at: float
    """`Clock` time at which the datagram completing this frame arrived."""
    seq: int
    """1 for the first frame this receiver published, then +1 per published frame."""
    keyframe: bool

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    def age(self, now: float) -> float:
        """Seconds (of the receiver's clock) since this frame arrived, for `now` on that clock."""
        return now - self.received_at

    def to_ndarray(self) -> NDArray[np.uint8]:
        """The picture as a (height, width, 3) RGB array."""
        return _rgb(self.image)

    def to_jpeg(self, quality: int = 80, size: tuple[int, int] | None = JPEG_SIZE) -> bytes:
        """See `to_jpeg`."""
        return to_jpeg(self, quality=quality, size=size)


def _rgb(image: VideoFrame) -> NDArray[np.uint8]:
    # PyAV's stub types `to_ndarray` as any supported dtype; rgb24 is always uint8.
    return cast("NDArray[np.uint8]", image.to_ndarray(format="rgb24"))


def to_jpeg(frame: Frame | VideoFrame, quality: int = 80, size: tuple[int, int] | None = JPEG_SIZE) -> bytes:
    """Encode a frame as a baseline JFIF JPEG with FFmpeg's mjpeg encoder (no Pillow/OpenCV).

    `quality` is 1 (smallest) .. 100 (best), mapped linearly onto the MJPEG quantiser 31 .. 2.
    `size` is the output (width, height), or None for the frame's own size. A 480x360 JPEG of the
    simulator's view is ~10 kB and takes ~3 ms.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    image = frame.image if isinstance(frame, Frame) else frame
    width, height = size if size is not None else (image.width, image.height)
    if width < 2 or height < 2:
        raise ValueError(f"size must be at least 2x2, got {width}x{height}")
    width, height = width & ~1, height & ~1  # 4:2:0 chroma needs even dimensions
    qscale = round(2 + (100 - quality) * 29 / 99)
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = "yuv420p"
    ctx.color_range = _JPEG_RANGE  # full range: makes yuv420p a valid JFIF pixel format
    ctx.time_base = Fraction(1, 1)
    ctx.qmin = qscale
    ctx.qmax = qscale
    scaled = image.reformat(
        width=width,
        height=height,
        format="yuv420p",
        dst_color_range=_JPEG_RANGE,
        interpolation="AREA" if width < image.width else "BILINEAR",
    )
    scaled.pts = 0
    encoder = cast(_Encoding, ctx)
    packets = encoder.encode(scaled) + encoder.encode(None)
    return b"".join(bytes(packet) for packet in packets)


_JPEG_RANGE: Final = 2  # AVCOL_RANGE_JPEG


def decode_jpeg(data: bytes) -> VideoFrame:
    """Decode one JPEG (e.g. from `to_jpeg`) with FFmpeg's mjpeg decoder.

    Raises ValueError if `data` is not a decodable JPEG.
    """
    decoder = cast(_Decoding, av.CodecContext.create("mjpeg", "r"))
    frames: list[VideoFrame] = []
    if data:  # an empty packet would mean "flush"
        try:
            frames = decoder.decode(Packet(data)) + decoder.decode(None)
        except FFmpegError as e:
            raise ValueError(f"not a decodable JPEG: {e}") from e
    if not frames:
        raise ValueError("not a decodable JPEG")
    return frames[0]


@dataclass(slots=True)
class ReceiverStats:
    """Counters of one receiver (cumulative)."""

    datagrams: int = 0
    bytes: int = 0
    access_units: int = 0
    """Access units (frames) the parser reassembled."""
    frames_decoded: int = 0
    frames_published: int = 0
    frames_discarded: int = 0
    """Decoded but not published: corrupt, or while waiting for a keyframe after loss."""
    decode_errors: int = 0
    frame_num_gaps: int = 0
    """Lost reference frames detected from the slice headers."""
    resyncs: int = 0
    """Times a keyframe restored a clean picture after loss."""
    internal_errors: int = 0
    """Unexpected exceptions while decoding (bugs); each restarts the decoder."""
    last_decode_s: float = 0.0
    """Real (CPU wall) seconds the last parse + decode took."""
    foreign_datagrams: int = 0
    """Datagrams dropped unread because they did not come from the drone (`accept_only`)."""


class H264StreamDecoder:
    """Sans-IO: Annex-B bytes in any chunking in, clean decoded frames out, with loss handling.

    Every `feed` may return frames; a frame is returned only if it and every frame it depends on
    arrived intact since the last keyframe (see the module docstring).
    """

    def __init__(self, stats: ReceiverStats | None = None) -> None:
        ctx = av.CodecContext.create("h264", "r")
        ctx.thread_count = 1  # frame threading would delay output by a frame per thread
        self._codec = cast(_Decoding, ctx)  # the same object, seen through a fully typed protocol
        self.stats = stats if stats is not None else ReceiverStats()
        self.synced = False
        """True while the published picture is known to be intact."""
        self._headers = _HeaderTracker()

    def feed(self, data: bytes) -> list[VideoFrame]:
        """Add received bytes; return the frames that became available and are intact."""
        out: list[VideoFrame] = []
        if not data:  # PyAV's parse() treats empty input as end of stream and flushes
            return out
        for packet in self._codec.parse(data):
            out.extend(self._decode(packet))
        return out

    def _decode(self, packet: Packet[Stream]) -> Iterator[VideoFrame]:
        self.stats.access_units += 1
        info = self._headers.inspect(bytes(packet))
        if info.gap:
            self.stats.frame_num_gaps += 1
            self.synced = False
        if info.sync_point and not self.synced:
            self.synced = True
            self.stats.resyncs += 1
        try:
            frames = self._codec.decode(packet)
        except FFmpegError:  # undecodable data (loss, or joined mid-stream): wait for a keyframe
            self.stats.decode_errors += 1
            self.synced = False
            return
        for image in frames:
            self.stats.frames_decoded += 1
            if image.is_corrupt:
                self.synced = False
            if not self.synced:
                self.stats.frames_discarded += 1
                continue
            yield image


@dataclass(frozen=True, slots=True)
class _AccessUnitInfo:
    sync_point: bool = False
    """An IDR, or only I slices: decodable on its own."""
    gap: bool = False
    """frame_num shows that at least one reference frame before this one is missing."""


class _HeaderTracker:
    """Follows SPS/PPS and slice headers just far enough to check frame_num continuity."""

    def __init__(self) -> None:
        self._sps: dict[int, _Sps] = {}
        self._pps: dict[int, int] = {}  # pps id -> sps id
        self._prev_ref_frame_num: int | None = None
        self._slice_sps: _Sps | None = None

    def inspect(self, access_unit: bytes) -> _AccessUnitInfo:
        first_slice: tuple[int, int, int | None] | None = None  # nal type, nal_ref_idc, frame_num
        sps: _Sps | None = None  # of the first slice
        all_intra = True
        has_slice = False
        for nal in _nal_units(access_unit):
            nal_type = nal[0] & 0x1F
            try:
                if nal_type == 7:
                    sps_id, parsed = _parse_sps(_unescape(nal[1:_MAX_SPS_BYTES]))
                    self._sps[sps_id] = parsed
                elif nal_type == 8:
                    pps_id, sps_id = _parse_pps(_unescape(nal[1:16]))
                    self._pps[pps_id] = sps_id
                elif nal_type in (1, 5):
                    has_slice = True
                    reader = _BitReader(_unescape(nal[1:32]))
                    reader.ue()  # first_mb_in_slice
                    slice_type = reader.ue()
                    all_intra = all_intra and slice_type % 5 in (2, 4)  # I or SI
                    if first_slice is None:
                        first_slice = (nal_type, (nal[0] >> 5) & 3, self._frame_num(reader))
                        sps = self._slice_sps
            except _BadHeader:  # damaged or cut header: no verdict from this NAL
                all_intra = False
        if first_slice is None:
            return _AccessUnitInfo()
        nal_type, ref_idc, frame_num = first_slice
        idr = nal_type == 5
        gap = False
        if frame_num is not None:
            prev = self._prev_ref_frame_num
            if not idr and prev is not None and sps is not None and not sps.gaps_allowed:
                gap = frame_num != (prev + 1) % (1 << sps.log2_max_frame_num)
            if ref_idc:
                self._prev_ref_frame_num = frame_num
        elif idr:
            self._prev_ref_frame_num = 0
        else:
            self._prev_ref_frame_num = None  # cannot follow until the next readable header
        return _AccessUnitInfo(sync_point=idr or (has_slice and all_intra), gap=gap)

    def _frame_num(self, reader: _BitReader) -> int | None:
        """frame_num from a slice header positioned at pic_parameter_set_id (None if unknown);
        sets `_slice_sps` to the SPS it used."""
        pps_id = reader.ue()
        sps = self._slice_sps = self._sps.get(self._pps.get(pps_id, -1))
        if sps is None:
            return None
        if sps.separate_colour_plane:
            reader.bits(2)
        return reader.bits(sps.log2_max_frame_num)


@dataclass(frozen=True, slots=True)
class _Sps:
    log2_max_frame_num: int
    separate_colour_plane: bool
    gaps_allowed: bool


class _BadHeader(Exception):
    """A header is cut short or holds values no valid stream has (loss or garbage)."""


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bit(self) -> int:
        byte = self._pos >> 3
        if byte >= len(self._data):
            raise _BadHeader
        value = (self._data[byte] >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise _BadHeader
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


_MAX_SPS_BYTES: Final = 512
"""Longer than any real SPS (scaling lists included); bounds the work on garbage."""

_HIGH_PROFILES: Final = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def _parse_sps(rbsp: bytes) -> tuple[int, _Sps]:
    reader = _BitReader(rbsp)
    profile_idc = reader.bits(8)
    reader.bits(16)  # constraint flags, level_idc
    sps_id = reader.ue()
    separate_colour_plane = False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = reader.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = bool(reader.bit())
        reader.ue()  # bit_depth_luma_minus8
        reader.ue()  # bit_depth_chroma_minus8
        reader.bit()  # qpprime_y_zero_transform_bypass_flag
        if reader.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if reader.bit():
                    _skip_scaling_list(reader, 16 if i < 6 else 64)
    log2_max_frame_num = reader.ue() + 4
    if sps_id > 31 or log2_max_frame_num > 16:  # the standard's limits
        raise _BadHeader
    poc_type = reader.ue()
    if poc_type == 0:
        reader.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        reader.bit()  # delta_pic_order_always_zero_flag
        reader.se()  # offset_for_non_ref_pic
        reader.se()  # offset_for_top_to_bottom_field
        cycle = reader.ue()
        if cycle > 255:
            raise _BadHeader
        for _ in range(cycle):
            reader.se()
    reader.ue()  # max_num_ref_frames
    gaps_allowed = bool(reader.bit())
    return sps_id, _Sps(log2_max_frame_num, separate_colour_plane, gaps_allowed)


def _parse_pps(rbsp: bytes) -> tuple[int, int]:
    """(pps id, sps id) from the start of a PPS."""
    reader = _BitReader(rbsp)
    pps_id, sps_id = reader.ue(), reader.ue()
    if pps_id > 255 or sps_id > 31:  # the standard's limits
        raise _BadHeader
    return pps_id, sps_id


def _skip_scaling_list(reader: _BitReader, size: int) -> None:
    last, next_scale = 8, 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last + reader.se() + 256) % 256
        last = next_scale if next_scale != 0 else last


def _nal_units(data: bytes) -> Iterator[bytes]:
    """The NAL units (header byte first) of an Annex-B byte string."""
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        start = data.find(b"\x00\x00\x01", begin)
        end = len(data) if start == -1 else start
        nal = data[begin:end].rstrip(b"\x00")  # trailing zeros belong to the next 4-byte start code
        if nal:
            yield nal


def _unescape(payload: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00)."""
    return payload.replace(b"\x00\x00\x03", b"\x00\x00") if b"\x00\x00\x03" in payload else payload


class VideoReceiver:
    """Receives the drone's video on UDP and keeps the latest intact frame.

    ```
    receiver = VideoReceiver(clock, host="0.0.0.0")
    async with anyio.create_task_group() as tg:
        port = await tg.start(receiver.run)
        ...
        frame = await receiver.wait_for_frame(after=clock.now(), timeout_s=3)
        jpeg = frame.to_jpeg()
    ```
    """

    def __init__(
        self,
        clock: Clock,
        host: str = "0.0.0.0",
        port: int = VIDEO_PORT,
        *,
        network: DatagramNetwork | None = None,
    ) -> None:
        """`port` 0 binds an ephemeral port (tests); read it from `port` or `run`'s start value."""
        self._clock = clock
        self._network: DatagramNetwork = network or UdpNetwork()
        self.host = host
        self._requested_port = port
        self._bound_port: int | None = None
        self.stats = ReceiverStats()
        self._decoder = H264StreamDecoder(self.stats)
        self._latest: Frame | None = None
        self._new_frame: anyio.Event | None = None  # created lazily: needs a running event loop
        self._source: Callable[[], VideoSource] | None = None

    def accept_only(self, source: Callable[[], VideoSource] | None) -> None:
        """Take video only from `source()`, asked per datagram (the drone may be re-pointed):
        a host, or a host and port where the sender's port is known. Anything else is dropped
        unread and counted in `stats.foreign_datagrams`, as the link drops foreign replies and
        state: another process on the network must not be able to choose what `capture_photo`
        shows. None accepts every sender (the default, for tests of the decoder alone)."""
        self._source = source

    def _accepts(self, sender: Address) -> bool:
        if self._source is None:
            return True
        host, port = self._source()
        return sender[0] == host and (port is None or sender[1] == port)

    @property
    def port(self) -> int:
        """The bound UDP port while running, else the configured one."""
        return self._bound_port if self._bound_port is not None else self._requested_port

    @property
    def running(self) -> bool:
        return self._bound_port is not None

    async def run(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the bound port through `task_status`, and receive until cancelled.

        The socket is closed on exit. Never raises on bad video data (not even on a decoder bug:
        that is logged, counted in `stats.internal_errors` and the decoder restarted); socket
        errors propagate.
        """
        async with await self._network.bind(
            self.host, self._requested_port, receive_buffer=_RECV_BUFFER_BYTES
        ) as sock:
            self._bound_port = sock.local_address[1]
            task_status.started(self._bound_port)
            try:
                async for data, sender in sock:
                    if not self._accepts(sender):
                        self.stats.foreign_datagrams += 1
                        continue
                    try:
                        self.feed(data)
                    except Exception:  # a decoder bug must not take the video down: log, restart
                        _log.exception("video_decode_failed", action="decoder restarted")
                        self.stats.internal_errors += 1
                        self._decoder = H264StreamDecoder(self.stats)
            finally:
                self._bound_port = None

    def feed(self, data: bytes) -> Frame | None:
        """Process one datagram (called by `run`; public for tests and other transports).

        Returns the newest frame it completed, if any.
        """
        self.stats.datagrams += 1
        self.stats.bytes += len(data)
        started = time.perf_counter()
        images = self._decoder.feed(data)
        self.stats.last_decode_s = time.perf_counter() - started
        if not images:
            return None
        now = self._clock.now()
        frame: Frame | None = None
        for image in images:
            self.stats.frames_published += 1
            frame = Frame(image, now, self.stats.frames_published, bool(image.key_frame))
        self._latest = frame
        event, self._new_frame = self._new_frame, None
        if event is not None:
            event.set()
        return frame

    def latest(self) -> Frame | None:
        """The newest intact frame, or None before the first one."""
        return self._latest

    async def wait_for_frame(
        self, after: float = -math.inf, timeout_s: float = 5.0, *, after_seq: int = 0
    ) -> Frame:
        """The latest frame once it was received strictly after clock time `after` and its `seq` is
        greater than `after_seq` (at once if the latest frame already qualifies).

        `timeout_s` is in seconds of the receiver's clock; raises TimeoutError when it expires.
        Typical use: `after=clock.now()` taken when the photo was requested, so the frame is fresh;
        or `after_seq=frame.seq` for the next frame after one already seen.
        """
        with self._clock.fail_after(timeout_s):
            while True:
                frame = self._latest
                if frame is not None and frame.received_at > after and frame.seq > after_seq:
                    return frame
                if self._new_frame is None:
                    self._new_frame = anyio.Event()
                await self._new_frame.wait()

    def reset(self) -> None:
        """Forget the latest frame and the decoder state (e.g. after the drone rebooted)."""
        self._latest = None
        self._decoder = H264StreamDecoder(self.stats)
