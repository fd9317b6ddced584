"""Fixtures for the drone link's end-to-end tests: `DroneLink` against `drone_sim` over real UDP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from drone_sim import DroneSimulator
    from servers.drone.link import DroneLink
    from tests.link.rig import Rig


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
