"""Fixtures for the MCP hosting tests: the demo servers served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from servers.http import build_app

if TYPE_CHECKING:
    from tests.mcp.demo import Served

# tests/ is not a package, so `tests.mcp.demo` and `tests.support` need the repo root on sys.path.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def served(anyio_backend: str) -> AsyncGenerator[Served]:
    """Two demo servers (`/alpha`, `/beta`) on one app, on a free port, stopped after the test."""
    from tests.mcp.demo import PATHS, DemoState, Served, build_demo, demo_settings, running

    state = DemoState()
    ready = [True]
    app = build_app(
        {path: build_demo(f"demo{path.replace('/', '-')}", state) for path in PATHS},
        settings=demo_settings(),
        ready=lambda: ready[0],
    )
    async with running(app, demo_settings()) as port:
        yield Served(port=port, state=state, ready=ready, app=app)
