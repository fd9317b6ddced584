"""The whole suite (drone with its embedded simulator, everything, fetch) in one served app,
as `tello-mcp serve --sim` runs it, plus raw HTTP helpers for requests no client would send."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from servers.drone.app import drone_component
from servers.drone.runtime import DroneRuntime
from servers.everything.settings import EverythingSettings
from servers.fetch.config import FetchConfig
from servers.http import HttpSettings, serve
from servers.registry import SERVERS
from servers.suite import build_suite_app
from tests.drone_server.harness import (
    Served,
    http_drone_settings,
    http_settings,
    land_if_flying,
    wait_connected,
)


@dataclass
class Suite(Served):
    """Every server of the suite in one app (as `tello-mcp serve --sim` runs them)."""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serving_suite(**http_overrides: Any) -> AsyncGenerator[Suite]:
    """Every server of `tello-mcp serve --sim` in one app on 127.0.0.1, port 0."""
    runtime = DroneRuntime(http_drone_settings())
    http: HttpSettings = http_settings(**http_overrides)
    components = [
        drone_component(runtime),
        SERVERS["everything"].component(EverythingSettings()),
        SERVERS["fetch"].component(FetchConfig()),
    ]
    app = build_suite_app(components, http)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, http)
        await wait_connected(runtime)
        try:
            yield Suite(port, runtime, app)
            await land_if_flying(runtime)
        finally:
            tg.cancel_scope.cancel()


def messages(response: httpx.Response) -> list[Any]:
    """The JSON-RPC messages of a response, plain JSON or SSE (`data:` lines)."""
    if not response.content:
        return []
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    try:
        return [response.json()]
    except ValueError:
        return []


async def open_session(client: httpx.AsyncClient, url: str, host: str) -> str | None:
    """A handshake-era session at `url` (initialize + initialized); None from a stateless one."""
    headers = {
        "host": host,
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "h", "version": "0"},
        },
    }
    answer = await client.post(url, headers=headers, json=init)
    assert answer.status_code == 200, answer.text
    session = answer.headers.get("mcp-session-id")
    if session is not None:
        headers |= {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        done = await client.post(
            url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        assert done.status_code == 202, done.text
    return session
