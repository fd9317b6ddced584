"""`drone-sim --ground-truth PATH` and `--burst S:EVERY`: what a simulator in its own process
hands over at exit, and the WiFi drop-outs it can inject."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from drone_sim.__main__ import build_parser, bursts
from drone_sim.faults import Faults

from .support import flying_rig, raw_client, read_line

REPO = Path(__file__).resolve().parents[2]


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.anyio
async def test_ground_truth_file_lists_what_the_drone_executed_and_its_events(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    async with raw_client() as client:
        command = [
            sys.executable,
            "-m",
            "drone_sim",
            *("--host", "127.0.0.15", "--port", "0", "--state-port", str(client.state_port)),
            *("--speedup", "20", "--no-video", "--ground-truth", str(path)),
        ]
        process = await anyio.open_process(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        async with process:
            assert process.stdout is not None
            port = int((await read_line(process.stdout)).split("udp://127.0.0.15:")[1].split(" ")[0])
            address = ("127.0.0.15", port)
            assert await client.request("command", address) == "ok"
            assert await client.request("takeoff", address) == "ok"
            assert await client.request("cw 45", address) == "ok"
            assert await client.request("flip z", address) == "error"
            assert not path.exists()  # written at exit, once
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(10):
                assert await process.wait() == 0
    records = _records(path)
    executed = [r for r in records if r["kind"] == "executed"]
    assert [(r["text"], r["flight_action"], r["reply"]) for r in executed] == [
        ("command", False, "ok"),
        ("takeoff", True, "ok"),
        ("cw 45", True, "ok"),
        ("flip z", False, "error"),  # not a command the drone knows: no action
    ]
    assert [r["outcome"] for r in executed] == ["done", "done", "done", "rejected"]
    assert [r["seq"] for r in executed] == [1, 2, 3, 4]
    assert all(r["finished_t"] >= r["t"] for r in executed[1:3])
    events = [r["event"] for r in records if r["kind"] == "event"]
    assert "sdk_entered" in events
    assert "auto_land" not in events
    assert not [r for r in records if r["kind"] == "burst"]


@pytest.mark.anyio
async def test_bursts_silence_everything_then_restore_the_configured_faults() -> None:
    async with flying_rig(speedup=20.0, faults=Faults(loss=0.0, dup=0.2, seed=3)) as (sim, client):
        log: list[tuple[float, float]] = []
        burst_real_s = sim.clock.to_real(2.0)
        arrivals: list[float] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(bursts, sim, 2.0, 3.0, log)
            with anyio.fail_after(20):
                while len(log) < 2:
                    await client.state_packet()
                    arrivals.append(time.monotonic())
            tg.cancel_scope.cancel()
        assert (sim.faults.loss, sim.faults.dup, sim.faults.state_dropout) == (0.0, 0.2, False)
        assert all(end - start >= 2.0 for start, end in log)
        assert log[1][0] - log[0][1] >= 1.0
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert max(gaps) >= 0.9 * burst_real_s  # no state packet got through a burst


@pytest.mark.parametrize("text", ["3", "3:3", "0:5", "x:5", "-1:5"])
def test_burst_needs_a_shorter_silence_than_its_period(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--burst", text])
    assert "S:EVERY" in capsys.readouterr().err
    assert build_parser().parse_args(["--burst", "3:20"]).burst == (3.0, 20.0)
