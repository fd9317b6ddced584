"""The drone server in Search and CodeSearch mode, flying its embedded simulator: the moves an
agent asks for through `invoke_tool` or a `run_code` script are exactly the moves the drone
made (the simulator's ground truth), progress and the emergency confirmation reach the client,
and a photo stays an image. Real time, scaled 10x (the sandbox's worker processes run on the
wall clock, so these tests cannot use the virtual clock)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from drone_sim import GroundTruth
from servers.drone.app import running
from servers.drone.runtime import DroneRuntime
from servers.drone.server import build_drone_server
from tests.drone_server.harness import executed, http_drone_settings, land_if_flying, wait_connected
from tests.tool_modes.support import ERAS, json_of, serving, text_of
from tests.tool_modes.test_search_mode import Answer
from tool_modes.code import CodeRunner
from tool_modes.modes import build_mode_server, mode_mounts

pytestmark = pytest.mark.anyio

FLIGHT = ("takeoff", "land", "emergency", "forward", "back", "left", "right", "up", "down", "cw", "ccw")


@contextlib.asynccontextmanager
async def drone() -> AsyncGenerator[tuple[MCPServer[Any], GroundTruth]]:
    runtime = DroneRuntime(http_drone_settings())
    server, updates = build_drone_server(runtime)
    async with running(runtime, [updates]):
        await wait_connected(runtime)
        assert runtime.sim is not None
        try:
            yield server, runtime.sim.truth
        finally:
            await land_if_flying(runtime)


def flown(truth: GroundTruth) -> list[str]:
    return [c for c in executed(truth) if c.split(" ", 1)[0] in FLIGHT]


async def _invoke(client: Client, name: str, arguments: dict[str, Any], **kw: Any) -> types.CallToolResult:
    result = await client.call_tool("invoke_tool", {"name": name, "arguments": arguments}, **kw)
    assert not result.is_error, text_of(result)
    return result


async def test_search_mode_flies_exactly_what_was_invoked() -> None:
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with drone() as (server, truth), Client(build_mode_server(server, "search")) as client:
        with anyio.fail_after(30):
            found = json_of(await client.call_tool("get_tool", {"query": "take off"}))
            assert found["matches"][0]["name"] == "takeoff"
            battery = await _invoke(client, "get_battery", {})
            await _invoke(client, "takeoff", {}, progress_callback=on_progress)
            await _invoke(client, "move", {"direction": "forward", "distance_cm": 50})
            await _invoke(client, "rotate", {"direction": "clockwise", "degrees": 90})
            photo = await _invoke(client, "capture_photo", {})
            await _invoke(client, "land", {})
            refused = await client.call_tool(
                "invoke_tool", {"name": "move", "arguments": {"direction": "forward", "distance_cm": 5}}
            )
    assert flown(truth) == ["takeoff", "forward 50", "cw 90", "land"]
    assert battery.structured_content is not None
    assert truth.battery_pct <= battery.structured_content["percent"] <= 100  # read before flying
    assert seen
    assert seen[-1] == "takeoff: done"
    assert isinstance(photo.content[0], types.ImageContent)
    assert photo.content[0].mime_type == "image/jpeg"
    assert refused.is_error
    assert text_of(refused) == "distance_cm must be between 20 and 500 (got 5); nothing was sent"


@pytest.mark.parametrize("era", ERAS)
async def test_emergency_confirmation_reaches_the_client_in_search_mode(era: str) -> None:
    answer = Answer("accept")
    async with (
        drone() as (server, truth),
        Client(build_mode_server(server, "search"), mode=era, elicitation_callback=answer) as client,
    ):
        with anyio.fail_after(30):
            await _invoke(client, "takeoff", {})
            stopped = await _invoke(client, "emergency", {})
    assert len(answer.asked) == 1
    assert "EMERGENCY" in answer.asked[0]
    assert not stopped.is_error
    assert "emergency" in executed(truth)
    assert not truth.flying


@pytest.mark.parametrize("era", ERAS)
async def test_invoke_tool_confirm_true_still_asks_the_user(era: str) -> None:
    answer = Answer("decline")
    async with (
        drone() as (server, truth),
        Client(build_mode_server(server, "search"), mode=era, elicitation_callback=answer) as client,
    ):
        with anyio.fail_after(30):
            await _invoke(client, "takeoff", {})
            refused = await client.call_tool(
                "invoke_tool", {"name": "emergency", "arguments": {"confirm": True}}
            )
        assert "emergency" not in executed(truth)
        assert truth.flying
    assert len(answer.asked) == 1
    assert refused.is_error
    assert "emergency NOT sent" in text_of(refused)


@pytest.mark.parametrize(
    ("era", "elicits", "sent"),
    [
        ("legacy", True, False),  # asked mid-call from inside the script: declined, nothing sent
        ("2026-07-28", True, False),  # cannot be asked from a script: refused, nothing sent
        ("legacy", False, True),  # no user to ask: the script's confirm counts
        ("2026-07-28", False, True),
    ],
)
async def test_a_scripts_emergency_follows_the_same_rule(era: str, elicits: bool, sent: bool) -> None:
    answer = Answer("decline")
    script = "await takeoff({}); await emergency({confirm: true}); 'done'"
    async with (
        drone() as (server, truth),
        CodeRunner(workers=1) as runner,
        Client(
            build_mode_server(server, "code", code_runner=runner),
            mode=era,
            elicitation_callback=answer if elicits else None,
        ) as client,
    ):
        with anyio.fail_after(60):
            result = await client.call_tool("run_code", {"code": script})
        assert ("emergency" in executed(truth)) is sent
        assert truth.flying is not sent
    if sent:
        assert not result.is_error, text_of(result)
        assert answer.asked == []
    else:
        assert result.is_error
        assert "emergency" in text_of(result)
        # The trace still shows what was sent before the refusal.
        assert result.structured_content is not None
        assert [entry["name"] for entry in result.structured_content["trace"]] == ["takeoff", "emergency"]
        assert len(answer.asked) == (1 if era == "legacy" else 0)


async def test_racing_promises_in_one_script_never_pass_the_height_cap() -> None:
    """Two climbs of 200 cm from the hover height (~80 cm) under a 300 cm cap, raced with
    `Promise.allSettled` in one script: one flies, the other is refused against where the first
    left the drone, and the drone (ground truth) never goes above the cap."""
    script = """
        await takeoff({});
        const climbs = await Promise.allSettled([
            move({direction: "up", distance_cm: 200}),
            move({direction: "up", distance_cm: 200}),
        ]);
        await land({});
        climbs.map((c) => c.status === "fulfilled" ? "flew" : String(c.reason))
    """
    async with (
        drone() as (server, truth),
        CodeRunner(workers=1) as runner,
        Client(build_mode_server(server, "code", code_runner=runner)) as client,
    ):
        with anyio.fail_after(90):
            result = await client.call_tool("run_code", {"code": script})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    outcomes = result.structured_content["result"]
    assert sorted(o == "flew" for o in outcomes) == [False, True], outcomes
    assert any("max_height_cm=300" in o for o in outcomes), outcomes
    assert flown(truth) == ["takeoff", "up 200", "land"]  # the second climb never reached the drone


async def test_codesearch_script_flies_a_square() -> None:
    script = """
        const battery = await get_battery({});
        await takeoff({});
        for (let side = 0; side < 4; side++) {
            await move({direction: "forward", distance_cm: 50});
            await rotate({direction: "clockwise", degrees: 90});
        }
        await land({});
        battery.percent
    """
    async with (
        drone() as (server, truth),
        CodeRunner(workers=1) as runner,
        Client(build_mode_server(server, "codesearch", code_runner=runner)) as client,
    ):
        with anyio.fail_after(60):
            found = json_of(await client.call_tool("get_tool", {"query": "fly forward"}))
            result = await client.call_tool("run_code", {"code": script})
    assert "move" in [m["name"] for m in found["matches"]]
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert truth.battery_pct <= result.structured_content["result"] <= 100  # read before flying
    assert flown(truth) == ["takeoff", *["forward 50", "cw 90"] * 4, "land"]
    assert len(result.structured_content["trace"]) == 11


@pytest.mark.parametrize("era", ERAS)
async def test_all_four_paths_over_http_on_one_drone(era: str) -> None:
    """One runtime, one app, four paths: each lists its mode's tools and reads the battery."""
    reads = {
        "/drone": ("get_battery", {}),
        "/drone-search": ("invoke_tool", {"name": "get_battery", "arguments": {}}),
        "/drone-code": ("run_code", {"code": "(await get_battery({})).percent"}),
        "/drone-codesearch": ("run_code", {"code": "(await get_battery({})).percent"}),
    }
    async with drone() as (server, truth), CodeRunner(workers=1) as runner:
        mounts = mode_mounts(server, "/drone", code_runner=runner)
        assert mounts["/drone"] is server
        assert mode_mounts(server, "/drone").keys() == {"/drone", "/drone-search"}  # no sandbox
        async with serving(mounts) as port:
            listed: dict[str, set[str]] = {}
            for path, (tool, arguments) in reads.items():
                async with Client(f"http://127.0.0.1:{port}{path}", mode=era) as client:
                    with anyio.fail_after(20):
                        listed[path] = {t.name for t in (await client.list_tools()).tools}
                        result = await client.call_tool(tool, arguments)
                assert not result.is_error, (path, text_of(result))
                percent = result.structured_content and result.structured_content.get(
                    "percent", result.structured_content.get("result")
                )
                assert isinstance(percent, int), (path, result.structured_content)
                assert truth.battery_pct <= percent <= 100
    assert len(listed["/drone"]) == 15
    assert listed["/drone-search"] == {"get_tool", "invoke_tool"}
    assert listed["/drone-code"] == {"run_code"}
    assert listed["/drone-codesearch"] == {"get_tool", "run_code"}
