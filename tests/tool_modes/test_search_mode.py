"""Search mode over the toy server, through a real MCP client: in memory and over HTTP, both eras.

Every pass-through claim is checked against Standard mode: the same call made directly on the
inner server over the same transport must give the same result.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning

from tests.tool_modes.support import ERAS, TRANSPORTS, connect, json_of, text_of
from tests.tool_modes.toy_server import COUNTER_URI, README, README_URI, TOOL_COUNT, build_toy_server
from tool_modes.modes import build_mode_server

pytestmark = pytest.mark.anyio


def _search_server() -> tuple[Any, Any]:
    inner, _updates = build_toy_server()
    return build_mode_server(inner, "search"), inner


class Answer:
    """An elicitation callback that records each question and answers with `action`."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.asked: list[str] = []

    async def __call__(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        self.asked.append(params.message)
        if self.action == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action="decline")


async def _invoke(client: Client, name: str, arguments: dict[str, Any], **kw: Any) -> types.CallToolResult:
    return await client.call_tool("invoke_tool", {"name": name, "arguments": arguments}, **kw)


@pytest.mark.parametrize("era", ERAS)
async def test_standard_is_the_inner_server_and_search_lists_two_tools(era: str) -> None:
    inner, _ = build_toy_server()
    assert build_mode_server(inner, "standard") is inner
    search = build_mode_server(inner, "search")
    async with Client(search, mode=era) as client:
        with anyio.fail_after(10):
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"get_tool", "invoke_tool"}
    description = tools["get_tool"].description or ""
    assert f"{TOOL_COUNT} tools" in description
    assert "echo" in description
    assert "shred_files" in description
    assert tools["get_tool"].annotations is not None
    assert tools["get_tool"].annotations.read_only_hint


async def test_get_tool_returns_ranked_matches_with_full_definitions() -> None:
    search, inner = _search_server()
    async with Client(inner) as direct, Client(search) as client:
        with anyio.fail_after(10):
            definitions = {t.name: t for t in (await direct.list_tools()).tools}
            weather = json_of(await client.call_tool("get_tool", {"query": "weather forecast for a city"}))
            exact = json_of(await client.call_tool("get_tool", {"query": "echo", "limit": 2}))
            typo = json_of(await client.call_tool("get_tool", {"query": "shred_fles"}))
            picture = await client.call_tool("get_tool", {"query": "make me a picture"})
    best = weather["matches"][0]
    assert best["name"] == "get_weather"
    assert best["input_schema"] == definitions["get_weather"].input_schema
    assert "weather forecast" in best["description"]
    assert 1 <= len(weather["matches"]) <= 3
    assert next(m["name"] for m in exact["matches"]) == "echo"
    assert len(exact["matches"]) <= 2
    assert typo["matches"][0]["name"] == "shred_files"
    assert picture.structured_content is not None
    assert picture.structured_content["matches"][0]["name"] == "draw_pixel"
    assert "annotations" not in picture.structured_content["matches"][0]


@pytest.mark.parametrize("query", ["", "   ", "zzqx wibble"])
async def test_get_tool_with_nothing_to_match_lists_the_names(query: str) -> None:
    search, _ = _search_server()
    async with Client(search) as client:
        with anyio.fail_after(10):
            result = await client.call_tool("get_tool", {"query": query})
    assert not result.is_error
    found = json_of(result)
    assert found["matches"] == []
    assert len(found["tool_names"]) == TOOL_COUNT
    assert "get_tool" in found["note"] or "tool_names" in found["note"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_invoke_tool_returns_the_inner_result_unchanged(transport: str) -> None:
    search, inner = _search_server()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("echo", {"text": "hello"}),
        ("add_numbers", {"a": 2, "b": 40}),
        ("get_weather", {"city": "Lisbon"}),
        ("draw_pixel", {}),
        ("always_fails", {"reason": "testing"}),
        ("list_files", {"folder": "/tmp", "pattern": "*.txt"}),
    ]
    async with connect(search, transport) as client, connect(inner, transport) as direct:
        with anyio.fail_after(20):
            for name, arguments in calls:
                via_search = await _invoke(client, name, arguments)
                standard = await direct.call_tool(name, arguments)
                assert via_search.content == standard.content, name
                assert via_search.structured_content == standard.structured_content, name
                assert via_search.is_error == standard.is_error, name
            image = await _invoke(client, "draw_pixel", {})
            failed = await _invoke(client, "always_fails", {"reason": "testing"})
            summed = await _invoke(client, "add_numbers", {"a": 2, "b": 40})
    assert isinstance(image.content[0], types.ImageContent)
    assert image.content[0].mime_type == "image/png"
    assert failed.is_error
    assert "failed on purpose: testing" in text_of(failed)
    assert summed.structured_content == {"result": 42}


async def test_invoke_tool_rejects_bad_names_and_arguments_without_calling() -> None:
    search, _ = _search_server()
    async with Client(search) as client:
        with anyio.fail_after(10):
            unknown = await _invoke(client, "get_wether", {"city": "Porto"})
            missing = await _invoke(client, "add_numbers", {"a": 1})
            loud = await _invoke(client, "set_volume", {"level": 12})
            wrong_type = await _invoke(client, "echo", {"text": 5})
            bad_choice = await _invoke(client, "convert_temperature", {"value": 3, "unit": "kelvin"})
            extra = await _invoke(client, "bump_counter", {"by": 2})
            counter = await client.read_resource(COUNTER_URI)
    for result in (unknown, missing, loud, wrong_type, bad_choice, extra):
        assert result.is_error
    assert "no tool named 'get_wether'" in text_of(unknown)
    assert "get_weather" in text_of(unknown)
    # The suite's one wording of argument errors (servers.validation), for any served tool.
    assert text_of(missing) == "b is required: an integer; nothing was called"
    assert text_of(loud) == "level must be between 0 and 11 (got 12); nothing was called"
    assert text_of(wrong_type) == "text must be a string (got 5); nothing was called"
    assert text_of(bad_choice) == (
        "unit must be one of 'celsius', 'fahrenheit' (got 'kelvin'); nothing was called"
    )
    assert text_of(extra) == "bump_counter takes no arguments; unknown: by; nothing was called"
    (content,) = counter.contents
    assert isinstance(content, types.TextResourceContents)
    assert content.text == "0"  # the rejected bump_counter never ran


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_progress_reaches_the_outer_client(transport: str) -> None:
    search, inner = _search_server()
    seen: dict[str, list[tuple[float, float | None, str | None]]] = {"search": [], "standard": []}

    def recorder(key: str) -> Any:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen[key].append((progress, total, message))

        return on_progress

    async with connect(search, transport) as client, connect(inner, transport) as direct:
        with anyio.fail_after(20):
            result = await _invoke(client, "slow_count", {"steps": 4}, progress_callback=recorder("search"))
            await direct.call_tool("slow_count", {"steps": 4}, progress_callback=recorder("standard"))
    assert text_of(result) == "counted to 4"
    assert seen["search"] == [(float(i), 4.0, f"step {i} of 4") for i in range(1, 5)]
    assert seen["search"] == seen["standard"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("action", ["accept", "decline"])
async def test_elicitation_reaches_the_outer_client(transport: str, action: str) -> None:
    search, _ = _search_server()
    answer = Answer(action)
    async with connect(search, transport, elicitation_callback=answer) as client:
        with anyio.fail_after(20):
            result = await _invoke(client, "shred_files", {})
            confirmed = await _invoke(client, "shred_files", {"confirm": True})
    assert answer.asked == ["Really shred every file in the workshop?"]
    if action == "accept":
        assert not result.is_error
        assert text_of(result) == "shredded"
    else:
        assert result.is_error
        assert "NOT done" in text_of(result)
    assert text_of(confirmed) == "shredded"  # the argument path asks nobody


async def test_a_client_that_cannot_elicit_gets_the_tools_own_refusal() -> None:
    search, _ = _search_server()
    async with Client(search, mode="2026-07-28") as client:
        with anyio.fail_after(10):
            result = await _invoke(client, "shred_files", {})
    assert result.is_error
    assert "NOT done" in text_of(result)


@pytest.mark.parametrize("transport", ["memory-legacy", "http-2026-07-28"])
async def test_resources_templates_and_prompts_are_the_inner_servers(transport: str) -> None:
    search, inner = _search_server()
    async with connect(search, transport) as client, connect(inner, transport) as direct:
        with anyio.fail_after(20):
            assert (await client.list_resources()).resources == (await direct.list_resources()).resources
            templates = (await client.list_resource_templates()).resource_templates
            assert templates == (await direct.list_resource_templates()).resource_templates
            assert (await client.list_prompts()).prompts == (await direct.list_prompts()).prompts
            readme = await client.read_resource(README_URI)
            note = await client.read_resource("toy://notes/drills")
            prompt = await client.get_prompt("greet", {"person": "Ada"})
    assert [t.uri_template for t in templates] == ["toy://notes/{topic}"]
    assert [c.text for c in readme.contents if isinstance(c, types.TextResourceContents)] == [README]
    assert [c.text for c in note.contents if isinstance(c, types.TextResourceContents)] == [
        "notes about drills"
    ]
    message = prompt.messages[0].content
    assert isinstance(message, types.TextContent)
    assert message.text == "Please greet Ada warmly."


@pytest.mark.parametrize("transport", ["memory-legacy", "http-legacy"])
async def test_legacy_subscribers_hear_updates_published_by_the_inner_server(transport: str) -> None:
    search, _ = _search_server()
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification) and message.params.uri == COUNTER_URI:
            heard.set()

    async with connect(search, transport, message_handler=on_message) as client:
        caps = client.server_capabilities.resources
        assert caps is not None
        assert caps.subscribe
        with anyio.fail_after(10):
            with pytest.warns(MCPDeprecationWarning):
                await client.subscribe_resource(COUNTER_URI)
            bumped = await _invoke(client, "bump_counter", {})
            await heard.wait()
    assert not bumped.is_error


@pytest.mark.parametrize("transport", ["memory-2026-07-28", "http-2026-07-28"])
async def test_listen_hears_updates_published_by_the_inner_server(transport: str) -> None:
    search, _ = _search_server()
    async with connect(search, transport) as client:
        with anyio.fail_after(10):
            async with client.listen(resource_subscriptions=[COUNTER_URI]) as updates:
                await _invoke(client, "bump_counter", {})
                async for event in updates:
                    if getattr(event, "uri", None) == COUNTER_URI:
                        break
            counter = await client.read_resource(COUNTER_URI)
    assert [c.text for c in counter.contents if isinstance(c, types.TextResourceContents)] == ["1"]


async def test_a_mode_servers_own_resources_and_prompts_sit_beside_the_inner_ones() -> None:
    """How a mode gets its own skill text: register it on the mode server; it wins on a clash."""
    search, _ = _search_server()

    @search.resource("skill://search-mode/SKILL.md", name="search-skill", mime_type="text/markdown")
    def skill() -> str:  # pyright: ignore[reportUnusedFunction]
        return "use get_tool first"

    @search.resource(README_URI, name="readme", mime_type="text/plain")
    def readme() -> str:  # pyright: ignore[reportUnusedFunction]
        return "the search-mode readme"

    @search.prompt()
    def plan(goal: str) -> str:  # pyright: ignore[reportUnusedFunction]
        return f"Plan: {goal}"

    async with Client(search) as client:
        with anyio.fail_after(10):
            uris = [r.uri for r in (await client.list_resources()).resources]
            prompts = [p.name for p in (await client.list_prompts()).prompts]
            own = await client.read_resource("skill://search-mode/SKILL.md")
            clash = await client.read_resource(README_URI)
            inner = await client.read_resource("toy://notes/x")
            planned = await client.get_prompt("plan", {"goal": "fly"})
            greeted = await client.get_prompt("greet", {"person": "Ada"})
    assert sorted(uris) == sorted({"skill://search-mode/SKILL.md", README_URI, COUNTER_URI})
    assert sorted(prompts) == ["greet", "plan"]

    def texts(result: types.ReadResourceResult) -> list[str]:
        return [c.text for c in result.contents if isinstance(c, types.TextResourceContents)]

    assert texts(own) == ["use get_tool first"]
    assert texts(clash) == ["the search-mode readme"]
    assert texts(inner) == ["notes about x"]
    assert [m.content.text for m in planned.messages if isinstance(m.content, types.TextContent)] == [
        "Plan: fly"
    ]
    assert len(greeted.messages) == 1
