"""Fixtures for the everything server tests.

One HTTP server per test module (`everything_url`): the server keeps no per-client state, so
tests can share it, and uvicorn's ~0.15 s shutdown is paid once per module rather than per test.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

# tests/ is not a package, so `tests.everything.harness` needs the repo root on the path.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def everything_url(anyio_backend: str) -> AsyncGenerator[str]:
    """The MCP URL of an everything server (`harness.FAST` timings) over `servers.http`."""
    from servers.everything import build_everything_server
    from tests.everything.harness import FAST, serving

    async with serving(build_everything_server(FAST)) as (url,):
        yield url
