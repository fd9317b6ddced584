"""pytest fixtures that fly the simulated drone: test your agent code, prompts or MCP client
against the real drone server and a simulator that knows what really happened.

Installed with tello-mcp and loaded by pytest on its own (a `pytest11` entry point named
`tello_mcp`; `-p no:tello_mcp` turns it off). The fixtures are async, for anyio's pytest plugin
(installed with tello-mcp): mark tests `@pytest.mark.anyio`.

    import pytest

    @pytest.mark.anyio
    async def test_takeoff(drone_mcp, drone_sim):
        result = await drone_mcp.call_tool("takeoff", {})
        assert not result.is_error
        assert drone_sim.truth.flying                  # what the drone did, not what we were told

Fixtures (each test gets its own drone):

* `drone_sim`: the running `drone_sim.DroneSimulator` the server flies. `drone_sim.truth` is
  the ground truth (`pose`, `flight_state`, `battery_pct`, `executed_texts()`, every datagram);
  `drone_sim.faults` are its link fault switches (`loss`, `delay_s`, `jitter_s`, `dup`,
  `emergency_silence`, `state_dropout`), settable mid-test, and `drone_sim.power_off()`,
  `reboot()`, `set_battery(pct)` change the drone itself. `await drone_sim.wait_for(lambda
  truth: ...)` waits for a condition (in simulated seconds) without sleeping.
* `drone_mcp`: an `mcp.Client` connected to the drone server flying `drone_sim`.
* `drone_mcp_mode`: which tool mode `drone_mcp` talks to: "standard" (the 15 drone tools,
  `/drone`), "search" (`get_tool`, `invoke_tool`), "code" (`run_code`) or "codesearch";
  override it, or parametrize it: `@pytest.mark.parametrize("drone_mcp_mode", ["standard",
  "search", "code", "codesearch"])`.
* `drone_mcp_protocol`: the client's protocol era, "2026-07-28" (default) or "legacy"
  (the 2025-11-25 handshake era).
* `drone_mcp_transport`: "memory" (default: `Client(server)` in-process) or "http" (the server
  behind a real uvicorn on 127.0.0.1, a free port).
* `drone_sim_settings`: the `DroneSettings` the server runs with. To change one, override it
  in your conftest.py and derive from the plugin's value:
  `return dataclasses.replace(drone_sim_settings, min_takeoff_battery=50)`.
* `simulated_drone`: what the others share (`runtime`, `sim`, `truth`, `faults`, and the MCP
  server of each mode, `server(mode)`), for tests that want the server object itself.

Time. By default (anyio's backends as they come: asyncio, and trio too if it is installed)
the simulator runs on the wall clock sped up `TIME_SCALE` times over loopback UDP, with
readings called stale only after `STALE_AFTER_S` simulated seconds without a state packet, so
a busy CI machine costs a retry, not a failure. For exact timing and production thresholds
(stale after 1 s), run on virtual time: override `anyio_backend` in your conftest.py (needs
`trio`); simulator and link then share the event loop's clock over an in-memory network, time
jumps whenever every task waits, and a minute of flight takes milliseconds. The code modes and
the "http" transport need real time (worker processes, uvicorn).

    @pytest.fixture
    def anyio_backend():
        from trio.testing import MockClock

        return ("trio", {"clock": MockClock(autojump_threshold=0)})

Importing this module (pytest does, in every run) adds nothing to the `servers` package: the
fixtures import what they use.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any, Final, cast

import pytest

if TYPE_CHECKING:
    from mcp import Client
    from mcp.server.mcpserver import MCPServer

    from drone_sim import DroneSimulator, Faults, GroundTruth
    from servers.drone.config import DroneSettings
    from servers.drone.runtime import DroneRuntime
    from tool_modes.modes import Mode

__all__ = [
    "MODES",
    "STALE_AFTER_S",
    "TIME_SCALE",
    "SimulatedDrone",
    "drone_mcp",
    "drone_mcp_mode",
    "drone_mcp_protocol",
    "drone_mcp_transport",
    "drone_sim",
    "drone_sim_settings",
    "simulated_drone",
]

TIME_SCALE: Final = 4.0
"""Real time only: simulated seconds per wall-clock second."""

STALE_AFTER_S: Final = 10.0
"""Real time only: simulated seconds without a state packet before a reading is stale
(production: 1.0). At `TIME_SCALE` this tolerates a 2.5 s stall of a loaded machine."""

MODES: Final = ("standard", "search", "code", "codesearch")
PROTOCOLS: Final = ("2026-07-28", "legacy")
TRANSPORTS: Final = ("memory", "http")
CONNECT_TIMEOUT_S: Final = 10.0
"""Seconds (of the test's clock) a fresh server may take to hear its simulator (~10 ms)."""

_STANDARD_PATH: Final = "/drone"


@dataclasses.dataclass(frozen=True, slots=True)
class SimulatedDrone:
    """A started drone runtime flying its embedded simulator, and its MCP server per mode."""

    runtime: DroneRuntime
    servers: Mapping[str, MCPServer[Any]]
    """By path: `/drone` (standard) and `/drone-<mode>`."""

    @property
    def sim(self) -> DroneSimulator:
        sim = self.runtime.sim
        if sim is None:
            raise RuntimeError("the drone runtime has stopped")
        return sim

    @property
    def truth(self) -> GroundTruth:
        return self.sim.truth

    @property
    def faults(self) -> Faults:
        return self.sim.faults

    @staticmethod
    def path(mode: str) -> str:
        return _STANDARD_PATH if mode == "standard" else f"{_STANDARD_PATH}-{mode}"

    def server(self, mode: str = "standard") -> MCPServer[Any]:
        try:
            return self.servers[self.path(mode)]
        except KeyError:
            raise LookupError(f"no {mode!r} server here; serving {', '.join(self.servers)}") from None


def _virtual_backend(anyio_backend: object) -> bool:
    """Whether `anyio_backend` runs trio on a `MockClock` (virtual time)."""
    if not isinstance(anyio_backend, tuple):
        return False
    backend = cast("tuple[object, ...]", anyio_backend)
    if len(backend) != 2 or backend[0] != "trio" or not isinstance(backend[1], dict):
        return False
    options = cast("dict[str, object]", backend[1])
    from trio.testing import MockClock

    return isinstance(options.get("clock"), MockClock)


def _on_virtual_time() -> bool:
    """Whether the running event loop is trio on a `MockClock`."""
    import sniffio

    if sniffio.current_async_library() != "trio":
        return False
    import trio.lowlevel
    from trio.testing import MockClock

    return isinstance(trio.lowlevel.current_clock(), MockClock)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise pytest.UsageError(f"{name}={value!r}: choose from {', '.join(choices)}")
    return value


@pytest.fixture
def drone_sim_settings(anyio_backend: object) -> DroneSettings:
    """The embedded simulator, production thresholds on virtual time; on real time sped up
    `TIME_SCALE` times and stale after `STALE_AFTER_S`."""
    from servers.drone.config import DroneSettings

    if _virtual_backend(anyio_backend):
        return DroneSettings(sim=True)
    return DroneSettings(sim=True, time_scale=TIME_SCALE, stale_after_s=STALE_AFTER_S)


@pytest.fixture
def drone_mcp_mode() -> str:
    return "standard"


@pytest.fixture
def drone_mcp_protocol() -> str:
    return "2026-07-28"


@pytest.fixture
def drone_mcp_transport() -> str:
    return "memory"


@pytest.fixture
async def simulated_drone(
    drone_sim_settings: DroneSettings, drone_mcp_mode: str, anyio_backend: object
) -> AsyncGenerator[SimulatedDrone]:
    """The runtime, connected to its simulator, with the standard server and `drone_mcp_mode`'s."""
    import anyio

    from servers.drone.app import drone_mounts, running
    from servers.drone.core.protocol import LinkStatus
    from servers.drone.runtime import DroneRuntime
    from tool_modes.code import CodeRunner

    mode = _choice("drone_mcp_mode", drone_mcp_mode, MODES)
    if not drone_sim_settings.sim:
        raise pytest.UsageError("drone_sim_settings must have sim=True: the plugin flies the simulator")
    code = mode in ("code", "codesearch")
    if _on_virtual_time():
        if code:
            raise pytest.UsageError(
                f"drone_mcp_mode={mode!r} runs scripts in worker processes on the wall clock: "
                "use it on real time (the default anyio_backend), not virtual time"
            )
        from tello_io.clock import LoopClock
        from tello_io.datagram import MemoryNetwork

        runtime = DroneRuntime(
            drone_sim_settings, clock=LoopClock(), network=MemoryNetwork(), sim_video_in_thread=False
        )
    else:
        runtime = DroneRuntime(drone_sim_settings)
    runner = CodeRunner(workers=1) if code else None
    modes = cast("tuple[Mode, ...]", ("standard",) if mode == "standard" else ("standard", mode))
    servers, notifiers = drone_mounts(runtime, modes=modes, code_runner=runner)
    # No AsyncExitStack around the runtime (see DroneRuntime._run): nested `async with` only.
    async with contextlib.AsyncExitStack() if runner is None else runner, running(runtime, notifiers):
        with anyio.fail_after(CONNECT_TIMEOUT_S):
            while runtime.link.status() is not LinkStatus.CONNECTED:
                await runtime.link.wait_changed()
        yield SimulatedDrone(runtime, servers)


@pytest.fixture
def drone_sim(simulated_drone: SimulatedDrone) -> DroneSimulator:
    return simulated_drone.sim


@pytest.fixture
async def drone_mcp(
    simulated_drone: SimulatedDrone,
    drone_mcp_mode: str,
    drone_mcp_protocol: str,
    drone_mcp_transport: str,
    anyio_backend: object,
) -> AsyncGenerator[Client]:
    import anyio
    from mcp import Client

    from servers.http import HttpSettings, build_app, serve

    server = simulated_drone.server(drone_mcp_mode)
    protocol = _choice("drone_mcp_protocol", drone_mcp_protocol, PROTOCOLS)
    if _choice("drone_mcp_transport", drone_mcp_transport, TRANSPORTS) == "memory":
        async with Client(server, mode=protocol) as client:
            yield client
        return
    if _on_virtual_time():
        raise pytest.UsageError("drone_mcp_transport='http' needs real time (uvicorn runs on asyncio)")
    http = HttpSettings(host="127.0.0.1", port=0, shutdown_timeout=1.0)
    path = simulated_drone.path(drone_mcp_mode)
    app = build_app({path: server}, settings=http)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, http)
        try:
            async with Client(f"http://127.0.0.1:{port}{path}", mode=protocol) as client:
                yield client
        finally:
            tg.cancel_scope.cancel()
