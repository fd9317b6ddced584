"""Refusals made before anything is sent (the safety envelope, a link not live, the operator's
hold) are in the flight log and so in the flight's MCAP recording, with their caller; the
simulator's ground truth shows that nothing reached the drone for them and that it did not move."""

from __future__ import annotations

import math
import os
from pathlib import Path

import anyio
import pytest
from mcp import Client

from servers.auth.identity import bound_client
from servers.drone.core.protocol import LinkStatus
from servers.drone.recorder import read_recording, summarize
from tests.drone_server.harness import (
    assert_nothing_sent,
    drone_settings,
    flying,
    mark,
    text_of,
    wait_status,
)

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


async def test_envelope_and_hold_refusals_are_recorded(tmp_path: Path) -> None:
    async with flying(drone_settings(flight_recording_dir=str(tmp_path))) as drone:
        runtime = drone.runtime
        with bound_client("agent-7"):
            async with Client(drone.server) as client:
                with anyio.fail_after(120):
                    took_off = await client.call_tool("takeoff", {})
                    assert not took_off.is_error, text_of(took_off)
                    before, pose = mark(drone.truth), drone.truth.pose

                    too_high = await client.call_tool("move", {"direction": "up", "distance_cm": 300})
                    assert too_high.is_error
                    assert "max_height_cm" in text_of(too_high), text_of(too_high)
                    too_far = await client.call_tool("go_to", {"x": 500, "y": 300, "z": 0, "speed": 50})
                    assert too_far.is_error
                    assert "max_distance_cm" in text_of(too_far), text_of(too_far)
                    runtime.hold.set("operator-ana", runtime.link)
                    held = await client.call_tool("rotate", {"direction": "clockwise", "degrees": 90})
                    assert held.is_error
                    assert "on hold" in text_of(held), text_of(held)
                    runtime.hold.release("operator-ana", runtime.link)

                    # Ground truth: nothing went out for them, and the drone stayed put.
                    assert_nothing_sent(drone.truth, before)
                    after = drone.truth.pose
                    assert math.dist((pose.x, pose.y, pose.z), (after.x, after.y, after.z)) <= 10
                    assert abs(after.yaw - pose.yaw) <= 5

                    landed = await client.call_tool("land", {})
                    assert not landed.is_error, text_of(landed)
                    recorder = runtime.recorder
                    assert recorder is not None
                    while recorder.recording is not None:  # it closes at a look after landing
                        await runtime.link.wait_changed()

    [name] = os.listdir(tmp_path)  # the flight is over
    path = tmp_path / name
    log = [m.data for m in read_recording(path) if m.topic == "/drone/flight_log"]
    refused = [e for e in log if e["outcome"] == "refused"]
    assert [(e["command"], e["client"]) for e in refused] == [
        ("up 300", "agent-7"),
        ("go 500 300 0 50", "agent-7"),
    ]
    assert "max_height_cm=300" in refused[0]["reply"]
    assert "max_distance_cm=500" in refused[1]["reply"]
    assert all(e["attempts"] == 0 and e["verdict"] is None for e in refused)
    held_entries = [e for e in log if e["verdict"] == "held"]
    assert [(e["command"], e["client"]) for e in held_entries] == [("cw 90", "agent-7")]

    summary = summarize(path)
    assert summary.refusals == 3
    assert summary.verdicts == 0  # a refusal by the hold is no telemetry verdict


async def test_a_flight_action_refused_on_a_stale_link_is_recorded(tmp_path: Path) -> None:
    async with flying(drone_settings(flight_recording_dir=str(tmp_path))) as drone:
        runtime, sim = drone.runtime, drone.sim
        with bound_client("agent-7"):
            async with Client(drone.server) as client:
                with anyio.fail_after(120):
                    took_off = await client.call_tool("takeoff", {})
                    assert not took_off.is_error, text_of(took_off)
                    sim.faults.state_dropout = True
                    await wait_status(sim, runtime, LinkStatus.STALE)
                    before = mark(drone.truth)
                    refused = await client.call_tool("move", {"direction": "forward", "distance_cm": 50})
                    assert refused.is_error
                    assert "link is stale" in text_of(refused)
                    assert_nothing_sent(drone.truth, before)
                    sim.faults.state_dropout = False
                    await wait_status(sim, runtime, LinkStatus.CONNECTED)
                    landed = await client.call_tool("land", {})
                    assert not landed.is_error, text_of(landed)
                    recorder = runtime.recorder
                    assert recorder is not None
                    while recorder.recording is not None:
                        await runtime.link.wait_changed()

    [name] = os.listdir(tmp_path)
    log = [m.data for m in read_recording(tmp_path / name) if m.topic == "/drone/flight_log"]
    [entry] = [e for e in log if e["command"] == "forward 50"]
    assert (entry["outcome"], entry["client"], entry["attempts"]) == ("not_connected", "agent-7", 0)
    assert "link is stale" in entry["reply"]
