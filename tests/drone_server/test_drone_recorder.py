"""The flight recorder: a flight through a real MCP client, read back from MCAP, judged by the
simulator's ground truth; a writer abandoned mid-flight still leaves a readable file."""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from servers.drone.camera import decode_jpeg
from servers.drone.recorder import (
    Recording,
    is_recording_name,
    list_recordings,
    prune,
    read_recording,
    summarize,
)
from tests.drone_server.harness import drone_settings, flying, text_of


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_a_flight_is_recorded_and_matches_ground_truth(tmp_path: Path) -> None:
    truth_heights: list[tuple[float, float]] = []
    async with flying(drone_settings(flight_recording_dir=str(tmp_path))) as drone:
        async with Client(drone.server) as client, anyio.create_task_group() as tg:

            async def sample() -> None:
                while True:
                    truth_heights.append((drone.now(), drone.truth.pose.z))
                    await drone.runtime.clock.sleep(0.5)

            tg.start_soon(sample)
            with anyio.fail_after(120):
                for name, args in (
                    ("takeoff", {}),
                    ("move", {"direction": "forward", "distance_cm": 100}),
                    ("move", {"direction": "up", "distance_cm": 50}),
                    ("rotate", {"direction": "clockwise", "degrees": 90}),
                    ("capture_photo", {}),
                    ("land", {}),
                ):
                    result = await client.call_tool(name, args)
                    assert not result.is_error, text_of(result)
                # the recorder closes at its next look after landing
                while drone.runtime.recorder is not None and drone.runtime.recorder.recording is not None:
                    await drone.runtime.link.wait_changed()
            tg.cancel_scope.cancel()
        log = list(drone.runtime.link.flight_log)
        final_pose = drone.truth.pose

    files = sorted(tmp_path / name for name in os.listdir(tmp_path))  # the flight is over
    assert len(files) == 1
    assert is_recording_name(files[0].name)
    messages = read_recording(files[0])
    topics = {m.topic for m in messages}
    assert {"/drone/state", "/drone/pose", "/drone/flight_log", "/drone/camera"} <= topics

    # Heights: each state message against the simulator's truth sampled at about that time.
    states = [m.data for m in messages if m.topic == "/drone/state"]
    assert len(states) > 50  # the stream's rate (10 Hz) over a flight of tens of seconds
    checked = 0
    for at, z in truth_heights:
        near = [s for s in states if abs(s["t_s"] - at) <= 0.1]
        if near and z > 0:
            assert abs(near[0]["height_cm"] - z) <= 15, (at, z, near[0])
            checked += 1
    assert checked >= 10

    # Every flight command of the flight log, with its caller and outcome.
    recorded = [m.data for m in messages if m.topic == "/drone/flight_log"]
    recorded_commands = [(e["command"], e["outcome"], e["client"]) for e in recorded]
    first = next(i for i, e in enumerate(log) if e.command == "takeoff")
    for entry in log[first:]:
        assert (entry.command, entry.outcome, entry.client) in recorded_commands
    assert [e["command"] for e in recorded if e["command"] in ("takeoff", "land")] == ["takeoff", "land"]

    # The photo decodes as JPEG.
    photos = [m.data for m in messages if m.topic == "/drone/camera"]
    assert len(photos) == 1
    assert photos[0]["format"] == "jpeg"
    frame = decode_jpeg(base64.b64decode(photos[0]["data"]))
    assert (frame.width, frame.height) == (480, 360)

    # The pose follows the estimate: the last one is where the simulator ended up, before landing.
    poses = [m.data["pose"]["position"] for m in messages if m.topic == "/drone/pose"]
    last = poses[-1]
    assert abs(last["x"] * 100 - final_pose.x) <= 10
    assert abs(last["y"] * 100 - final_pose.y) <= 10

    summary = summarize(files[0])
    assert summary.max_height_cm >= 120
    assert summary.distance_m >= 1.4  # 1 m forward and 0.5 m up
    assert summary.commands == len(recorded)
    assert list_recordings(tmp_path)[0]["name"] == files[0].name


def test_an_abandoned_writer_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "flight-20260101T000000Z.mcap"
    recording = Recording(path, now=0.0)
    for i in range(2000):  # several chunks' worth
        recording.write("/drone/state", i / 10, {"t_s": i / 10, "height_cm": i})
    # No close(): the process died here. A copy is what a reader finds on disk.
    crashed = tmp_path / "copy.mcap"
    shutil.copyfile(path, crashed)
    heights = [m.data["height_cm"] for m in read_recording(crashed)]
    assert len(heights) > 500
    assert heights == list(range(len(heights)))  # in order, up to the last whole chunk
    recording.close()
    assert len(read_recording(path)) == 2000


def test_old_recordings_are_pruned_oldest_first(tmp_path: Path) -> None:
    names = [f"flight-2026010{i}T000000Z.mcap" for i in range(1, 6)]
    now = time.time()
    for i, name in enumerate(names):
        p = tmp_path / name
        p.write_bytes(b"x" * 1000)
        os.utime(p, (now - 100 + i, now - 100 + i))
    os.utime(tmp_path / names[4], (now - 10 * 86400, now - 10 * 86400))  # too old, whatever its size
    (tmp_path / "notes.txt").write_text("kept")
    deleted = prune(tmp_path, max_bytes=2500, max_age_s=86400, keep=tmp_path / names[0])
    assert sorted(p.name for p in deleted) == sorted([names[1], names[4]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names[0], names[2], names[3], "notes.txt"])


def test_only_recording_names_are_served() -> None:
    assert is_recording_name("flight-20261207T170848Z.mcap")
    assert is_recording_name("flight-20261207T170848Z-2.mcap")
    for hostile in (
        "../flight-20261207T170848Z.mcap",
        "flight-20261207T170848Z.mcap/..",
        "/etc/passwd",
        "flight-20261207T170848Z.mcap\x00",
        "flight-20261207T170848Z.MCAP",
        "..",
        "",
        "flight-2026120T170848Z.mcap",
        "sub/flight-20261207T170848Z.mcap",
        "flight-20261207T170848Z.mcap\n",
    ):
        assert not is_recording_name(hostile), hostile
