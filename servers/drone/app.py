"""The drone as a component of the suite: every drone endpoint over one shared `DroneRuntime`.

Standard mode at `/drone` and the tool modes beside it (`/drone-search`, `/drone-code`,
`/drone-codesearch`, built by `tool_modes` from the Standard server), all over the same
runtime, so one link flies the drone for all of them.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, Final, cast

import anyio
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servers.deck.hub import Deck, deck_running
from servers.deck.routes import DECK_PATH, PUBLIC_PATHS, deck_routes
from servers.drone.flights_routes import flight_routes
from servers.drone.runtime import DroneRuntime
from servers.drone.server import build_drone_server, watch_state
from servers.http import HttpSettings
from servers.resource_updates import ResourceUpdates
from servers.suite import Component, build_suite_app
from tool_modes.code import CodeRunner
from tool_modes.modes import MODES, Mode, mode_mounts

STANDARD_PATH = "/drone"


def drone_mounts(
    runtime: DroneRuntime,
    *,
    modes: Sequence[Mode] = MODES,
    code_runner: CodeRunner | None = None,
    deck: Deck | None = None,
) -> tuple[dict[str, MCPServer[Any]], list[ResourceUpdates]]:
    """The drone in each tool mode (`/drone`, `/drone-search`, `/drone-code`,
    `/drone-codesearch`), every one over the same runtime: one link flies the drone for all.
    Every path serves the canned prompts, and its own mode's skill text at the skill's URI;
    `deck` feeds the flight deck's MCP App (`get_state`'s)."""
    server, updates = build_drone_server(runtime, deck=deck)
    mounts = mode_mounts(server, STANDARD_PATH, modes=modes, code_runner=code_runner)
    _serve_mode_skills(mounts)
    return mounts, [updates]


def _serve_mode_skills(mounts: dict[str, MCPServer[Any]]) -> None:
    """`skill://drone-operations/SKILL.md` on each mode path: `modes/<mode>.md` of the skill
    (the Standard server at `/drone` already serves `SKILL.md`, the Standard text)."""
    from servers.skills import SKILLS_DIR, load_skill, register_mode_text

    skill = load_skill(SKILLS_DIR / "drone-operations")
    for mode in MODES:
        path = f"{STANDARD_PATH}-{mode}"
        if mode != "standard" and path in mounts:
            register_mode_text(mounts[path], skill, mode)


CONNECT_WAIT_S = 2.0
"""Seconds start-up waits for the drone's first state packets, so a client's first call does not
see a link still coming up; a drone that stays silent (off, out of range) does not hold up
serving longer than this: the link keeps probing and `get_state` says what it sees."""


@contextlib.asynccontextmanager
async def running(runtime: DroneRuntime, notifiers: list[ResourceUpdates]) -> AsyncGenerator[DroneRuntime]:
    """Start the runtime and the state-change publisher; land and close on exit."""
    async with runtime, anyio.create_task_group() as tg:
        tg.start_soon(watch_state, runtime, notifiers)
        with runtime.clock.move_on_after(CONNECT_WAIT_S):
            while not runtime.connected():
                await runtime.link.wait_changed()
        try:
            yield runtime
        finally:
            tg.cancel_scope.cancel()


def drone_component(runtime: DroneRuntime, *, modes: Sequence[Mode] = MODES) -> Component:
    """The drone's endpoints over `runtime`, which the component's lifespan starts and stops,
    with the sandbox workers of the code modes."""
    runner = CodeRunner() if {"code", "codesearch"} & set(modes) else None
    deck = Deck(runtime, max_viewers=runtime.settings.deck_max_viewers)  # the flight deck (/deck)
    mounts, notifiers = drone_mounts(runtime, modes=modes, code_runner=runner, deck=deck)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncGenerator[None]:
        async with (
            contextlib.AsyncExitStack() if runner is None else runner,
            running(runtime, notifiers),
            deck_running(deck),
        ):
            yield

    s = runtime.settings
    return Component(
        name="drone",
        mounts=mounts,
        stdio=mounts[STANDARD_PATH],
        lifespan=lifespan,
        ready=runtime.ready,
        routes=[
            Route(ADMIN_ADDRESS_PATH, _drone_address(runtime), methods=["GET", "POST"]),
            Route(STATUS_PATH, _drone_status(runtime), methods=["GET"]),
            *deck_routes(deck),
            *flight_routes(runtime),  # the flight recorder's files (/flights)
        ],
        public_paths=PUBLIC_PATHS,
        pages=[DECK_PATH],
        labels={path: f"{_MODE_TITLES[_mode_of(path)]} mode" for path in mounts},
        listed_routes={STATUS_PATH: "JSON: the drone link's status"},
        detail="embedded simulator" if s.sim else f"drone at {s.drone_host}:{s.drone_port}",
        on_shutdown=functools.partial(_shut_down, deck, runtime),
    )


_MODE_TITLES: Final[dict[Mode, str]] = {
    "standard": "Standard",
    "search": "Search",
    "code": "Code",
    "codesearch": "CodeSearch",
}


def _mode_of(path: str) -> Mode:
    """The mode `mode_mounts` serves at `path` (`/drone` Standard, `/drone-<mode>` the others)."""
    found: Mode = "standard"
    for mode in MODES:
        if path == f"{STANDARD_PATH}-{mode}":
            found = mode
    return found


async def _shut_down(deck: Deck, runtime: DroneRuntime) -> None:
    deck.close()  # the deck's streams end, so uvicorn's graceful exit does not wait on them
    await runtime.land_for_shutdown()


def build_drone_app(runtime: DroneRuntime, http: HttpSettings, *, modes: Sequence[Mode] = MODES) -> Starlette:
    """The drone alone in an app (tests; `tello-mcp serve drone` goes through the registry)."""
    return build_suite_app([drone_component(runtime, modes=modes)], http)


ADMIN_ADDRESS_PATH = "/admin/drone-address"
STATUS_PATH = "/drone-status"


def _drone_status(runtime: DroneRuntime) -> Callable[[Request], Awaitable[Response]]:
    """The drone link as operators and monitoring see it (always 200 while serving): the
    readiness probe deliberately ignores it."""

    async def endpoint(_: Request) -> Response:
        if not runtime.ready():
            return JSONResponse({"link": "starting"}, status_code=503)
        reading = runtime.link.reading()
        return JSONResponse(
            {
                "drone": reading.drone,
                "link": reading.status.value,
                "state_age_s": None if reading.state_age_s is None else round(reading.state_age_s, 3),
                "reply_age_s": None if reading.reply_age_s is None else round(reading.reply_age_s, 3),
                "flying": runtime.link.is_flying(),
                "hold": None if runtime.hold.state is None else runtime.hold.state.as_dict(),
            }
        )

    return endpoint


_LOOPBACK = ("127.", "::1", "localhost")


def _drone_address(runtime: DroneRuntime) -> Callable[[Request], Awaitable[Response]]:
    """GET shows the drone's address; POST {"host": ..., "port": ...} re-points the link at a
    drone that came back on another IP. Only from loopback (kubectl exec / port-forward); the
    app's `RouteGuard` has already refused foreign Hosts and Origins and non-JSON POSTs, which
    is what keeps a web page in the operator's browser from re-pointing it."""

    async def endpoint(request: Request) -> Response:
        client = request.client.host if request.client else ""
        if not client.startswith(_LOOPBACK):
            return JSONResponse(
                {"error": "admin endpoint is only served to loopback clients"}, status_code=403
            )
        if request.method == "POST":
            try:
                body: object = await request.json()
            except ValueError:
                body = None
            address = _parse_address(body)
            if address is None:
                return JSONResponse(
                    {"error": 'expected JSON {"host": "<IP address>", "port": <int, optional>}'},
                    status_code=400,
                )
            refused = drone_address_refusal(address[0])
            if refused is not None:
                return JSONResponse({"error": refused}, status_code=400)
            runtime.link.set_drone_address(*address)
        return JSONResponse({"drone": runtime.link.drone_address, "link": runtime.link.status().value})

    return endpoint


_DRONE_NETWORKS: Final = tuple(
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8",  # the simulator
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",  # a Tello's own access point is 192.168.10.1
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


def drone_address_refusal(host: str) -> str | None:
    """Why `host` cannot be a drone's address, or None. A Tello is reached on its own WiFi or
    a private LAN (the simulator on loopback): a public, broadcast, multicast or unspecified
    address would send flight commands somewhere no drone listens, or to every host on a
    segment, so the admin route refuses it rather than trusting the operator's typing. The
    broadcast check assumes a /24 (the Tello's own 192.168.10.0/24 and most home LANs)."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    last = ipaddress.ip_network(f"{address}/{24 if address.version == 4 else 128}", strict=False)
    broadcast = address.version == 4 and address == last.broadcast_address and not address.is_loopback
    if broadcast or address.is_multicast or address.is_unspecified:
        return f"{host} is a broadcast, multicast or unspecified address, not one drone's"
    if not any(address in net for net in _DRONE_NETWORKS):
        return (
            f"{host} is not an address a Tello can have: allowed are loopback (the simulator), "
            "private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) and link-local (169.254/16, fe80::/10)"
        )
    return None


def _parse_address(body: object) -> tuple[str, int | None] | None:
    if not isinstance(body, dict):
        return None
    fields = cast("dict[str, object]", body)
    host, port = fields.get("host"), fields.get("port")
    if not isinstance(host, str) or (port is not None and (type(port) is not int or not 0 < port < 65536)):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, port
