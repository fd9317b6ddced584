"""Fixtures for the drone MCP server tests: the server flying its embedded simulator."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.drone_server.harness import Drone, Served


@pytest.fixture
async def drone(anyio_backend: str) -> AsyncGenerator[Drone]:
    """A landed, connected drone behind an in-memory MCP server (fresh simulator per test)."""
    from tests.drone_server.harness import flying

    async with flying() as started:
        yield started


@pytest.fixture
async def airborne(anyio_backend: str) -> AsyncGenerator[Drone]:
    """Like `drone`, but hovering (on virtual time a takeoff costs milliseconds): for tests
    where flying is the setting, not the subject."""
    import anyio
    from mcp import Client

    from tests.drone_server.harness import flying, text_of

    async with flying() as started:
        async with Client(started.server) as client:
            with anyio.fail_after(10):
                took_off = await client.call_tool("takeoff", {})
        assert not took_off.is_error, text_of(took_off)
        yield started


@pytest.fixture
async def served(anyio_backend: str) -> AsyncGenerator[Served]:
    """The drone app over HTTP on 127.0.0.1 (default Host/Origin checks), connected and landed."""
    from tests.drone_server.harness import serving

    async with serving() as started:
        yield started


_IN_MEMORY_FIXTURES = frozenset({"drone", "airborne"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every in-memory test here runs on virtual time: those using the `drone`/`airborne`
    fixtures, and those parametrized with an in-memory `transport` (`connect("memory-...")`).
    The rest (HTTP, CLI, Inspector) stay on asyncio: uvicorn and subprocesses need real time."""
    here = Path(__file__).parent
    for item in items:
        if not item.path.is_relative_to(here) or not isinstance(item, pytest.Function):
            continue
        params = getattr(item, "callspec", None)
        transport = params.params.get("transport") if params is not None else None
        in_memory = isinstance(transport, str) and transport.startswith("memory-")
        if in_memory or _IN_MEMORY_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.virtual_time)
