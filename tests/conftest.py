"""What every test directory shares: the repository on `sys.path`, and the anyio backend.

Tests run on asyncio (real time) by default. A test marked `virtual_time` runs on trio under
`MockClock(autojump_threshold=0)`: time stands still while any task can run and jumps to the
next deadline when every task waits. Simulator and link then share that clock (`LoopClock`)
over an in-memory network, so a 60-second flight takes milliseconds and a busy machine cannot
make a second pass between two state packets. Tests that cross a real process or socket
boundary (uvicorn over HTTP, the CLIs) stay on asyncio with wide margins.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

# tests/ is not a package: `tests.support`, `tests.link.rig`, ... need the repository root.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "virtual_time: run on trio with a MockClock that jumps when every task waits"
    )


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> object:
    if request.node.get_closest_marker("virtual_time") is not None:
        from trio.testing import MockClock

        return ("trio", {"clock": MockClock(autojump_threshold=0)})
    return "asyncio"


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh venv holding only the wheel built from this checkout (one
    build per session: packaging, plugin and container tests share it).

    Its third-party dependencies come from the development venv through a plain `.pth` path
    line: no download, and no editable finder (a path line does not run the development
    venv's own `.pth` hooks), so everything of ours is imported from the wheel."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), _REPO],
        check=True,
        timeout=300,
        cwd=root,
    )
    [wheel] = dist.glob("tello_mcp-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        timeout=300,
        cwd=root,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    dev_site = sysconfig.get_paths()["purelib"]
    (Path(site) / "zz_dependencies.pth").write_text(f"{dev_site}\n", encoding="utf-8")
    return venv / "bin"
