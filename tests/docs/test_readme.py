"""The README's commands are run (or, where they would reach a real drone, parsed) so they cannot rot."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from servers.cli import plan
from servers.config import SERVE, settings_table
from servers.drone.app import _parse_address  # pyright: ignore[reportPrivateUsage]
from servers.registry import SERVERS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def command_lines() -> list[list[str]]:
    lines: list[list[str]] = []
    for block in blocks("sh"):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                lines.append(shlex.split(line))
    return lines


def test_readme_starts_with_the_two_setup_commands() -> None:
    first = command_lines()[:2]
    assert first == [["make", "run"], ["make", "test"]]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run: ", makefile, flags=re.MULTILINE)
    assert re.search(r"^test: ", makefile, flags=re.MULTILINE)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def test_make_run_serves_the_drone_with_the_embedded_simulator() -> None:
    recipe = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "tello-mcp serve --sim" in recipe


@pytest.mark.parametrize(
    "argv",
    [line for line in command_lines() if line[0].endswith("tello-mcp") and line[1] == "serve"],
    ids=" ".join,
)
def test_every_serve_command_in_the_readme_parses(argv: list[str]) -> None:
    planned = plan(argv[2:], environ={})
    assert planned.servers
    assert set(planned.servers) <= set(SERVERS)


def _sim_commands() -> list[list[str]]:
    return [line for line in command_lines() if line[0].endswith("drone-sim")]


@pytest.mark.anyio
@pytest.mark.parametrize("argv", _sim_commands(), ids=" ".join)
async def test_every_simulator_command_in_the_readme_runs(argv: list[str], tmp_path: Path) -> None:
    # An ephemeral port (the last --port wins) so the check never collides with anything; run
    # in a scratch folder, since a command may write a file (--ground-truth).
    process = await anyio.open_process([str(BIN / "drone-sim"), *argv[1:], "--port", "0"], cwd=tmp_path)
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            line = (await process.stdout.receive()).decode()
        assert line.startswith("drone_sim listening on udp://")
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            assert await process.wait() == 0
        if "--ground-truth" in argv:
            assert (tmp_path / argv[argv.index("--ground-truth") + 1]).is_file()  # (empty: nothing ran)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.aclose()


def test_python_snippets_compile() -> None:
    for block in blocks("python"):
        compile(block, "README.md", "exec")


def test_the_admin_example_body_is_what_the_endpoint_accepts() -> None:
    [body] = re.findall(r"admin/drone-address .*?-d '([^']+)'", README)
    assert _parse_address(json.loads(body)) is not None


def test_every_setting_is_documented_by_its_flag() -> None:
    help_text = subprocess.run(
        [str(BIN / "tello-mcp"), "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for setting in (*SERVE.settings, *(s for entry in SERVERS.values() for s in entry.settings.settings)):
        assert setting.flag in help_text
        assert setting.env in help_text


@pytest.mark.anyio
async def test_the_tool_table_names_exactly_the_served_tools() -> None:
    from servers.drone.runtime import DroneRuntime
    from servers.drone.server import build_drone_server

    section = README.split("## The drone tools", 1)[1].split("\n## ", 1)[0]
    first_cells = [row.split("|")[1] for row in section.splitlines() if row.startswith("| `")]
    documented = {name for cell in first_cells for name in re.findall(r"`([a-z_]+)`", cell)}
    server, _ = build_drone_server(DroneRuntime())  # building opens nothing
    served = {tool.name for tool in await server.list_tools()}
    assert documented == served


@pytest.mark.anyio
async def test_the_djitellopy_snippet_flies_the_simulator() -> None:
    import contextlib
    import io

    from drone_sim import DroneSimulator, SimConfig
    from tello_io.clock import ScaledClock

    [snippet] = [block for block in blocks("python") if "shared_ports" in block]
    printed = io.StringIO()

    def run() -> None:
        with contextlib.redirect_stdout(printed):
            exec(compile(snippet, "README.md", "exec"), {})

    config = SimConfig(host="127.0.0.2", port=8889, state_port=8890)
    async with DroneSimulator(config, clock=ScaledClock(1.0), video=None) as sim:
        with anyio.fail_after(20):
            await anyio.to_thread.run_sync(run)
        assert printed.getvalue().strip() == str(sim.truth.battery_pct)
        assert [r.data for r in sim.truth.received] == [b"command", b"battery?"]


def test_the_settings_table_is_the_generated_one() -> None:
    documented = README.split("<!-- settings:start -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    generated = subprocess.run(
        [str(BIN / "tello-mcp"), "settings", "--markdown"], capture_output=True, text=True, check=True
    ).stdout
    assert documented == generated, "regenerate the README's table with `tello-mcp settings --markdown`"
    assert settings_table([SERVE, *(entry.settings for entry in SERVERS.values())]) == generated
