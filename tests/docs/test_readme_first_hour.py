"""The README's first steps, run as written against a real `tello-mcp serve drone --sim`: the
Inspector command (through `npx`, as a newcomer types it) and the admin `curl`.

Only the base URL is swapped for the test server's (`--port 0`: port 8000 may be taken here).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import pytest

from tests.support.inspector import INSPECTOR_PACKAGE, INSPECTOR_VERSION, INSTALL_TIMEOUT, missing_node
from tests.support.serve import Served, serving

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TELLO_MCP = Path(sys.executable).parent / "tello-mcp"
README_BASE = "http://127.0.0.1:8000"


def _sh_lines() -> list[str]:
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL):
        lines.extend(line.split("  #", 1)[0].strip() for line in block.splitlines())
    return [line for line in lines if line]


def _first(word: str) -> list[str]:
    return shlex.split(next(line for line in _sh_lines() if word in line))


@pytest.fixture
async def served(tmp_path: Path, anyio_backend: str) -> AsyncGenerator[Served]:
    command = [str(TELLO_MCP), "serve", "drone", "--sim", "--port", "0"]
    async with serving(command, tmp_path / "stderr.log", cwd=tmp_path) as started:
        yield started


def _as_served(argv: list[str], served: Served) -> list[str]:
    base = served.url("/drone").removesuffix("/drone")
    swapped = [arg.replace(README_BASE, base) for arg in argv]
    assert swapped != argv, f"the README command names no {README_BASE} URL: {argv}"
    return swapped


def test_the_readme_pins_the_inspector_the_tests_drive() -> None:
    for line in _sh_lines():
        if INSPECTOR_PACKAGE in line:
            assert f"{INSPECTOR_PACKAGE}@{INSPECTOR_VERSION}" in line, line


@pytest.mark.inspector
@pytest.mark.timeout(INSTALL_TIMEOUT + 120)
async def test_the_first_inspector_command_lists_the_tools_as_written(served: Served) -> None:
    reason = missing_node()
    if reason is not None:
        pytest.skip(f"the Inspector needs Node.js: {reason}")
    argv = _first(INSPECTOR_PACKAGE)
    assert argv[0] == "npx"
    npx = shutil.which("npx")
    assert npx is not None
    with tempfile.TemporaryDirectory(prefix="inspector-home-") as home:
        # A throwaway HOME for the Inspector's own state; npm's download cache stays shared.
        npm_cache = os.environ.get("npm_config_cache") or str(Path.home() / ".npm")  # noqa: SIM112
        env = {**os.environ, "HOME": home, "NO_COLOR": "1", "CI": "1", "npm_config_cache": npm_cache}
        with anyio.fail_after(INSTALL_TIMEOUT + 60):
            done = await anyio.run_process(
                [npx, *_as_served(argv, served)[1:]], stdin=subprocess.DEVNULL, env=env, check=False
            )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr[-3000:]
    listed = json.loads(done.stdout)
    assert len(listed["tools"]) == 15
    assert "http_not_found" not in served.stderr.read_text()


async def test_the_admin_curl_repoints_the_drone_as_written(served: Served) -> None:
    argv = _first("admin/drone-address")
    assert argv[0] == "curl"
    curl = shutil.which("curl")
    assert curl is not None, "curl is needed to run the README's curl"
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [curl, *_as_served(argv, served)[1:], "-w", "\n%{http_code}"], check=False
        )
    body, status = done.stdout.decode().rsplit("\n", 1)
    assert status == "200", body
    posted = json.loads(argv[argv.index("-d") + 1])
    assert json.loads(body)["drone"].startswith(f"{posted['host']}:")
