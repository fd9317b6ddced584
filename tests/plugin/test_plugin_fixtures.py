"""The pytest plugin's fixtures, used here as a user's test would use them: `drone_mcp` reaches
the drone server in each mode, era and transport, and what it does shows in `drone_sim`'s ground
truth; on virtual time the drone runs with production thresholds; importing the plugin costs
nothing, and its fixture names are free in this repository's own suite (which loads it too).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from mcp import Client

from drone_sim import DroneSimulator
from servers.drone.config import DroneSettings
from servers.drone.core.protocol import LinkStatus
from servers.pytest_plugin import MODES, STALE_AFTER_S, TIME_SCALE, SimulatedDrone
from tello_io.clock import LoopClock

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "servers" / "pytest_plugin.py"
EXAMPLE = REPO / "examples" / "test_fly_a_square.py"

STANDARD_TOOLS = {
    *("get_state", "get_battery", "get_sensor", "takeoff", "land", "emergency", "stop", "move"),
    *("rotate", "flip", "go_to", "capture_photo", "set_speed", "set_led", "show_matrix"),
}
MODE_TOOLS = {
    "search": {"get_tool", "invoke_tool"},
    "code": {"run_code"},
    "codesearch": {"get_tool", "run_code"},
}


def set_speed_call(mode: str, speed: int) -> tuple[str, dict[str, Any]]:
    """`set_speed(speed)` as each mode spells it."""
    if mode == "standard":
        return "set_speed", {"speed_cm_s": speed}
    if mode == "search":
        return "invoke_tool", {"name": "set_speed", "arguments": {"speed_cm_s": speed}}
    return "run_code", {"code": f"await set_speed({{speed_cm_s: {speed}}}); 1"}


@pytest.mark.anyio
@pytest.mark.parametrize("drone_mcp_mode", MODES)
async def test_each_mode_flies_the_simulator(
    drone_mcp: Client, drone_sim: DroneSimulator, drone_mcp_mode: str
) -> None:
    speed = 37
    assert drone_sim.truth.speed_cm_s != speed
    with anyio.fail_after(30):
        tools = {tool.name for tool in (await drone_mcp.list_tools()).tools}
        tool, arguments = set_speed_call(drone_mcp_mode, speed)
        result = await drone_mcp.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert tools == MODE_TOOLS.get(drone_mcp_mode, STANDARD_TOOLS)
    assert drone_sim.truth.speed_cm_s == speed
    assert f"speed {speed}" in drone_sim.truth.executed_texts()


@pytest.mark.anyio
@pytest.mark.parametrize("drone_mcp_protocol", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("drone_mcp_transport", ["http"])
async def test_over_http_in_both_eras(drone_mcp: Client, drone_sim: DroneSimulator) -> None:
    with anyio.fail_after(30):
        state = await drone_mcp.call_tool("get_state", {})
        speed = await drone_mcp.call_tool("set_speed", {"speed_cm_s": 55})
    assert not state.is_error, state.content
    assert not speed.is_error, speed.content
    assert state.structured_content is not None
    assert state.structured_content["freshness"]["link"] == "connected"
    assert "speed 55" in drone_sim.truth.executed_texts()


@pytest.mark.anyio
async def test_real_time_is_scaled_with_a_wide_staleness_margin(
    simulated_drone: SimulatedDrone, drone_sim_settings: DroneSettings
) -> None:
    assert (drone_sim_settings.time_scale, drone_sim_settings.stale_after_s) == (TIME_SCALE, STALE_AFTER_S)
    assert not isinstance(simulated_drone.runtime.clock, LoopClock)
    assert simulated_drone.runtime.connected()


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_virtual_time_flies_with_production_thresholds(
    drone_mcp: Client, drone_sim: DroneSimulator, simulated_drone: SimulatedDrone
) -> None:
    runtime = simulated_drone.runtime
    assert isinstance(runtime.clock, LoopClock)
    assert runtime.settings.stale_after_s == DroneSettings().stale_after_s
    with anyio.fail_after(300):  # virtual seconds: the clock jumps while everything waits
        for tool, arguments in [
            ("takeoff", {}),
            ("move", {"direction": "forward", "distance_cm": 200}),
            ("land", {}),
        ]:
            result = await drone_mcp.call_tool(tool, arguments)
            assert not result.is_error, result.content
        drone_sim.faults.state_dropout = True
        silent_from = runtime.clock.now()
        await drone_sim.wait_for(lambda _: runtime.link.status() is LinkStatus.STALE, timeout_s=10)
        stale_after = runtime.clock.now() - silent_from
        state = await drone_mcp.call_tool("get_state", {})
    assert [c for c in drone_sim.truth.executed_texts() if c in ("takeoff", "forward 200", "land")] == [
        "takeoff",
        "forward 200",
        "land",
    ]
    assert abs(drone_sim.truth.pose.x - 200) < 5
    # Stale 1 s after the last state packet, which came at most one interval (0.1 s) before.
    assert 0.85 < stale_after <= 1.05, stale_after
    assert state.structured_content is not None
    assert state.structured_content["freshness"]["link"] == "stale"


def test_importing_the_plugin_imports_nothing_more() -> None:
    """pytest imports the plugin in every run of every project that installs tello-mcp."""
    probe = (
        "import json, sys, pytest, servers; before = set(sys.modules); import servers.pytest_plugin; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True, cwd=REPO
    )
    assert json.loads(done.stdout) == ["servers.pytest_plugin"]


def _fixtures(path: Path) -> set[str]:
    """Names of the functions decorated `@pytest.fixture` (or `@pytest.fixture(...)`) in `path`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(target) in ("pytest.fixture", "fixture"):
                    names.add(node.name)
    return names


def test_the_plugin_fixture_names_are_free_in_this_repository() -> None:
    """The entry point loads the plugin here too: its names must not shadow or be shadowed."""
    ours = _fixtures(PLUGIN)
    assert {"drone_sim", "drone_mcp", "drone_mcp_mode"} <= ours
    here = Path(__file__).parent
    taken = {
        name: path
        for path in (REPO / "tests").rglob("*.py")
        if not path.is_relative_to(here)
        for name in _fixtures(path)
    }
    assert "drone" in taken, "the scan finds the suite's fixtures"
    assert not ours & set(taken), {name: str(taken[name]) for name in ours & set(taken)}


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fly_a_square_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
@pytest.mark.virtual_time
@pytest.mark.parametrize("name", ["test_fly_a_square", "test_no_takeoff_on_a_flat_battery"])
async def test_the_example_passes_on_virtual_time(
    name: str, drone_mcp: Client, drone_sim: DroneSimulator
) -> None:
    """The documented switch to virtual time (an `anyio_backend` with trio's MockClock, as this
    suite's `virtual_time` marker gives) runs a user's tests unchanged."""
    with anyio.fail_after(300):  # virtual seconds
        await getattr(_example(), name)(drone_mcp, drone_sim)
