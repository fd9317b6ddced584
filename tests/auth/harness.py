"""The drone app over HTTP with access control on, and MCP clients carrying a bearer token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from servers.auth.settings import AccessSettings
from tests.auth.keys import AUDIENCE, Issuer, bearer
from tests.drone_server.harness import Served, http_settings, serving


def jwt_access(issuer: Issuer, directory: Path, **overrides: Any) -> AccessSettings:
    """JWT mode trusting `issuer`, its JWKS written to a file in `directory`."""
    jwks = issuer.write_jwks(directory / "jwks.json")
    return AccessSettings(
        **{"jwks_file": str(jwks), "issuer": issuer.issuer, "audience": (AUDIENCE,), **overrides}
    )


@contextlib.asynccontextmanager
async def guarded(access: AccessSettings) -> AsyncGenerator[Served]:
    """The drone app (every mode) on 127.0.0.1 with `access`, connected and landed."""
    async with serving(http=http_settings(access=access)) as served:
        yield served


@contextlib.asynccontextmanager
async def client(url: str, token: str | None, mode: str) -> AsyncGenerator[Client]:
    """An MCP client of `url` in `mode` sending `token` (if any) on every request."""
    headers = bearer(token) if token is not None else {}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as connected,
    ):
        yield connected
