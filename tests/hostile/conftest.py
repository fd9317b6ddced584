"""Hostile input over real HTTP: asyncio (uvicorn needs real sockets), one served suite per module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"
