"""One snapshot of the drone per change, fanned out to every viewer of the deck.

The publisher wakes on every link change (state packets arrive at ~10 Hz) and on the hold
switch, at most every `MIN_INTERVAL_S` and at least every `MAX_INTERVAL_S` (so ages keep
counting while the drone is silent), and serializes the snapshot once. Each viewer's stream
takes the *latest* snapshot whenever its connection can take more: a slow or stalled viewer
skips the ones it missed instead of queueing them, so it never holds up the link, the
publisher or the other viewers. Viewers are capped (`max_viewers`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog

from servers.drone.flights_routes import FLIGHTS_PATH
from servers.drone.runtime import DroneRuntime

__all__ = ["Deck"]

MIN_INTERVAL_S = 0.05
MAX_INTERVAL_S = 1.0
LOG_ROWS = 40
HEIGHT_POINTS = 240
HEIGHT_EVERY_S = 0.5
RECORDINGS_URL = FLIGHTS_PATH
"""Where the page finds the flight recorder's list (`servers.drone.flights_routes`)."""


@dataclass(slots=True)
class _Camera:
    jpeg: bytes | None = None
    at: float | None = None  # Unix time it was captured
    seq: int = 0


@dataclass(slots=True)
class _History:
    path: list[tuple[float, float, float]] = field(default_factory=list[tuple[float, float, float]])
    heights: collections.deque[tuple[float, int]] = field(
        default_factory=lambda: collections.deque(maxlen=HEIGHT_POINTS)
    )
    battery: collections.deque[tuple[float, int]] = field(
        default_factory=lambda: collections.deque(maxlen=120)
    )


class Deck:
    def __init__(self, runtime: DroneRuntime, *, max_viewers: int = 8) -> None:
        self.runtime = runtime
        self.max_viewers = max_viewers
        self.viewers = 0
        self.camera = _Camera()
        self._history = _History()
        self._latest = b""
        self._version = 0
        self._published = anyio.Event()
        self._closing = False
        self._log = structlog.get_logger("deck")

    # ---- the snapshot ----

    def snapshot(self) -> dict[str, Any]:
        rt = self.runtime
        link, pilot = rt.link, rt.pilot
        now_wall, now = time.time(), link.clock.now()
        reading = link.reading()
        state = pilot.state()
        h = self._history
        t = reading.telemetry
        if t is not None:
            if not h.heights or now_wall - h.heights[-1][0] >= HEIGHT_EVERY_S:
                h.heights.append((now_wall, t.height_cm))
            if not h.battery or h.battery[-1][1] != t.battery_pct:
                h.battery.append((now_wall, t.battery_pct))
        pos = state.position_estimate
        if pos is not None:
            point = (pos.x_cm, pos.y_cm, pos.uncertainty_cm)
            if not h.path or h.path[-1] != point:
                h.path.append(point)
                del h.path[:-500]
        elif state.flight == "landed" and h.path and h.path[-1] != (0.0, 0.0, 0.0):
            h.path.append((0.0, 0.0, 0.0))  # a landing ends the track; the next takeoff starts at 0
        log = list(link.flight_log)[-LOG_ROWS:]
        env = pilot.envelope
        cam = self.camera
        return {
            "t": round(now_wall, 3),
            "link": {
                "status": reading.status.value,
                "state_age_s": None if reading.state_age_s is None else round(reading.state_age_s, 3),
                "reply_age_s": None if reading.reply_age_s is None else round(reading.reply_age_s, 3),
                "drone": reading.drone,
                "sim": rt.settings.sim,
            },
            "state": state.model_dump(mode="json"),
            "battery_trend": list(h.battery)[-30:],
            "path": h.path,
            "heights": list(h.heights),
            "envelope": {
                "max_height_cm": env.max_height_cm,
                "max_distance_cm": env.max_distance_cm,
                "min_takeoff_battery": env.min_takeoff_battery,
                "critical_battery": env.critical_battery,
                "min_flip_battery": env.min_flip_battery,
            },
            "hold": None if rt.hold.state is None else rt.hold.state.as_dict(),
            "log": [
                {
                    "at": round(now_wall - (now - e.at), 3),
                    "command": e.command,
                    "client": e.client,
                    "path": e.path,
                    "tool": e.tool,
                    "outcome": e.outcome if e.verdict is None else f"{e.outcome} ({e.verdict})",
                    "reply": e.reply,
                    "latency_ms": round(e.latency_s * 1000, 1),
                }
                for e in log
            ],
            "agents": [{**a, "last_at": round(a["last_at"], 3)} for a in rt.callers.listed()],
            "camera": {"seq": cam.seq, "age_s": None if cam.at is None else round(now_wall - cam.at, 1)},
            "viewers": {"open": self.viewers, "max": self.max_viewers},
            "recordings_url": RECORDINGS_URL,
            "recording": self._recording(),
        }

    def _recording(self) -> str | None:
        """The flight being recorded now, by name: the page reloads the list when it changes."""
        recorder = self.runtime.recorder
        recording = None if recorder is None else recorder.recording
        return None if recording is None else recording.path.name

    def publish(self) -> None:
        self._latest = json.dumps(self.snapshot(), separators=(",", ":")).encode()
        self._version += 1
        self._published.set()
        self._published = anyio.Event()

    async def run(self) -> None:
        """Run forever: publish on change, throttled (see the module docstring)."""
        clock = self.runtime.clock
        while True:
            with anyio.move_on_after(MAX_INTERVAL_S):
                async with anyio.create_task_group() as tg:

                    async def first(wait: Any, scope: anyio.CancelScope = tg.cancel_scope) -> None:
                        await wait()
                        scope.cancel()

                    tg.start_soon(first, self.runtime.link.wait_changed)
                    tg.start_soon(first, self.runtime.hold.wait_changed)
            published = clock.now()
            self.publish()
            await clock.sleep(max(0.0, published + MIN_INTERVAL_S - clock.now()))

    # ---- viewers ----

    def close(self) -> None:
        """End every viewer's stream (shutdown begins: an open stream would hold up uvicorn's
        graceful exit for its whole timeout); the page reconnects to whatever serves next."""
        self._closing = True
        self._published.set()

    def full(self) -> bool:
        return self.viewers >= self.max_viewers

    async def stream(self) -> AsyncGenerator[bytes]:
        """One viewer's server-sent events: the latest snapshot each time it can take one."""
        if self.full():  # another viewer took the last place since the route checked
            yield b'event: full\ndata: {"error": "too many viewers"}\n\n'
            return
        self.viewers += 1
        self._log.info("deck_viewer_opened", viewers=self.viewers)
        try:
            if not self._latest:
                self.publish()
            seen = 0
            while not self._closing:
                if seen == self._version:
                    await self._published.wait()
                    if self._closing:
                        break
                seen = self._version
                yield b"data: " + self._latest + b"\n\n"
        finally:
            self.viewers -= 1
            self._log.info("deck_viewer_closed", viewers=self.viewers)


@contextlib.asynccontextmanager
async def deck_running(deck: Deck) -> AsyncGenerator[Deck]:
    """The deck's publisher, for as long as the drone component runs."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(deck.run)
        try:
            yield deck
        finally:
            tg.cancel_scope.cancel()
