"""Fixtures for the metrics tests: the drone app over HTTP flying its embedded simulator."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.drone_server.harness import Served


@pytest.fixture
async def served(anyio_backend: str) -> AsyncGenerator[Served]:
    """The drone app over HTTP on 127.0.0.1, connected and landed (as in tests/drone_server)."""
    from tests.drone_server.harness import serving

    async with serving() as started:
        yield started
