"""Fixtures for the drone link's end-to-end tests: `DroneLink` against `drone_sim` over real UDP."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from drone_sim import DroneSimulator
    from servers.drone.link import DroneLink
    from tests.link.rig import Rig

# tests/ is not a package, so `tests.link.rig` needs the repository root on sys.path.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def rig(anyio_backend: str) -> AsyncIterator[Rig]:
    """A connected link and simulator sharing one scaled clock (see `tests/link/rig.py`)."""
    from tests.link.rig import make_rig

    async with make_rig() as r:
        yield r


@pytest.fixture
def sim_and_link(rig: Rig) -> tuple[DroneSimulator, DroneLink]:
    """The same pair, for tests that need nothing but the two ends."""
    return rig.sim, rig.link
