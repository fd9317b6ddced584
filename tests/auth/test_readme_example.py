"""The README's "Access control" worked example, run as written: the key script, the serve
command (on a free port), the client script against it."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import anyio
import pytest

from tests.support.serve import serving

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Access control\n", 1)[1].split("\n## ", 1)[0]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, flags=re.DOTALL)


async def test_the_worked_example_runs(tmp_path: Path) -> None:
    make_keys, call = _blocks("python")
    (tmp_path / "make-keys.py").write_text(make_keys, encoding="utf-8")
    [commands] = _blocks("sh")
    keys_line, serve_line = (shlex.split(line) for line in commands.strip().splitlines())
    assert keys_line == [".venv/bin/python", "make-keys.py"]
    await anyio.run_process([sys.executable, "make-keys.py"], cwd=tmp_path)
    assert serve_line[:3] == [".venv/bin/tello-mcp", "serve", "drone"]
    command = [str(BIN / "tello-mcp"), *serve_line[1:], "--port", "0"]  # the last --port wins
    async with serving(command, tmp_path / "stderr.log", cwd=tmp_path) as served:
        url = served.url("/drone")
        (tmp_path / "call.py").write_text(call.replace("http://127.0.0.1:8000/drone", url), encoding="utf-8")
        with anyio.fail_after(60):
            done = await anyio.run_process([sys.executable, "call.py"], cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stderr.decode()
        printed = done.stdout.decode()
        assert "flight: landed" in printed
        assert "takeoff needs the drone:fly scope" in printed
        with anyio.fail_after(30):
            bare = await anyio.run_process(
                [sys.executable, "-c", f"import httpx; print(httpx.post({url!r}, json={{}}).status_code)"],
                check=False,
            )
        assert bare.stdout.decode().strip() == "401"
