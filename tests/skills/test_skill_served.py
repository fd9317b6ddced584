"""What each drone path serves of the skill, through a real client: its own mode's text at
`skill://drone-operations/SKILL.md`, the canned prompts on every path, and only tool names
that exist there (as tools of the path, or as tools reachable through its facade)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import TextContent, TextResourceContents

from servers.drone.config import DroneSettings
from servers.drone.runtime import DroneRuntime
from servers.skills import SKILLS_DIR, load_skill
from tests.drone_server.harness import serving
from tests.skills.snippets import SKILL_URI, fences, mode_text, path_of, servers_of, text_of
from tests.support.eras import ERAS
from tool_modes.code import CodeRunner
from tool_modes.modes import MODES

pytestmark = pytest.mark.anyio

SKILL = load_skill(SKILLS_DIR / "drone-operations")
PROMPTS = sorted(p.name for p in SKILL.prompts)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.DOTALL | re.MULTILINE)
_JS_CALL = re.compile(r"\bawait\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_JS_BINDING = re.compile(
    r"\b(?:function\s+([A-Za-z_]\w*)\s*\(([^)]*)\)|(?:const|let|var)\s+([A-Za-z_]\w*|\[[^\]]*\]))"
)
_API = re.compile(r"(?:declare function |^- )([A-Za-z_][A-Za-z0-9_]*)\(", re.MULTILINE)


@pytest.fixture
async def mounts() -> AsyncIterator[dict[str, MCPServer[Any]]]:
    """Every mode path over one runtime that is never started (nothing here flies)."""
    async with CodeRunner(workers=1) as runner:
        yield servers_of(DroneRuntime(DroneSettings(sim=True)), runner)


def mentions(text: str) -> tuple[set[str], set[str]]:
    """(identifiers in the text's inline code and examples, names it calls as tools)."""
    words: set[str] = set()
    for span in re.findall(r"`([^`\n]+)`", _FENCE.sub("", text)):
        words |= set(_IDENTIFIER.findall(span))
    called: set[str] = set()
    for info, body in fences(text):
        if info.startswith("json tool-calls"):
            for call in json.loads(body):
                called.add(call["tool"])
                if call["tool"] == "invoke_tool":
                    called.add(call["arguments"]["name"])
        elif info.startswith("js run_code"):
            words |= set(_IDENTIFIER.findall(body))
            called |= set(_JS_CALL.findall(body)) - _bound(body)
    return words | called, called


def _bound(script: str) -> set[str]:
    """Names a script binds itself: functions, their parameters, variables (destructured too)."""
    names: set[str] = set()
    for found in _JS_BINDING.findall(script):
        names |= set(_IDENTIFIER.findall(" ".join(found)))
    return names


async def reachable(client: Client, candidates: set[str]) -> set[str]:
    """The path's own tools, and the candidates its facade reaches: found by `get_tool` (its
    best match is exactly that name) or declared in `run_code`'s API."""
    tools = (await client.list_tools()).tools
    names = {t.name for t in tools}
    out = set(names)
    run_code = next((t for t in tools if t.name == "run_code"), None)
    if run_code is not None:
        out |= set(_API.findall(run_code.description or ""))
    if "get_tool" in names:
        for name in sorted(candidates - out):
            result = await client.call_tool("get_tool", {"query": name, "limit": 1})
            assert not result.is_error, text_of(result)
            if json.loads(text_of(result))["matches"][0]["name"] == name:
                out.add(name)
    return out


@pytest.mark.parametrize("era", ERAS)
async def test_every_tool_the_skill_names_exists_on_its_path(
    mounts: dict[str, MCPServer[Any]], era: str
) -> None:
    vocabulary: set[str] = set()
    for mode in MODES:
        async with Client(mounts[path_of(mode)], mode=era) as client:
            vocabulary |= {t.name for t in (await client.list_tools()).tools}
    assert {"get_state", "takeoff", "get_tool", "invoke_tool", "run_code"} <= vocabulary
    for mode in MODES:
        words, called = mentions(mode_text(mode))
        named = (words & vocabulary) | called
        async with Client(mounts[path_of(mode)], mode=era) as client:
            with anyio.fail_after(20):
                there = await reachable(client, named)
        assert named - there == set(), f"{mode} mode names tools {path_of(mode)} does not have"
        # The text teaches this path's own way in: it names the tools the path serves.
        own = {t for t in there if t in vocabulary and t in {"get_tool", "invoke_tool", "run_code"}}
        assert own <= words, f"{mode} mode never mentions its own tools {own - words}"


def test_the_check_catches_a_tool_from_another_mode() -> None:
    """A Code-mode text that says `invoke_tool`, or calls a tool that is not there, is caught."""
    words, called = mentions('Call `invoke_tool`.\n\n```js run_code flies=""\nawait take_off({})\n```\n')
    assert "invoke_tool" in words
    assert called == {"take_off"}


@pytest.mark.parametrize("era", ERAS)
async def test_each_path_serves_its_own_mode_text_and_every_prompt(
    mounts: dict[str, MCPServer[Any]], era: str
) -> None:
    for mode in MODES:
        async with Client(mounts[path_of(mode)], mode=era) as client:
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
            assert uris.count(SKILL_URI) == 1, uris
            read = await client.read_resource(SKILL_URI)
            prompts = sorted(p.name for p in (await client.list_prompts()).prompts)
            rendered = await client.get_prompt("square_pattern", {"side_cm": "60"})
        [content] = read.contents
        assert isinstance(content, TextResourceContents)
        assert content.text == mode_text(mode), f"{path_of(mode)} serves another mode's text"
        assert prompts == PROMPTS
        [message] = rendered.messages
        assert isinstance(message.content, TextContent)
        assert "60 cm" in message.content.text


@pytest.mark.parametrize("era", ERAS)
async def test_over_http_each_path_serves_its_skill_and_the_prompts(era: str) -> None:
    async with serving() as served:
        for mode in MODES:
            async with Client(f"{served.base}{path_of(mode)}", mode=era) as client:
                with anyio.fail_after(20):
                    read = await client.read_resource(SKILL_URI)
                    prompts = sorted(p.name for p in (await client.list_prompts()).prompts)
            [content] = read.contents
            assert isinstance(content, TextResourceContents)
            assert content.text == mode_text(mode)
            assert prompts == PROMPTS
