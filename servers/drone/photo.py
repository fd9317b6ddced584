"""Photos from the video channel: stream on when asked, the newest frame as JPEG, stream off when idle.

The drone has no still-photo command over the SDK; a photo is the freshest decoded frame of
the H.264 stream on port 11111. Streaming costs the drone battery and WiFi airtime, so it is
switched on by the first photo and off again after `idle_off_s` without one.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import structlog

from servers.drone.camera import JPEG_SIZE, VideoReceiver
from servers.drone.core import commands
from servers.drone.core.errors import DroneError, NotConnected
from servers.drone.link import DroneLink
from servers.drone.models import PhotoResult
from servers.drone.pilot import freshness

PHOTO_IDLE_OFF_S = 30.0
"""Seconds without a photo before the video stream is switched off again."""


class PhotoService:
    def __init__(
        self,
        link: DroneLink,
        receiver: VideoReceiver,
        *,
        idle_off_s: float = PHOTO_IDLE_OFF_S,
        frame_timeout_s: float = 5.0,
        jpeg_quality: int = 80,
    ) -> None:
        self.link = link
        self.receiver = receiver
        self.idle_off_s = idle_off_s
        self.frame_timeout_s = frame_timeout_s
        self.jpeg_quality = jpeg_quality
        self.streaming = False
        self._last_use = 0.0
        self._lock = anyio.Lock()
        self._used = anyio.Event()
        self._log = structlog.get_logger("drone.photo")
        self.listeners: list[Callable[[bytes], None]] = []  # e.g. the flight recorder

    async def capture(self) -> tuple[bytes, PhotoResult]:
        clock = self.link.clock
        async with self._lock:
            requested = clock.now()
            self._touch()
            frame = None
            for attempt in (1, 2):
                if not self.streaming or attempt == 2:
                    # Also re-sent on a second attempt: a rebooted drone forgets it was streaming.
                    await self.link.request(commands.simple("streamon"))
                    self.streaming = True
                try:
                    frame = await self.receiver.wait_for_frame(
                        after=requested, timeout_s=self.frame_timeout_s
                    )
                    break
                except TimeoutError:
                    self._log.warning("no_video_frame", attempt=attempt, port=self.receiver.port)
            if frame is None:
                raise NotConnected(
                    f"no video frame arrived on UDP port {self.receiver.port} within "
                    f"{self.frame_timeout_s:g}s after streamon (is the port reachable from the drone?)"
                )
            jpeg = frame.to_jpeg(quality=self.jpeg_quality, size=JPEG_SIZE)
            self._touch()
            for listener in self.listeners:
                listener(jpeg)
            return jpeg, PhotoResult(
                width=JPEG_SIZE[0],
                height=JPEG_SIZE[1],
                frame_age_s=round(max(0.0, frame.age(clock.now())), 3),
                jpeg_bytes=len(jpeg),
                freshness=freshness(self.link.reading()),
            )

    def _touch(self) -> None:
        self._last_use = self.link.clock.now()
        self._used.set()
        self._used = anyio.Event()

    async def run_idle_off(self) -> None:
        """Run forever: send `streamoff` once no photo was taken for `idle_off_s`."""
        clock = self.link.clock
        while True:
            if not self.streaming:
                await self._used.wait()
                continue
            remaining = self._last_use + self.idle_off_s - clock.now()
            if remaining > 0:
                used = self._used
                with clock.move_on_after(remaining):
                    await used.wait()
                continue
            async with self._lock:
                try:
                    await self.link.request(commands.simple("streamoff"))
                    self.streaming = False
                    self._log.info("video_stream_idle_off")
                except DroneError as exc:
                    self._log.warning("streamoff_failed", error=str(exc))
                    self._touch()  # try again after another idle period
