"""`python -m drone_sim`: one line on stdout, a working drone, a clean exit on SIGINT/SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.abc
import pytest

from drone_sim.__main__ import build_parser, simulator_from_args
from drone_sim.faults import Faults
from drone_sim.server import SimConfig

from .support import raw_client, read_line

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"drone_sim listening on udp://(127\.0\.0\.\d+):(\d+)"
    r" \(state -> :(\d+), speedup ([\d.]+)\)\n"
)


async def _drain(stream: anyio.abc.ByteReceiveStream | None) -> bytes:
    assert stream is not None
    chunks: list[bytes] = []
    with anyio.fail_after(10):
        try:
            while True:
                chunks.append(await stream.receive())
        except anyio.EndOfStream:
            pass
    return b"".join(chunks)


@pytest.mark.anyio
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_announces_serves_and_exits_cleanly(signum: signal.Signals) -> None:
    async with raw_client() as client:
        command = [
            sys.executable,
            "-m",
            "drone_sim",
            "--host",
            "127.0.0.13",
            "--port",
            "0",
            "--state-port",
            str(client.state_port),
            "--speedup",
            "10",
            "--battery",
            "42",
            "--no-video",
            "--seed",
            "1",
        ]
        process = await anyio.open_process(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        async with process:
            assert process.stdout is not None
            line = await read_line(process.stdout)
            match = LINE.fullmatch(line)
            assert match is not None, line
            host, port, state_port, speedup = match.groups()
            assert (host, int(state_port), float(speedup)) == ("127.0.0.13", client.state_port, 10.0)
            address = (host, int(port))
            assert await client.request("command", address) == "ok"
            assert await client.request("battery?", address) == "42"
            packet, sender = await client.state_packet()
            assert sender == address
            assert "bat:42;" in packet
            process.send_signal(signum)
            with anyio.fail_after(10):
                code = await process.wait()
            rest = await _drain(process.stdout)
            stderr = await _drain(process.stderr)
        assert code == 0, stderr.decode()
        assert rest == b""  # exactly one line on stdout
        assert b"Traceback" not in stderr


def test_cli_flags_map_to_config_and_faults() -> None:
    args = build_parser().parse_args(
        [
            "--host",
            "127.0.0.2",
            "--port",
            "9999",
            "--state-port",
            "9000",
            "--video-port",
            "9001",
            "--speedup",
            "20",
            "--seed",
            "5",
            "--loss",
            "0.1",
            "--delay",
            "0.5:0.2",
            "--dup",
            "0.05",
            "--reboot-after",
            "30",
            "--state-dropout",
            "--battery",
            "30",
            "--emergency-silence",
            "0",
            "--no-mission-pad",
            "--serial",
            "0TQTEST",
            "--no-video",
        ]
    )
    sim = simulator_from_args(args)
    config = sim.config
    assert (config.host, config.port, config.state_port, config.video_port) == ("127.0.0.2", 9999, 9000, 9001)
    assert config.drone.initial_battery_pct == 30
    assert not config.drone.mission_pad_fields
    assert config.drone.serial == "0TQTEST"
    assert sim.truth.battery_pct == 30
    assert sim.clock.to_real(20.0) == pytest.approx(1.0)
    assert sim.faults == Faults(
        loss=0.1,
        delay_s=0.5,
        jitter_s=0.2,
        dup=0.05,
        emergency_silence=0.0,
        reboot_after_s=30.0,
        state_dropout=True,
        seed=5,
    )
    assert sim.video_factory is None
    defaults = simulator_from_args(build_parser().parse_args([]))
    assert defaults.video_factory is not None  # video by default
    assert defaults.config == SimConfig()
    assert defaults.faults == Faults()


@pytest.mark.parametrize(
    "argv",
    [
        ["--loss", "1.5"],
        ["--dup", "-1"],
        ["--delay", "x"],
        ["--speedup", "0"],
        ["--battery", "101"],
        ["--port", "70000"],
    ],
)
def test_cli_rejects_bad_values(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err
