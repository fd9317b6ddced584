"""`tello-mcp flights [DIR|FILE]` as a real process, on a recording of a real flight of the
simulator: the summary it prints matches the simulator's ground truth."""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.drone_server.harness import drone_settings, flying, text_of

pytestmark = pytest.mark.anyio

TELLO_MCP = Path(sys.executable).parent / "tello-mcp"


async def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = await anyio.run_process(
        [str(TELLO_MCP), "flights", *args], check=False, env={**os.environ, **(env or {})}
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.mark.virtual_time
async def test_flights_prints_each_recordings_summary(tmp_path: Path) -> None:
    recordings = tmp_path / "flights"
    truth: list[tuple[float, float, float]] = []  # the simulator's pose after each action
    async with flying(drone_settings(flight_recording_dir=str(recordings))) as drone:
        battery_before = drone.truth.battery_pct
        async with Client(drone.server) as client:
            with anyio.fail_after(120):
                for name, args in (
                    ("takeoff", {}),
                    ("move", {"direction": "forward", "distance_cm": 100}),
                    ("move", {"direction": "up", "distance_cm": 50}),
                    ("move", {"direction": "up", "distance_cm": 300}),  # refused: max_height_cm
                    ("land", {}),
                ):
                    result = await client.call_tool(name, args)
                    assert result.is_error == (args.get("distance_cm") == 300), text_of(result)
                    pose = drone.truth.pose
                    truth.append((pose.x, pose.y, pose.z))
                recorder = drone.runtime.recorder
                assert recorder is not None
                while recorder.recording is not None:
                    await drone.runtime.link.wait_changed()
        battery_after = drone.truth.battery_pct
    [name] = os.listdir(recordings)

    code, out, err = await _cli(str(recordings), "--json")
    assert code == 0, err
    [summary] = [json.loads(line) for line in out.splitlines()]
    assert summary["name"] == name
    flown_cm = sum(math.dist(a, b) for a, b in itertools.pairwise(truth[:-1]))  # until landing
    assert abs(summary["distance_m"] * 100 - flown_cm) <= 20, (summary, flown_cm)
    highest = max(z for _, _, z in truth)
    assert abs(summary["max_height_cm"] - highest) <= 15, (summary, highest)
    assert abs(summary["battery_used_pct"] - (battery_before - battery_after)) <= 1
    assert summary["refusals"] == 1
    assert summary["commands"] >= 5
    assert summary["verdicts"] == 0
    assert summary["duration_s"] > 10  # takeoff, two moves and a landing, on the simulator's clock

    # The table, for people: from the directory in the environment, or one file by its path.
    code, table, err = await _cli(env={"TELLO_MCP_FLIGHT_RECORDING_DIR": str(recordings)})
    assert code == 0, err
    header, row = table.splitlines()
    assert header.split()[:3] == ["recording", "duration", "distance"]
    assert row.startswith(name)
    assert f"{summary['max_height_cm']} cm" in row
    code, one, err = await _cli(str(recordings / name))
    assert (code, one) == (0, table), err


async def test_flights_names_what_it_cannot_read(tmp_path: Path) -> None:
    code, out, _ = await _cli(str(tmp_path))
    assert (code, out.strip()) == (0, f"no flight recordings in {tmp_path}")
    code, _, err = await _cli(str(tmp_path / "missing"))
    assert code == 2
    assert "no such directory or file" in err
    (tmp_path / "notes.mcap").write_text("not MCAP")
    code, _, err = await _cli(str(tmp_path / "notes.mcap"))
    assert code == 2
    assert "is not an MCAP file" in err
