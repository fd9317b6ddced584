"""Resources (state, flight log, the skill), their update notifications, the skill's prompts, and
progress notifications of long flight actions - in memory and over HTTP, in both eras."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import yaml
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from servers.drone.server import FLIGHT_LOG_URI, STATE_URI
from tests.drone_server.harness import ERAS, Connected, connect, text_of

pytestmark = pytest.mark.anyio

SKILL_DIR = Path(__file__).resolve().parents[2] / "skills" / "drone-operations"
SKILL_URI = "skill://drone-operations/SKILL.md"


def _contents_json(result: types.ReadResourceResult) -> Any:
    (content,) = result.contents
    assert isinstance(content, types.TextResourceContents)
    assert content.mime_type == "application/json"
    return json.loads(content.text)


async def _takeoff(client: Client) -> None:
    result = await client.call_tool("takeoff", {})
    assert not result.is_error, text_of(result)


@pytest.mark.parametrize("transport", ["memory-legacy", "http-2026-07-28"])
async def test_read_state_and_flight_log(transport: str) -> None:
    async with connect(transport) as conn:
        client = conn.client
        with anyio.fail_after(20):
            listed = {r.uri: r for r in (await client.list_resources()).resources}
            assert {STATE_URI, FLIGHT_LOG_URI, SKILL_URI} <= set(listed)
            assert listed[STATE_URI].mime_type == "application/json"
            assert listed[FLIGHT_LOG_URI].mime_type == "application/json"

            landed = _contents_json(await client.read_resource(STATE_URI))
            assert landed["flight"] == "landed"
            assert landed["freshness"]["link"] == "connected"
            assert landed["telemetry"]["battery_pct"] == conn.truth.battery_pct

            await _takeoff(client)
            await client.call_tool("move", {"direction": "forward", "distance_cm": 19})  # refused: not logged
            airborne = _contents_json(await client.read_resource(STATE_URI))
            log = _contents_json(await client.read_resource(FLIGHT_LOG_URI))

        assert airborne["flight"] == "flying"
        assert airborne["telemetry"]["height_cm"] > 50
        assert airborne["position_estimate"]["uncertainty_cm"] == 0
        commands = [entry["command"] for entry in log]
        assert commands[-2:] == ["battery?", "takeoff"]
        takeoff = log[-1]
        assert (takeoff["outcome"], takeoff["reply"], takeoff["attempts"]) == ("ok", "ok", 1)
        assert takeoff["latency_ms"] > 1000  # simulated milliseconds: a takeoff takes seconds
        assert [e["at_s"] for e in log] == sorted(e["at_s"] for e in log)
        assert not any(c.startswith("forward") for c in commands)


@pytest.mark.virtual_time
async def test_skill_is_served_as_a_resource() -> None:
    async with connect("memory-2026-07-28") as conn:
        with anyio.fail_after(10):
            read = await conn.client.read_resource(SKILL_URI)
    (content,) = read.contents
    assert isinstance(content, types.TextResourceContents)
    assert content.mime_type == "text/markdown"
    assert content.text == (SKILL_DIR / "SKILL.md").read_text(encoding="utf-8")


# ---- drone://state updates ----


def _state_updates(messages: list[Any]) -> int:
    return sum(
        1 for m in messages if isinstance(m, types.ResourceUpdatedNotification) and m.params.uri == STATE_URI
    )


@pytest.mark.parametrize("transport", ["memory-legacy", "http-legacy"])
async def test_legacy_subscribe_hears_state_update_after_takeoff(transport: str) -> None:
    received: list[Any] = []
    arrived = anyio.Event()

    async def on_message(message: Any) -> None:
        received.append(message)
        if _state_updates(received):
            arrived.set()

    async with connect(transport, message_handler=on_message) as conn:
        client = conn.client
        assert client.server_capabilities.resources is not None
        assert client.server_capabilities.resources.subscribe is True
        with anyio.fail_after(10):
            with pytest.warns(MCPDeprecationWarning):
                await client.subscribe_resource(STATE_URI)
            await _takeoff(client)
            with anyio.move_on_after(1):  # updates stream in during the climb when they work
                await arrived.wait()
        assert _state_updates(received) >= 1, f"no update; got {[type(m).__name__ for m in received]}"
        state = json.loads(text_of_resource(await client.read_resource(STATE_URI)))
        assert state["flight"] == "flying"


def text_of_resource(result: types.ReadResourceResult) -> str:
    (content,) = result.contents
    assert isinstance(content, types.TextResourceContents)
    return content.text


@pytest.mark.parametrize("transport", ["memory-2026-07-28", "http-2026-07-28"])
async def test_listen_hears_state_update_after_takeoff(transport: str) -> None:
    async with connect(transport) as conn:
        client = conn.client
        with anyio.fail_after(15):
            async with client.listen(resource_subscriptions=[STATE_URI, FLIGHT_LOG_URI]) as updates:
                await _takeoff(client)
                heard: set[str] = set()
                async for event in updates:
                    uri = getattr(event, "uri", None)
                    if isinstance(uri, str):
                        heard.add(uri)
                    if heard == {STATE_URI, FLIGHT_LOG_URI}:
                        break
            state = json.loads(text_of_resource(await client.read_resource(STATE_URI)))
        assert state["flight"] == "flying"


@pytest.mark.parametrize("transport", ["memory-legacy", "http-legacy"])
async def test_legacy_subscribe_and_unsubscribe_are_served(transport: str) -> None:
    """MCPServer does not serve resources/subscribe by itself; the drone server registers it."""
    async with connect(transport) as conn:
        with anyio.fail_after(10):
            with pytest.warns(MCPDeprecationWarning):
                subscribed = await conn.client.subscribe_resource(STATE_URI)
            with pytest.warns(MCPDeprecationWarning):
                unsubscribed = await conn.client.unsubscribe_resource(STATE_URI)
    assert isinstance(subscribed, types.EmptyResult)
    assert isinstance(unsubscribed, types.EmptyResult)


# ---- prompts ----

_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


def _skill_prompts() -> dict[str, dict[str, bool]]:
    """Prompt name -> {argument: required}, read straight from the prompt files."""
    prompts: dict[str, dict[str, bool]] = {}
    for path in sorted((SKILL_DIR / "prompts").glob("*.md")):
        match = _FRONT.match(path.read_text(encoding="utf-8"))
        assert match is not None, path
        meta = yaml.safe_load(match.group(1))
        prompts[meta["name"]] = {
            a["name"]: bool(a.get("required", False)) for a in meta.get("arguments") or []
        }
    return prompts


def _message_text(result: types.GetPromptResult) -> str:
    (message,) = result.messages
    assert message.role == "user"
    assert isinstance(message.content, types.TextContent)
    return message.content.text


@pytest.mark.parametrize("transport", ["memory-legacy", "http-2026-07-28"])
async def test_prompts_are_the_skills_prompts(transport: str) -> None:
    expected = _skill_prompts()
    assert len(expected) >= 5
    async with connect(transport) as conn:
        with anyio.fail_after(10):
            listed = (await conn.client.list_prompts()).prompts
    assert {p.name: {a.name: bool(a.required) for a in p.arguments or []} for p in listed} == expected
    for prompt in listed:
        assert prompt.description, prompt.name
        assert prompt.title, prompt.name


@pytest.mark.parametrize("mode", ERAS)
async def test_get_prompt_renders_arguments(mode: str) -> None:
    async with connect(f"http-{mode}") as conn:
        client = conn.client
        with anyio.fail_after(10):
            square = _message_text(await client.get_prompt("square_pattern", {"side_cm": "70"}))
            hover = _message_text(await client.get_prompt("hover_test", {"seconds": "12"}))
            emergency = _message_text(
                await client.get_prompt("emergency_procedure", {"situation": "drifting toward a wall"})
            )
            preflight = _message_text(await client.get_prompt("preflight_check", {}))
            with pytest.raises(MCPError):
                await client.get_prompt("square_pattern", {})
    assert "sides of 70 cm" in square
    assert "`move` forward 70 cm" in square
    assert "hover test of 12 seconds" in hover
    assert "Situation: drifting toward a wall" in emergency
    assert "get_state" in preflight
    for text in (square, hover, emergency, preflight):
        assert not re.search(r"\{[a-z_]+\}", text), text


# ---- progress ----


@pytest.mark.parametrize("transport", ["memory-legacy", "http-legacy", "http-2026-07-28"])
async def test_takeoff_and_move_report_progress(transport: str) -> None:
    seen: dict[str, list[tuple[float, float | None, str | None]]] = {"takeoff": [], "move": []}

    def recorder(name: str) -> Any:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen[name].append((progress, total, message))

        return on_progress

    async with connect(transport) as conn:
        await _fly_with_progress(conn, recorder)

    takeoff, move = seen["takeoff"], seen["move"]
    assert len(takeoff) >= 3, takeoff
    assert [p for p, _, _ in takeoff] == sorted(p for p, _, _ in takeoff)
    assert {t for _, t, _ in takeoff} == {12.0}  # takeoff's time budget, simulated seconds
    assert takeoff[-1] == (12.0, 12.0, "takeoff: done")
    assert all(m is not None and m.startswith("takeoff: ") for _, _, m in takeoff)
    assert len(move) >= 2, move
    assert all(m is not None and m.startswith("forward 100: ") for _, _, m in move)
    assert move[-1][2] == "forward 100: done"


async def _fly_with_progress(conn: Connected, recorder: Any) -> None:
    with anyio.fail_after(20):
        took_off = await conn.client.call_tool("takeoff", {}, progress_callback=recorder("takeoff"))
        assert not took_off.is_error, text_of(took_off)
        moved = await conn.client.call_tool(
            "move", {"direction": "forward", "distance_cm": 100}, progress_callback=recorder("move")
        )
        assert not moved.is_error, text_of(moved)
