"""The suite's servers, and one process serving any of them: the spine every server runs on.

Each server of the suite registers a `ServerEntry`: its name, its settings group, and how to
build a `Component` from those settings. A component is what a running server contributes to
the process: MCP servers mounted at paths, a lifespan (a drone link, a worker pool), a
readiness check, extra routes, and the one MCP server `--transport stdio` serves.

`build_suite_app` mounts any number of components in one Starlette app: lifespans enter in
registry order and leave in reverse, `/readyz` is the all-of of their checks, and the banner
lists every endpoint. `tello-mcp serve` runs every registered server this way (what
`make run` does); `tello-mcp serve drone` runs one (what a Kubernetes Deployment runs).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from servers.config import SettingsGroup
from servers.deck.index import index_routes
from servers.drain import Drain, DrainGate
from servers.http import Endpoint, HttpSettings, ReadyCheck, build_app

S = TypeVar("S")

Lifespan = Callable[[], AbstractAsyncContextManager[None]]


@dataclass(frozen=True, slots=True)
class Component:
    """What one server contributes to a process."""

    name: str
    mounts: Mapping[str, MCPServer[Any] | Endpoint]
    stdio: MCPServer[Any]
    """The server `--transport stdio` serves (a stdio process serves exactly one)."""
    lifespan: Lifespan | None = None
    ready: ReadyCheck | None = None
    routes: Sequence[BaseRoute] = ()
    detail: str = ""
    """For the banner, e.g. "embedded simulator"."""
    on_shutdown: Callable[[], Awaitable[None]] | None = None
    """Run when shutdown begins, while calls in flight are still answered (the drone lands)."""
    public_paths: Sequence[str] = ()
    """Routes served without a token even with access control on (a page shell with no data)."""
    pages: Sequence[str] = ()
    """Web pages for people (the flight deck), listed in the banner and the index at `/`."""
    labels: Mapping[str, str] = field(default_factory=dict[str, str])
    """Per mount path, what the banner says of it besides the name (the tool mode)."""
    listed_routes: Mapping[str, str] = field(default_factory=dict[str, str])
    """Routes for operators the banner lists, with what they show (`/drone-status`)."""


@dataclass(frozen=True, slots=True)
class ServerEntry(Generic[S]):
    """A server of the suite, as `tello-mcp serve NAME` knows it.

    `build` makes the component from settings alone; `connect`, for a server that must reach
    something before it knows what to serve (the proxy lists its upstream's tools), makes it
    inside an async context that stays open while it is served. `in_all`: part of a bare
    `tello-mcp serve`."""

    name: str
    summary: str
    settings: SettingsGroup[S]
    build: Callable[[S], Component] | None = None
    connect: Callable[[S], AbstractAsyncContextManager[Component]] | None = None
    in_all: bool = True

    def __post_init__(self) -> None:
        if (self.build is None) == (self.connect is None):
            raise ValueError(f"{self.name}: give exactly one of build and connect")

    def component(self, settings: S) -> Component:
        if self.build is None:
            raise TypeError(f"{self.name} must be connected first (see `opened`)")
        return self.build(settings)

    @contextlib.asynccontextmanager
    async def opened(self, settings: S) -> AsyncGenerator[Component]:
        if self.connect is not None:
            async with self.connect(settings) as component:
                yield component
        else:
            yield self.component(settings)


@contextlib.asynccontextmanager
async def opened(entries: Sequence[tuple[ServerEntry[Any], Any]]) -> AsyncGenerator[list[Component]]:
    """Every entry's component, with the connections some of them need held open."""
    if not entries:
        yield []
        return
    (entry, settings), rest = entries[0], entries[1:]
    async with entry.opened(settings) as first, opened(rest) as others:
        yield [first, *others]


@dataclass(slots=True)
class Readiness:
    """`/readyz` for several components: ready when every one of them is."""

    checks: list[tuple[str, ReadyCheck]] = field(default_factory=list[tuple[str, ReadyCheck]])

    async def __call__(self) -> bool:
        for name, check in self.checks:
            outcome = check()
            ok = await outcome if inspect.isawaitable(outcome) else outcome
            if not ok:
                raise RuntimeError(f"{name} is not ready")
        return True


def build_suite_app(components: Sequence[Component], http: HttpSettings) -> Starlette:
    """Every component's mounts and routes in one app, their lifespans stacked in order."""
    if not components:
        raise ValueError("no servers to serve")
    mounts: dict[str, MCPServer[Any] | Endpoint] = {}
    for component in components:
        for path, server in component.mounts.items():
            if path in mounts:
                raise ValueError(f"{path} is mounted twice ({component.name})")
            mounts[path] = server
    readiness = Readiness([(c.name, c.ready) for c in components if c.ready is not None])
    lifespans = [c.lifespan for c in components if c.lifespan is not None]
    hooks = [c.on_shutdown for c in components if c.on_shutdown is not None]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncGenerator[None]:
        async with nested(lifespans):
            yield

    index = index_routes(components)  # GET /: every endpoint, linking the pages
    app = build_app(
        mounts,
        settings=http,
        ready=readiness if readiness.checks else None,
        lifespan_extra=lifespan if lifespans else None,
        extra_routes=[*(route for c in components for route in c.routes), *index],
        public_paths=[*(p for c in components for p in c.public_paths), *(["/"] if index else [])],
    )
    drain = Drain(mounts, hooks, getattr(app.state, "begin_shutdown", None))
    app.add_middleware(DrainGate, drain=drain)
    app.state.drain = drain
    return app


@contextlib.asynccontextmanager
async def nested(lifespans: Sequence[Lifespan]) -> AsyncGenerator[None]:
    """Enter `lifespans` in order, leave them in reverse. Plain nesting rather than an
    AsyncExitStack: with a cancellation in flight (SIGTERM) the stack ties the exception's
    context into a cycle that contextlib then walks forever."""
    if not lifespans:
        yield
        return
    async with lifespans[0](), nested(lifespans[1:]):
        yield


def endpoints(components: Sequence[Component], base: str) -> list[str]:
    """One banner line per mounted MCP endpoint: its URL, server, mode (if any) and detail."""
    lines: list[str] = []
    for c in components:
        for path in c.mounts:
            label = f", {c.labels[path]}" if path in c.labels else ""
            detail = f" ({c.detail})" if c.detail else ""
            lines.append(f"{base}{path}  {c.name}{label}{detail}")
    return lines


def other_routes(components: Sequence[Component], base: str) -> list[str]:
    """One banner line per web page and listed operator route."""
    lines: list[str] = []
    for c in components:
        lines.extend(f"{base}{page}  {c.name} (web page)" for page in c.pages)
        lines.extend(f"{base}{path}  {c.name} ({what})" for path, what in c.listed_routes.items())
    return lines
