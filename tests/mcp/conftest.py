"""Fixtures for the MCP hosting tests: the demo servers served over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import pytest

from servers.http import build_app

if TYPE_CHECKING:
    from tests.mcp.demo import Served


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
