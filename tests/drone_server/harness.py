"""The drone MCP server flying its embedded simulator, for tests: in memory and over real HTTP.

Every test talks to the server through a real MCP client (`mcp.Client`) and judges the outcome
by the simulator's ground truth (`runtime.sim.truth`), never by the server's own account.

* In memory (`flying`, `connect("memory-...")`), in tests marked `virtual_time`: simulator and
  link run on the event loop's virtual clock over an in-memory network (`tests/support/
  virtual.py`), with production thresholds. Exact and immune to machine load.
* Over HTTP (`serving`, `connect("http-...")`): uvicorn needs asyncio and real sockets, so time
  runs `TIME_SCALE` times faster than real time over UDP, with a wide staleness margin
  (`HTTP_STALE_AFTER_S`); those tests are about the transport, not about freshness.

Nothing here sleeps: waits are predicates on the link or the simulator, bounded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import jsonschema
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, Tool
from starlette.applications import Starlette

from drone_sim import DroneSimulator, GroundTruth
from servers.drone.app import STANDARD_PATH, build_drone_app, running
from servers.drone.config import DroneSettings
from servers.drone.core.errors import DroneError
from servers.drone.core.protocol import LinkStatus
from servers.drone.runtime import DroneRuntime
from servers.drone.server import build_drone_server
from servers.http import HttpSettings, serve
from servers.resource_updates import ResourceUpdates
from tests.support.eras import ERAS
from tests.support.virtual import in_virtual_time, virtual_runtime

TIME_SCALE: Final = 4.0
"""Over HTTP only: simulated seconds per real second. Reads time out after 1 simulated second
(0.25 s real) and are retried; a loaded machine stalling the loop longer than that costs a
retry, not a failure. (In memory, tests run on virtual time and this does not apply.)"""


CONNECT_TIMEOUT: Final = 5.0
"""Real seconds a fresh runtime may take to hear the simulator (it takes ~10 ms)."""

TOOL_NAMES: Final = frozenset(
    {
        "get_state",
        "get_battery",
        "get_sensor",
        "takeoff",
        "land",
        "emergency",
        "stop",
        "move",
        "rotate",
        "flip",
        "go_to",
        "capture_photo",
        "set_speed",
        "set_led",
        "show_matrix",
    }
)
READ_ONLY: Final = frozenset({"get_state", "get_battery", "get_sensor", "capture_photo"})
IDEMPOTENT: Final = frozenset({"land", "stop", "set_speed", "set_led", "show_matrix", "emergency"})
NON_IDEMPOTENT: Final = frozenset({"takeoff", "move", "rotate", "flip", "go_to"})
DESTRUCTIVE: Final = frozenset({"emergency"})

KEEPALIVE: Final = "command"
"""The only datagram the link sends on its own (after 5 s of quiet, and to connect)."""


HTTP_STALE_AFTER_S: Final = 10.0
"""Over HTTP (scaled wall clock), simulated seconds without a state packet before a reading is
`stale` (production, and every virtual-time test: 1.0). At `TIME_SCALE` this tolerates a 2.5 s
stall of a loaded machine; freshness itself is tested on virtual time."""


def drone_settings(**overrides: Any) -> DroneSettings:
    """Settings for a runtime on virtual time: production values but for the overrides."""
    return DroneSettings(**{"sim": True, **overrides})


def http_drone_settings(**overrides: Any) -> DroneSettings:
    """Settings for a runtime on the scaled wall clock over real UDP (the HTTP tests)."""
    return DroneSettings(
        **{"sim": True, "time_scale": TIME_SCALE, "stale_after_s": HTTP_STALE_AFTER_S, **overrides}
    )


class _FliesTheSimulator:
    """The embedded simulator and its ground truth, for anything holding a started runtime."""

    runtime: DroneRuntime

    @property
    def sim(self) -> DroneSimulator:
        sim = self.runtime.sim
        assert sim is not None, "runtime not started"
        return sim

    @property
    def truth(self) -> GroundTruth:
        return self.sim.truth


@dataclass
class Drone(_FliesTheSimulator):
    """A running runtime (simulator + link + pilot) and an MCP server flying it."""

    runtime: DroneRuntime
    server: MCPServer[Any]
    updates: ResourceUpdates

    def now(self) -> float:
        """Simulated seconds."""
        return self.runtime.clock.now()


@dataclass
class Served(_FliesTheSimulator):
    """The drone app (`build_drone_app`) listening on 127.0.0.1 on a free port."""

    port: int
    runtime: DroneRuntime
    app: Starlette

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}{STANDARD_PATH}"


async def wait_connected(runtime: DroneRuntime, within: float = CONNECT_TIMEOUT) -> None:
    """Until the link hears fresh state packets (each one wakes `wait_changed`), bounded in real
    seconds."""
    with anyio.fail_after(within):
        while runtime.link.status() is not LinkStatus.CONNECTED:
            await runtime.link.wait_changed()


async def wait_status(drone: DroneSimulator, runtime: DroneRuntime, status: LinkStatus) -> None:
    """Until the link reports `status`, re-checked at every simulator tick (10 Hz simulated).

    Paced by the simulator rather than `link.wait_changed()`, so that this wait does not depend
    on the link waking its watchers (test_drone_freshness.py checks that separately).
    """
    await drone.wait_for(lambda _: runtime.link.status() is status, timeout_s=60.0)


async def wait_simulated(drone: DroneSimulator, runtime: DroneRuntime, seconds: float) -> None:
    """Until `seconds` of simulated time have passed (a predicate on the simulator's ticks)."""
    until = runtime.clock.now() + seconds
    await drone.wait_for(lambda _: runtime.clock.now() >= until, timeout_s=seconds + 30.0)


async def land_if_flying(runtime: DroneRuntime) -> None:
    """Bring a test's drone down before teardown (best effort, bounded).

    Teardown then does not depend on the runtime's own shutdown landing, which
    test_drone_shutdown.py checks by itself.
    """
    if not runtime.link.is_flying():
        return
    with anyio.move_on_after(5), contextlib.suppress(DroneError):
        await runtime.pilot.land()


@contextlib.asynccontextmanager
async def flying(settings: DroneSettings | None = None, *, land_first: bool = True) -> AsyncGenerator[Drone]:
    """An in-memory drone server over a started runtime (and its resource publisher), on virtual
    time (the test must be marked `virtual_time`)."""
    runtime = virtual_runtime(settings or drone_settings())
    server, updates = build_drone_server(runtime)
    async with running(runtime, [updates]):
        await wait_connected(runtime)
        yield Drone(runtime, server, updates)
        if land_first:
            await land_if_flying(runtime)


def http_settings(**overrides: Any) -> HttpSettings:
    return HttpSettings(**{"port": 0, "shutdown_timeout": 1.0, **overrides})


@contextlib.asynccontextmanager
async def serving(
    settings: DroneSettings | None = None, http: HttpSettings | None = None, *, land_first: bool = True
) -> AsyncGenerator[Served]:
    """`build_drone_app` served by `servers.http.serve` on 127.0.0.1, port 0, for the block."""
    runtime = DroneRuntime(settings or http_drone_settings())
    http = http or http_settings()
    app = build_drone_app(runtime, http)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, http)
        await wait_connected(runtime)
        try:
            yield Served(port, runtime, app)
            if land_first:
                await land_if_flying(runtime)
        finally:
            tg.cancel_scope.cancel()  # serve() stops uvicorn, then the runtime lands and closes


# ---- results ----


def text_of(result: CallToolResult) -> str:
    """The first text block of a result (the error text, or the JSON of structured content)."""
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    assert texts, f"no text content in {result.content!r}"
    return texts[0]


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


@dataclass
class Schemas:
    """The tools as listed by the server, to validate results against their output schemas."""

    tools: dict[str, Tool] = field(default_factory=dict[str, Tool])

    @classmethod
    async def of(cls, client: Client) -> Schemas:
        return cls({tool.name: tool for tool in (await client.list_tools()).tools})

    def check(self, name: str, result: CallToolResult) -> dict[str, Any]:
        """The structured content, after checking it against `name`'s output schema."""
        content = structured(result)
        schema = self.tools[name].output_schema
        assert schema is not None, f"{name} has no output schema"
        jsonschema.validate(content, schema)
        return content


async def call_ok(
    client: Client, schemas: Schemas, name: str, arguments: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Call a tool that must succeed; its structured content, checked against its schema."""
    result = await client.call_tool(name, dict(arguments or {}))
    return schemas.check(name, result)


def freshness_of(content: Mapping[str, Any]) -> dict[str, Any]:
    """The freshness block of any tool's structured content (actions carry it in `state`)."""
    holder = content.get("state", content)
    fresh: dict[str, Any] = holder["freshness"]
    return fresh


def assert_fresh(content: Mapping[str, Any]) -> None:
    """Connected, with a state packet younger than the staleness threshold in force: the
    production 1 s on virtual time, `HTTP_STALE_AFTER_S` on the scaled wall clock (a loaded
    machine stalling the loop 0.3 s there is 1.3 simulated seconds: a flake, not a finding)."""
    fresh = freshness_of(content)
    assert fresh["link"] == "connected", fresh
    assert fresh["state_age_s"] is not None
    assert 0 <= fresh["state_age_s"] < (1.0 if in_virtual_time() else HTTP_STALE_AFTER_S), fresh


# ---- ground truth: what reached the drone ----


def mark(truth: GroundTruth) -> int:
    return len(truth.received)


def sent_since(truth: GroundTruth, since: int) -> list[str]:
    """Texts of the datagrams the drone received after `mark`, lost ones included."""
    return [record.data.decode("ascii", "replace") for record in truth.received[since:]]


def assert_nothing_sent(truth: GroundTruth, since: int) -> None:
    """Nothing but the link's own keepalive reached the drone after `since`."""
    sent = [text for text in sent_since(truth, since) if text != KEEPALIVE]
    assert sent == [], f"the drone received {sent}"


def executed(truth: GroundTruth) -> list[str]:
    return truth.executed_texts()


def json_text(result: CallToolResult) -> Any:
    return json.loads(text_of(result))


# ---- one client over any transport ----

TRANSPORTS: Final = (
    pytest.param("memory-legacy", marks=pytest.mark.virtual_time, id="memory-legacy"),
    pytest.param("memory-2026-07-28", marks=pytest.mark.virtual_time, id="memory-2026-07-28"),
    "http-legacy",
    "http-2026-07-28",
)
"""For `@pytest.mark.parametrize("transport", TRANSPORTS)`: the in-memory ones on virtual time."""


@dataclass
class Connected(_FliesTheSimulator):
    """A client connected over `transport` to a drone server, and that server's drone."""

    transport: str
    client: Client
    runtime: DroneRuntime

    @property
    def mode(self) -> str:
        return self.transport.split("-", 1)[1]


@contextlib.asynccontextmanager
async def connect(
    transport: str, settings: DroneSettings | None = None, **client_options: Any
) -> AsyncGenerator[Connected]:
    """`transport` is `memory-<era>` (in-process `Client(server)`, on virtual time) or
    `http-<era>` (a real uvicorn on 127.0.0.1), era being `legacy` or `2026-07-28`. `settings`
    default to `drone_settings()` in memory and `http_drone_settings()` over HTTP."""
    kind, mode = transport.split("-", 1)
    assert mode in ERAS, transport
    if kind == "memory":
        async with flying(settings) as drone, Client(drone.server, mode=mode, **client_options) as client:
            yield Connected(transport, client, drone.runtime)
    else:
        assert kind == "http", transport
        async with serving(settings) as served, Client(served.url, mode=mode, **client_options) as client:
            yield Connected(transport, client, served.runtime)
