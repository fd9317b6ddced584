"""The wheel works on its own: built from this checkout, installed into a fresh venv outside it,
`tello-mcp serve --sim` starts there and serves the tools, the prompts and the skill.

The venv is the session's `wheel_venv` (tests/conftest.py): the wheel alone, third-party
dependencies by a path entry. Everything of ours is imported from the wheel, which the test
checks, so a file missing from the package data fails here.
"""

from __future__ import annotations

import subprocess
import sysconfig
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.support.serve import serving

REPO = Path(__file__).resolve().parents[2]
DEV_SITE = Path(sysconfig.get_paths()["purelib"])
TOOLS = 15


@pytest.fixture(scope="module")
def installed(wheel_venv: Path) -> Path:
    """The fresh venv's bin directory (see `wheel_venv` in tests/conftest.py)."""
    return wheel_venv


def test_our_packages_come_from_the_wheel(installed: Path) -> None:
    packages = ("servers", "skills", "tool_modes", "drone_sim", "tello_io")
    probe = (
        f"import importlib.resources as r, tool_modes.sandbox as s, {', '.join(packages)};"
        f"print({', '.join(f'{p}.__file__' for p in packages)});"
        "print(sorted(p.name for p in r.files(s).iterdir() if p.name.endswith('.js')))"
    )
    done = subprocess.run(
        [str(installed / "python"), "-c", probe], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    files, scripts = done.stdout.splitlines()
    for path in files.split():
        assert str(installed.parent) in path, f"{path} is not the installed copy"
    assert "prelude.js" in scripts


@pytest.fixture
async def served(installed: Path, tmp_path: Path, anyio_backend: object) -> AsyncGenerator[str]:
    command = [str(installed / "tello-mcp"), "serve", "drone", "--sim", "--port", "0"]
    async with serving(command, tmp_path / "stderr.log", cwd=tmp_path) as started:
        yield started.url("/drone")


@pytest.mark.anyio
async def test_the_installed_server_serves_tools_prompts_and_the_skill(served: str) -> None:
    with anyio.fail_after(60):
        async with Client(served, mode="2026-07-28") as client:
            tools = (await client.list_tools()).tools
            prompts = (await client.list_prompts()).prompts
            skill = await client.read_resource("skill://drone-operations/SKILL.md")
    assert len(tools) == TOOLS
    assert {p.name for p in prompts} >= {"preflight_check", "emergency_procedure"}
    text = getattr(skill.contents[0], "text", "")
    assert text.startswith("---\nname: drone-operations")


def test_the_wheel_carries_the_licence_it_declares(installed: Path) -> None:
    probe = (
        "import importlib.metadata as m; d = m.distribution('tello-mcp');"
        "print(d.metadata['License-Expression']);"
        "f = next(p for p in d.files or [] if p.name == 'LICENSE' and '.dist-info' in str(p));"
        "print(f.read_text()[:200])"
    )
    done = subprocess.run(
        [str(installed / "python"), "-c", probe], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    expression, text = done.stdout.split("\n", 1)
    assert expression == "Apache-2.0"
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert (REPO / "LICENSE").read_text().startswith(text.rstrip("\n")[:100])
