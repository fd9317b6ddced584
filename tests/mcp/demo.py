"""A tiny demo MCP server for the `servers.http` tests: ranged and failing tools, a resource, a prompt."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal, TypedDict

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field
from starlette.applications import Starlette

from servers.http import HttpSettings, serve

GATEWAY_HOST = "agentgateway.agentgateway-system.svc.cluster.local"
GATEWAY_AUTHORITY = f"{GATEWAY_HOST}:8080"
PATHS = ("/alpha", "/beta")


class Moved(TypedDict):
    distance_cm: int
    direction: str


@dataclass
class DemoState:
    """What the demo servers' lifespans and tools did, for assertions."""

    events: list[str] = field(default_factory=list[str])
    hold_entered: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)


def build_demo(name: str, state: DemoState) -> MCPServer[DemoState]:
    @contextlib.asynccontextmanager
    async def lifespan(_: MCPServer[DemoState]) -> AsyncGenerator[DemoState]:
        state.events.append(f"{name} up")
        try:
            yield state
        finally:
            state.events.append(f"{name} down")

    server: MCPServer[DemoState] = MCPServer(name, version="0.0.1", lifespan=lifespan)

    @server.tool(
        description="Move by a bounded distance.",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        ),
    )
    async def move(
        distance_cm: Annotated[int, Field(ge=20, le=500, description="how far")],
        direction: Literal["up", "down"] = "up",
    ) -> Moved:
        return {"distance_cm": distance_cm, "direction": direction}

    @server.tool(description="Always refuses.")
    async def refuse(reason: str) -> str:
        raise ToolError(f"refused: {reason}")

    @server.tool(description="Counts, reporting progress.")
    async def count(steps: Annotated[int, Field(ge=1, le=10)], ctx: Context[DemoState]) -> int:
        for done in range(1, steps + 1):
            await ctx.report_progress(done, steps, f"step {done}")
        return steps

    @server.tool(description="Waits until the test releases it.", structured_output=False)
    async def hold(ctx: Context[DemoState]) -> str:
        shared = ctx.request_context.lifespan_context
        shared.hold_entered.set()
        await shared.release.wait()
        return "released"

    @server.resource("demo://state", mime_type="application/json", description="Demo state.")
    def demo_state() -> str:
        return '{"ok": true}'

    @server.prompt(description="Greets someone.")
    def greet(who: str) -> str:
        return f"Hello, {who}!"

    return server


@dataclass
class Served:
    port: int
    state: DemoState
    ready: list[bool]
    app: Starlette

    def url(self, path: str = PATHS[0]) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def demo_settings() -> HttpSettings:
    """Listen locally, but accept the gateway's name too (what a cluster config adds)."""
    return replace(HttpSettings.cluster([GATEWAY_HOST], port=0), host="127.0.0.1", shutdown_timeout=1.0)


@contextlib.asynccontextmanager
async def running(app: Starlette, settings: HttpSettings) -> AsyncGenerator[int]:
    """`serve(app)` in a task group for the duration of the block; yields the bound port."""
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, settings)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()
