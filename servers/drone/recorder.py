"""The flight recorder: every flight as an MCAP file that Foxglove opens without plugins.

A recording opens when the link first sees the drone flying and closes once it has landed (or
the runtime stops). It holds, on JSON channels with JSON schemas:

* `/drone/state`: every state packet the link hears (height, battery, attitude, link status),
  stamped with the runtime clock (`t_s`);
* `/drone/pose`: the pilot's dead-reckoned position as `foxglove.PoseInFrame` (frame `takeoff`);
* `/drone/flight_log`: every flight-log entry (command, caller, outcome, reply, latency, verdict),
  which is also where operator actions land;
* `/drone/verdicts`: the entries that carry a telemetry verdict, on their own for plotting;
* `/drone/camera`: every photo taken, JPEG as `foxglove.CompressedImage`.

It reads what exists (the link's readings and flight log, the pilot's position) and needs one
hook, the photo service's listeners. Writing stays on the event loop on purpose: messages go
into an in-memory MCAP chunk, and only a full chunk (`CHUNK_BYTES`, or one photo) reaches the
file, flushed at once, a write of ~32 KiB to the page cache: tens of microseconds, well under the few
milliseconds the link's keepalive can afford, and no thread. Because each chunk is written whole
as it closes, a crash leaves a file readable up to its last chunk (`read_recording`).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import structlog
from mcap.exceptions import McapError
from mcap.reader import SeekingReader
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from servers.drone.core.protocol import LinkStatus
from servers.drone.link import DroneLink, LogEntry
from servers.drone.pilot import Pilot

SCHEMAS_DIR: Final = Path(__file__).parent / "foxglove_schemas"
MAGIC: Final = b"\x89MCAP0\r\n"
"""Starts every MCAP file, and ends one that was closed properly."""
CHUNK_BYTES: Final = 32 * 1024
"""A chunk reaches the disk when it holds this much: about 30 s of state at 10 Hz."""
LINGER_S: Final = 2.0
"""Seconds a recording goes on after landing: the landing's own flight-log entry and the drone
settling on the ground belong to the flight."""
NAME_RE: Final = re.compile(r"flight-\d{8}T\d{6}Z(?:-\d{1,3})?\.mcap")
"""Every recording's name, and the only names `/flights/{name}` serves (no path, no dots)."""

_STATE_SCHEMA: Final[dict[str, Any]] = {
    "title": "tello.State",
    "type": "object",
    "properties": {
        "t_s": {"type": "number", "description": "runtime clock, seconds"},
        "link": {"type": "string"},
        "flying": {"type": "boolean"},
        "height_cm": {"type": "integer"},
        "tof_cm": {"type": "integer"},
        "battery_pct": {"type": "integer"},
        "pitch_deg": {"type": "integer"},
        "roll_deg": {"type": "integer"},
        "yaw_deg": {"type": "integer"},
        "temperature_high_c": {"type": "integer"},
        "barometer_m": {"type": "number"},
    },
}
_LOG_SCHEMA: Final[dict[str, Any]] = {
    "title": "tello.FlightLogEntry",
    "type": "object",
    "properties": {
        "t_s": {"type": "number"},
        "command": {"type": "string"},
        "client": {"type": ["string", "null"]},
        "outcome": {"type": "string"},
        "reply": {"type": ["string", "null"]},
        "latency_ms": {"type": "number"},
        "attempts": {"type": "integer"},
        "verdict": {"type": ["string", "null"]},
        "evidence": {"type": ["string", "null"]},
    },
}


def _vendored(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS_DIR / f"{name}.json").read_text())
    return loaded


def is_recording_name(name: str) -> bool:
    return NAME_RE.fullmatch(name) is not None


class Recording:
    """One open MCAP file. `write_*` take the runtime clock's `now`; log times are wall-clock
    nanoseconds (what Foxglove shows), anchored at the recording's start."""

    def __init__(self, path: Path, now: float) -> None:
        self.path = path
        self._file: IO[bytes] = path.open("xb")
        self._t0 = now
        self._wall0_ns = time.time_ns()
        self._writer = Writer(self._file, chunk_size=CHUNK_BYTES, compression=CompressionType.ZSTD)
        self._writer.start(profile="", library="tello-mcp flight recorder")
        self._channels: dict[str, int] = {}
        topics: tuple[tuple[str, dict[str, Any]], ...] = (
            ("/drone/state", _STATE_SCHEMA),
            ("/drone/flight_log", _LOG_SCHEMA),
            ("/drone/verdicts", _LOG_SCHEMA),
            ("/drone/pose", _vendored("PoseInFrame")),
            ("/drone/camera", _vendored("CompressedImage")),
        )
        for topic, schema in topics:
            schema_id = self._writer.register_schema(
                name=schema["title"], encoding="jsonschema", data=json.dumps(schema).encode()
            )
            self._channels[topic] = self._writer.register_channel(
                topic=topic, message_encoding="json", schema_id=schema_id
            )

    def _ns(self, now: float) -> int:
        return self._wall0_ns + max(0, round((now - self._t0) * 1e9))

    def _stamp(self, now: float) -> dict[str, int]:
        sec, nsec = divmod(self._ns(now), 1_000_000_000)
        return {"sec": sec, "nsec": nsec}

    def write(self, topic: str, now: float, message: dict[str, Any]) -> None:
        ns = self._ns(now)
        self._writer.add_message(
            self._channels[topic], log_time=ns, publish_time=ns, data=json.dumps(message).encode()
        )
        # A chunk the writer just closed goes to the file now, whole (nothing buffered: no-op).
        self._file.flush()

    def write_entry(self, entry: LogEntry) -> None:
        message = {
            "t_s": round(entry.at, 3),
            "command": entry.command,
            "client": entry.client,
            "outcome": entry.outcome,
            "reply": entry.reply,
            "latency_ms": round(entry.latency_s * 1000, 2),
            "attempts": entry.attempts,
            "verdict": entry.verdict,
            "evidence": entry.evidence,
        }
        self.write("/drone/flight_log", entry.at, message)
        if entry.verdict is not None:
            self.write("/drone/verdicts", entry.at, message)

    def write_photo(self, now: float, jpeg: bytes) -> None:
        self.write(
            "/drone/camera",
            now,
            {
                "timestamp": self._stamp(now),
                "frame_id": "camera",
                "format": "jpeg",
                "data": base64.b64encode(jpeg).decode(),
            },
        )

    def write_pose(self, now: float, x_cm: float, y_cm: float, z_cm: float, heading_deg: float) -> None:
        # Foxglove's frames are right-handed, z up: x forward, y left; heading is clockwise
        # seen from above, so the yaw about z is its negative.
        half = math.radians(-heading_deg) / 2
        self.write(
            "/drone/pose",
            now,
            {
                "timestamp": self._stamp(now),
                "frame_id": "takeoff",
                "pose": {
                    "position": {"x": x_cm / 100, "y": y_cm / 100, "z": z_cm / 100},
                    "orientation": {"x": 0.0, "y": 0.0, "z": math.sin(half), "w": math.cos(half)},
                },
            },
        )

    def close(self) -> None:
        try:
            self._writer.finish()
        finally:
            self._file.close()


class FlightRecorder:
    """Watches the link and writes one `Recording` per flight into `directory`, keeping the
    directory under `max_bytes` and `max_age_s` (oldest recordings deleted first)."""

    def __init__(
        self, link: DroneLink, pilot: Pilot, directory: Path, *, max_bytes: int, max_age_s: float
    ) -> None:
        self.link = link
        self.pilot = pilot
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.recording: Recording | None = None
        self._last_entry: LogEntry | None = None
        self._last_state: object = None
        self._landed_at: float | None = None
        self._log = structlog.get_logger("drone.recorder")

    def on_photo(self, jpeg: bytes) -> None:
        """The photo service's listener: a photo taken while recording goes into the file."""
        if self.recording is not None:
            self.recording.write_photo(self.link.clock.now(), jpeg)

    async def run(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._last_entry = self.link.flight_log[-1] if self.link.flight_log else None
        try:
            while True:
                with self.link.clock.move_on_after(1.0):
                    await self.link.wait_changed()
                self.tick()
        finally:
            self._close()

    def tick(self) -> None:
        """One look at the link: open, feed or close the recording."""
        flying = self.link.is_flying()
        if flying and self.recording is None:
            self._open()
        recording = self.recording
        if recording is None:
            self._last_entry = self.link.flight_log[-1] if self.link.flight_log else None
            return
        now = self.link.clock.now()
        for entry in self._new_entries():
            recording.write_entry(entry)
        reading = self.link.reading()
        t = reading.telemetry
        if t is not None and t is not self._last_state:
            self._last_state = t
            recording.write(
                "/drone/state",
                now,
                {
                    "t_s": round(now, 3),
                    "link": reading.status.value,
                    "flying": flying,
                    "height_cm": t.height_cm,
                    "tof_cm": t.tof_cm,
                    "battery_pct": t.battery_pct,
                    "pitch_deg": t.pitch_deg,
                    "roll_deg": t.roll_deg,
                    "yaw_deg": t.yaw_deg,
                    "temperature_high_c": t.temp_high_c,
                    "barometer_m": t.baro_m,
                },
            )
        pos = self.pilot.position
        if pos is not None and flying:
            recording.write_pose(now, pos.x, pos.y, pos.z, pos.heading)
        if flying or (t is not None and t.height_cm > 0 and reading.status is LinkStatus.CONNECTED):
            self._landed_at = None  # still up (or coming down: the link stops "flying" at `land`)
        elif self._landed_at is None:
            self._landed_at = now
        elif now - self._landed_at >= LINGER_S:
            self._close()

    def _new_entries(self) -> Iterator[LogEntry]:
        log = list(self.link.flight_log)
        start = 0
        if self._last_entry is not None:
            for i in range(len(log) - 1, -1, -1):
                if log[i] is self._last_entry:
                    start = i + 1
                    break
        if log:
            self._last_entry = log[-1]
        yield from log[start:]

    def _open(self) -> None:
        self.prune()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for n in range(1000):
            path = self.directory / (f"flight-{stamp}.mcap" if n == 0 else f"flight-{stamp}-{n}.mcap")
            if not path.exists():
                break
        else:
            raise FileExistsError(f"no free recording name for {stamp}")
        # The entries since the last look (the takeoff itself) belong to this flight.
        self.recording = Recording(path, self.link.clock.now())
        self._log.info("flight_recording_started", path=str(path))

    def _close(self) -> None:
        recording, self.recording = self.recording, None
        self._landed_at = None
        if recording is not None:
            recording.close()
            self._log.info("flight_recording_closed", path=str(recording.path))

    def prune(self) -> None:
        current = None if self.recording is None else self.recording.path
        for path in prune(self.directory, self.max_bytes, self.max_age_s, keep=current):
            self._log.info("flight_recording_deleted", path=str(path))


def prune(directory: Path, max_bytes: int, max_age_s: float, *, keep: Path | None = None) -> list[Path]:
    """Delete recordings older than `max_age_s`, then the oldest until the rest fit in
    `max_bytes`; never `keep` (the one being written) nor files not named like a recording."""
    files = sorted(
        (p for p in directory.iterdir() if is_recording_name(p.name) and p != keep),
        key=lambda p: p.stat().st_mtime,
    )
    cutoff = time.time() - max_age_s
    total = sum(p.stat().st_size for p in files)
    deleted: list[Path] = []
    for p in files:
        st = p.stat()
        if st.st_mtime < cutoff or total > max_bytes:
            p.unlink(missing_ok=True)
            total -= st.st_size
            deleted.append(p)
    return deleted


# ---- reading back ----


@dataclass(frozen=True, slots=True)
class Recorded:
    topic: str
    log_time_ns: int
    data: dict[str, Any]


def read_recording(path: Path) -> list[Recorded]:
    """Every message in the file, in order; a file cut short by a crash yields what its whole
    chunks hold."""
    out: list[Recorded] = []
    channels: dict[int, str] = {}
    with path.open("rb") as f:
        try:
            for record in StreamReader(f, skip_magic=False).records:
                if isinstance(record, Channel):
                    channels[record.id] = record.topic
                elif isinstance(record, Message):
                    out.append(
                        Recorded(channels[record.channel_id], record.log_time, json.loads(record.data))
                    )
                elif isinstance(record, Schema):
                    continue
        except (McapError, EOFError):
            pass  # a truncated tail: keep what came before it
    return out


@dataclass(frozen=True, slots=True)
class FlightSummary:
    name: str
    duration_s: float
    distance_m: float
    max_height_cm: int
    battery_used_pct: int
    commands: int
    refusals: int
    verdicts: int


def summarize(path: Path) -> FlightSummary:
    messages = read_recording(path)
    times = [m.log_time_ns for m in messages]
    states = [m.data for m in messages if m.topic == "/drone/state"]
    poses = [m.data["pose"]["position"] for m in messages if m.topic == "/drone/pose"]
    log = [m.data for m in messages if m.topic == "/drone/flight_log"]
    distance = sum(
        math.dist((a["x"], a["y"], a["z"]), (b["x"], b["y"], b["z"])) for a, b in itertools.pairwise(poses)
    )
    return FlightSummary(
        name=path.name,
        duration_s=round((max(times) - min(times)) / 1e9, 1) if times else 0.0,
        distance_m=round(distance, 2),
        max_height_cm=max((s["height_cm"] for s in states), default=0),
        battery_used_pct=states[0]["battery_pct"] - states[-1]["battery_pct"] if states else 0,
        commands=len(log),
        refusals=sum(1 for e in log if e["outcome"] in ("rejected", "refused")),
        verdicts=sum(1 for e in log if e["verdict"] not in (None, "held")),  # held: the hold's refusal
    )


def _duration_s(path: Path) -> float:
    """From the summary's statistics when the file was closed properly (a read of its last few
    KiB); from every message when it was not (being written, or cut short by a crash)."""
    with path.open("rb") as f:
        f.seek(0, io.SEEK_END)
        if f.tell() >= 2 * len(MAGIC):
            f.seek(-len(MAGIC), io.SEEK_END)
            if f.read() == MAGIC:
                f.seek(0)
                try:
                    summary = SeekingReader(f).get_summary()
                except (McapError, EOFError, ValueError, struct.error):
                    summary = None
                stats = None if summary is None else summary.statistics
                if stats is not None:
                    return round((stats.message_end_time - stats.message_start_time) / 1e9, 1)
    times = [m.log_time_ns for m in read_recording(path)]
    return round((max(times) - min(times)) / 1e9, 1) if times else 0.0


def list_recordings(directory: Path) -> list[dict[str, Any]]:
    """name, start (UTC, from the name), duration and size of each recording, oldest first.
    A file deleted meanwhile (pruned as a flight starts) is left out."""
    out: list[dict[str, Any]] = []
    if not directory.is_dir():
        return out
    for p in sorted(directory.iterdir()):
        if not is_recording_name(p.name):
            continue
        start = time.strptime(p.name[7:23], "%Y%m%dT%H%M%SZ")
        try:
            size = p.stat().st_size
            duration = _duration_s(p)
        except FileNotFoundError:
            continue
        out.append(
            {
                "name": p.name,
                "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", start),
                "duration_s": duration,
                "size": size,
            }
        )
    return out
