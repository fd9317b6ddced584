"""Fixtures for the tool-mode tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ is not a package, so `tests.tool_modes.*` needs the repo root on the path.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
