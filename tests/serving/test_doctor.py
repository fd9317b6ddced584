"""`tello-mcp doctor` against `drone_sim` over real UDP on loopback: every step passes on a healthy
drone, and each fault (a silent address, no state packets, no video, a taken port, a low
battery, an address no Tello has) fails or warns at the right step and says what to fix."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from drone_sim import DroneSimulator, SimConfig
from servers.doctor import Check, DoctorConfig, diagnose, render

pytestmark = pytest.mark.anyio

LOCAL = "127.0.0.1"
TELLO_MCP = Path(sys.executable).parent / "tello-mcp"
STEPS = ["address", "ports", "command", "state packets", "SDK version", "battery", "video"]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOCAL, 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def _sim(*, video: bool = True) -> AsyncIterator[tuple[DroneSimulator, DoctorConfig]]:
    state_port, video_port = _free_udp_port(), _free_udp_port()
    config = SimConfig(host=LOCAL, port=0, state_port=state_port, video_port=video_port)
    async with DroneSimulator(config, video="auto" if video else None) as sim:
        yield (
            sim,
            DoctorConfig(
                drone_host=LOCAL,
                drone_port=sim.address[1],
                bind_host=LOCAL,
                state_port=state_port,
                video_port=video_port,
            ),
        )


def _by_name(checks: list[Check]) -> dict[str, Check]:
    assert [c.name for c in checks] == STEPS
    return {c.name: c for c in checks}


async def test_a_healthy_drone_passes_every_step() -> None:
    async with _sim() as (sim, config):
        with anyio.fail_after(30):
            checks = _by_name(await diagnose(config))
        sent = [r.data for r in sim.truth.received]
    assert {name: c.status for name, c in checks.items()} == dict.fromkeys(STEPS, "ok")
    assert "SDK 30" in checks["SDK version"].detail
    assert checks["battery"].detail == f"{sim.truth.battery_pct} %"
    assert set(sent) <= {b"command", b"sdk?", b"battery?", b"streamon", b"streamoff"}  # nothing flies
    assert sent[-1] == b"streamoff"
    assert render(list(checks.values()), LOCAL).endswith(
        f"ready: tello-mcp serve drone --drone-host {LOCAL}\n"
    )


async def test_a_silent_address_fails_at_command_with_the_wifi_hint() -> None:
    config = DoctorConfig(
        drone_host="127.0.0.9", drone_port=_free_udp_port(), bind_host=LOCAL, state_port=0, video_port=0
    )
    with anyio.fail_after(30):
        checks = _by_name(await diagnose(config))
    assert [checks[n].status for n in STEPS] == ["ok", "ok", "fail", "skip", "skip", "skip", "skip"]
    assert "no answer to 'command'" in checks["command"].detail
    assert "WiFi" in checks["command"].fix
    assert "TELLO_MCP_DRONE_HOST" in checks["command"].fix
    assert render(list(checks.values())).endswith("not ready: fix command first\n")


async def test_no_state_packets_fail_their_step_with_the_firewall_hint() -> None:
    async with _sim() as (sim, config):
        sim.faults.state_dropout = True
        with anyio.fail_after(30):
            checks = _by_name(await diagnose(config))
    assert checks["command"].status == "ok"
    assert checks["state packets"].status == "fail"
    assert f"{config.state_port}/udp" in checks["state packets"].fix
    assert "--network host" in checks["state packets"].fix
    assert checks["video"].status == "ok"  # the later steps still run: only state is missing


async def test_no_video_fails_the_video_step() -> None:
    async with _sim(video=False) as (_, config):
        with anyio.fail_after(30):
            checks = _by_name(await diagnose(config))
    assert checks["video"].status == "fail"
    assert f"{config.video_port}/udp" in checks["video"].fix
    assert all(checks[n].status == "ok" for n in STEPS[:-1])


async def test_a_low_battery_is_a_warning_naming_the_minimum() -> None:
    async with _sim() as (sim, config):
        sim.set_battery(12)
        with anyio.fail_after(30):
            checks = _by_name(await diagnose(config))
    assert checks["battery"].status == "warn"
    assert "below the takeoff minimum of 20 %" in checks["battery"].detail


async def test_a_taken_state_port_fails_at_ports_naming_the_setting() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((LOCAL, 0))
        port = taken.getsockname()[1]
        config = DoctorConfig(drone_host=LOCAL, drone_port=_free_udp_port(), bind_host=LOCAL, state_port=port)
        checks = _by_name(await diagnose(config))
    assert checks["ports"].status == "fail"
    assert f"{LOCAL}:{port} (state) is taken" in checks["ports"].detail
    assert "TELLO_MCP_STATE_PORT" in checks["ports"].fix
    assert [checks[n].status for n in STEPS[2:]] == ["skip"] * 5


async def test_an_address_no_tello_has_fails_first_and_nothing_is_sent() -> None:
    checks = _by_name(await diagnose(DoctorConfig(drone_host="8.8.8.8")))
    assert checks["address"].status == "fail"
    assert "not an address a Tello can have" in checks["address"].detail
    assert [checks[n].status for n in STEPS[1:]] == ["skip"] * 6


def test_the_cli_prints_each_step_and_exits_1_on_a_failure() -> None:
    done = subprocess.run(
        [
            *(str(TELLO_MCP), "doctor", "--drone-host", "127.0.0.9", "--drone-port", str(_free_udp_port())),
            *("--bind-host", LOCAL, "--state-port", "0", "--video-port", "0"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("[ok  ] address: 127.0.0.9:")
    assert any(line.startswith("[FAIL] command: no answer") for line in lines)
    assert lines[-1] == "not ready: fix command first"


def test_the_cli_names_a_bad_value() -> None:
    done = subprocess.run(
        [str(TELLO_MCP), "doctor", "--drone-port", "abc"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--drone-port='abc': expected an integer" in done.stderr
