"""What every test directory shares: the repository on `sys.path`, and the anyio backend.

Tests run on asyncio (real time) by default. A test marked `virtual_time` runs on trio under
`MockClock(autojump_threshold=0)`: time stands still while any task can run and jumps to the
next deadline when every task waits. Simulator and link then share that clock (`LoopClock`)
over an in-memory network, so a 60-second flight takes milliseconds and a busy machine cannot
make a second pass between two state packets. Tests that cross a real process or socket
boundary (uvicorn over HTTP, the CLIs) stay on asyncio with wide margins.
"""

from __future__ import annotations

import sys
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
