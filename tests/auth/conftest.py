"""Access-control tests: real signed tokens against the drone app over HTTP (asyncio, real time)."""

from __future__ import annotations

import pytest

from tests.auth.keys import Issuer


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    """One RSA authorization server for the session (key generation is the slow part)."""
    return Issuer.generate()


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """asyncio, module-wide, so one served app can back a module's tests (uvicorn: real time)."""
    return "asyncio"
