"""Fixtures for the fetcher tests: the test site (one per module) and the loopback-only guard.

`dials` wraps the one place httpcore opens TCP connections: every test records what was
dialled, and any address outside 127.0.0.0/8 fails the test (and is never connected to), so
the suite provably sends nothing off the machine and every refusal happened before connecting.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpcore2
import pytest

# tests/ is not a package, so `tests.fetch.website` needs the repository root on the path.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

if TYPE_CHECKING:
    from tests.fetch.website import Site


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def site(anyio_backend: str) -> AsyncGenerator[Site]:
    from tests.fetch.website import running_site

    async with running_site() as running:
        yield running


@pytest.fixture(autouse=True)
def dials(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every host httpcore dialled during the test; only loopback is let through."""
    dialled: list[str] = []
    escaped: list[str] = []
    original = httpcore2.AnyIOBackend.connect_tcp  # pyright: ignore[reportAttributeAccessIssue]

    async def loopback_only(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        dialled.append(host)
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            escaped.append(host)
            raise httpcore2.ConnectError(f"test guard: refusing to dial non-loopback {host}")
        return await original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore2.AnyIOBackend, "connect_tcp", loopback_only)
    yield dialled
    assert not escaped, f"the fetcher tried to connect to non-loopback addresses: {escaped}"
