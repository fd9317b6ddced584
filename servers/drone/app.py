"""The drone server's HTTP app: every drone endpoint over one shared `DroneRuntime`.

Today that is Standard mode at `/drone`; the tool modes (`/drone-search`, `/drone-code`,
`/drone-codesearch`) mount here beside it over the same runtime, so one link flies the
drone for all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette

from servers.drone.runtime import DroneRuntime
from servers.drone.server import build_drone_server, watch_state
from servers.http import HttpSettings, build_app
from servers.resource_updates import ResourceUpdates

STANDARD_PATH = "/drone"


def drone_mounts(runtime: DroneRuntime) -> tuple[dict[str, MCPServer[Any]], list[ResourceUpdates]]:
    server, updates = build_drone_server(runtime)
    return {STANDARD_PATH: server}, [updates]


@contextlib.asynccontextmanager
async def running(runtime: DroneRuntime, notifiers: list[ResourceUpdates]) -> AsyncGenerator[DroneRuntime]:
    """Start the runtime and the state-change publisher; land and close on exit."""
    async with runtime, anyio.create_task_group() as tg:
        tg.start_soon(watch_state, runtime, notifiers)
        try:
            yield runtime
        finally:
            tg.cancel_scope.cancel()


def build_drone_app(runtime: DroneRuntime, http: HttpSettings) -> Starlette:
    mounts, notifiers = drone_mounts(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncGenerator[None]:
        async with running(runtime, notifiers):
            yield

    return build_app(mounts, settings=http, ready=runtime.ready, lifespan_extra=lifespan)
