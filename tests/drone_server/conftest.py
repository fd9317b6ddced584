"""Fixtures for the drone MCP server tests: the server flying its embedded simulator."""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# tests/ is not a package, so `tests.drone_server.harness` and `tests.support` need the repo root.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

if TYPE_CHECKING:
    from tests.drone_server.harness import Drone, Served


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def drone(anyio_backend: str) -> AsyncGenerator[Drone]:
    """A landed, connected drone behind an in-memory MCP server (fresh simulator per test)."""
    from tests.drone_server.harness import flying

    async with flying() as started:
        yield started


@pytest.fixture
async def served(anyio_backend: str) -> AsyncGenerator[Served]:
    """The drone app over HTTP on 127.0.0.1 (default Host/Origin checks), connected and landed."""
    from tests.drone_server.harness import serving

    async with serving() as started:
        yield started
