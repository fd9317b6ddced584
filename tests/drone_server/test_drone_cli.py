"""The README's commands as real processes: `tello-mcp serve [drone] --sim` over HTTP and stdio.

The HTTP server prints its endpoints (with the bound port for `--port 0`) on stdout; logs go
to stderr. Shutdown is by SIGTERM and must be clean. Over stdio, stdout must carry nothing but
protocol messages: the SDK's stdio client reports any other line as an error. The processes run
on a 10x wall clock over UDP, so they get a wide staleness margin (`HTTP_STALE_AFTER_S`).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import Process
from mcp import Client, StdioServerParameters

from servers.registry import SERVERS
from tests.drone_server.harness import ERAS, HTTP_STALE_AFTER_S, TIME_SCALE, TOOL_NAMES, structured
from tests.support.serve import serving

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
TELLO_MCP = Path(sys.executable).parent / "tello-mcp"
START_TIMEOUT = 30.0
"""Real seconds for a cold start (imports dominate: ~2 s)."""
STOP_TIMEOUT = 10.0
"""Real seconds a SIGTERM'd server may take to land the drone and exit (< 4 s today)."""
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/drone\b")
ENDPOINT = re.compile(r"^  (http://127\.0\.0\.1:\d+/[a-z-]+)  ([a-z]+)")


SIM = ["--sim", "--time-scale", str(TIME_SCALE), "--stale-after-s", str(HTTP_STALE_AFTER_S)]


@dataclass
class Cli:
    process: Process
    url: str
    banner: str
    stderr: Path

    @property
    def base(self) -> str:
        return self.url.removesuffix("/drone")


@pytest.fixture(params=[["serve"], ["serve", "drone"]], ids=["all", "drone"])
async def cli(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> AsyncGenerator[Cli]:
    """`tello-mcp serve [drone] --sim --port 0`, started, its printed URLs parsed; stopped after."""
    command = [str(TELLO_MCP), *request.param, *SIM, "--port", "0"]
    async with serving(command, tmp_path / "stderr.log", cwd=REPO) as served:
        url = served.url("/drone")
        assert URL.search(url) is not None, served.banner
        yield Cli(served.process, url, served.banner, served.stderr)


async def test_cli_serves_the_url_it_prints(cli: Cli) -> None:
    assert cli.banner.startswith("tello-mcp ")
    assert f"{cli.url}  drone, Standard mode (embedded simulator)" in cli.banner
    assert f"{cli.base}/drone-search  drone, Search mode (embedded simulator)" in cli.banner
    assert f"{cli.base}/drone-status  drone (JSON: the drone link's status)" in cli.banner
    assert "; access control off (probes " in cli.banner
    with anyio.fail_after(20):
        async with httpx.AsyncClient(base_url=cli.base, timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
        for mode in ERAS:
            async with Client(cli.url, mode=mode) as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                state = structured(await client.call_tool("get_state", {}))
            assert tools == TOOL_NAMES, mode
            assert state["freshness"]["link"] == "connected", mode
            assert state["flight"] == "landed", mode
    assert ready.status_code == 200
    assert "drone_runtime_started" in cli.stderr.read_text()


async def test_every_endpoint_in_the_banner_serves_both_eras(cli: Cli) -> None:
    served: dict[str, str] = {
        m.group(1): m.group(2)
        for line in cli.banner.splitlines()
        if (m := ENDPOINT.match(line)) and not line.endswith(("(web page)", "status)"))
    }
    pages = [line.split()[0] for line in cli.banner.splitlines() if line.endswith("drone (web page)")]
    assert [page.rsplit("/", 1)[1] for page in pages] == ["deck"], cli.banner
    names = set(served.values())
    assert names == ({n for n, e in SERVERS.items() if e.in_all} if len(names) > 1 else {"drone"})
    drone_paths = {url.rsplit("/", 1)[1] for url, name in served.items() if name == "drone"}
    assert drone_paths == {"drone", "drone-search", "drone-code", "drone-codesearch"}
    with anyio.fail_after(30):
        for url in served:
            for mode in ERAS:
                async with Client(url, mode=mode) as client:
                    assert (await client.list_tools()).tools, (url, mode)
        async with httpx.AsyncClient(timeout=10) as http:
            for page in pages:
                assert (await http.get(page)).status_code == 200, page


async def test_cli_exits_cleanly_on_sigterm(cli: Cli) -> None:
    """Regression: the CancelledError from SIGTERM used to leave DroneRuntime through an
    AsyncExitStack that made it its own __context__; the process then spun at 100% CPU."""
    with anyio.fail_after(20):
        async with Client(cli.url, mode="2026-07-28") as client:
            took_off = structured(await client.call_tool("takeoff", {}))
    assert took_off["state"]["flight"] == "flying"
    cli.process.send_signal(signal.SIGTERM)
    with anyio.move_on_after(STOP_TIMEOUT):
        await cli.process.wait()
    log = cli.stderr.read_text()
    assert cli.process.returncode == 0, f"still running {STOP_TIMEOUT:g} s after SIGTERM"
    assert "shutdown_signal" in log
    assert "landing_before_shutdown" in log


@pytest.mark.parametrize("mode", ERAS)
async def test_stdio_serves_both_eras_with_a_clean_stdout(mode: str) -> None:
    problems: list[Exception] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):  # e.g. a non-JSON line on the server's stdout
            problems.append(message)

    params = StdioServerParameters(
        command=str(TELLO_MCP),
        args=["serve", "drone", "--transport", "stdio", *SIM],
        cwd=REPO,
    )
    with anyio.fail_after(START_TIMEOUT):
        async with Client(params, mode=mode, message_handler=on_message) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            battery = structured(await client.call_tool("get_battery", {}))  # a live read: the link is up
            state = structured(await client.call_tool("get_state", {}))
            refused = await client.call_tool("move", {"direction": "up", "distance_cm": 501})
    assert tools == TOOL_NAMES
    assert battery["source"] == "live"
    assert state["freshness"]["link"] == "connected"
    assert state["flight"] == "landed"
    assert refused.is_error
    assert problems == []


def test_stdio_needs_one_named_server() -> None:
    assert len(SERVERS) > 1
    done = subprocess.run(
        [str(TELLO_MCP), "serve", "--transport", "stdio"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--transport stdio serves one server" in done.stderr


def test_version_is_the_package_version() -> None:
    done = subprocess.run([str(TELLO_MCP), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == f"tello-mcp {version('tello-mcp')}"
