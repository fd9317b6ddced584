"""Proxy mode: the toy server re-served in Search mode, as an upstream over HTTP and over stdio."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from tests.tool_modes.support import ERAS, json_of, serving, text_of
from tests.tool_modes.test_search_mode import Answer
from tests.tool_modes.toy_server import README, README_URI, TOOL_COUNT, build_toy_server
from tool_modes.catalog import Upstream
from tool_modes.code import CodeRunner
from tool_modes.proxy import proxy_server

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def http_upstream(mode: str = "auto") -> AsyncGenerator[Upstream]:
    toy, _ = build_toy_server()
    async with serving({"/toy": toy}) as port:
        yield Upstream.http(f"http://127.0.0.1:{port}/toy", mode=mode)


def stdio_upstream() -> Upstream:
    return Upstream.stdio(sys.executable, "-m", "tests.tool_modes.toy_server", cwd=str(REPO))


async def _invoke(client: Client, name: str, arguments: dict[str, Any], **kw: Any) -> types.CallToolResult:
    return await client.call_tool("invoke_tool", {"name": name, "arguments": arguments}, **kw)


async def _exercise(proxy: MCPServer[Any], era: str, *, can_ask: bool = True) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    answer = Answer("accept")
    async with Client(proxy, mode=era, elicitation_callback=answer) as client:
        with anyio.fail_after(20):
            tools = [t.name for t in (await client.list_tools()).tools]
            found = json_of(await client.call_tool("get_tool", {"query": "weather forecast"}))
            echoed = await _invoke(client, "echo", {"text": "via proxy"})
            image = await _invoke(client, "draw_pixel", {})
            failed = await _invoke(client, "always_fails", {"reason": "upstream"})
            bad = await _invoke(client, "set_volume", {"level": 99})
            counted = await _invoke(client, "slow_count", {"steps": 3}, progress_callback=on_progress)
            shredded = await _invoke(client, "shred_files", {})
            readme = await client.read_resource(README_URI)
            prompts = [p.name for p in (await client.list_prompts()).prompts]
    assert tools == ["get_tool", "invoke_tool"]
    assert found["matches"][0]["name"] == "get_weather"
    assert text_of(echoed) == "via proxy"
    assert isinstance(image.content[0], types.ImageContent)
    assert failed.is_error
    assert "failed on purpose: upstream" in text_of(failed)
    assert bad.is_error
    assert "level" in text_of(bad)
    assert text_of(counted) == "counted to 3"
    assert seen == [1.0, 2.0, 3.0]
    if can_ask:
        assert answer.asked == ["Really shred every file in the workshop?"]
        assert text_of(shredded) == "shredded"
    else:
        assert answer.asked == []
        assert shredded.is_error
        assert "NOT done" in text_of(shredded)
    assert [c.text for c in readme.contents if isinstance(c, types.TextResourceContents)] == [README]
    assert prompts == ["greet"]


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("upstream_era", ["auto", "legacy"])
async def test_proxy_over_http(era: str, upstream_era: str) -> None:
    """Outer client and upstream session each in either era. A 2026-07-28 upstream asks with an
    input_required round, which reaches an outer client of either era. A handshake-era upstream
    asks mid-call, which only a handshake-era outer client can answer mid-call: a 2026-07-28
    outer request cannot be suspended while it is asked, so the proxy declines for it."""
    can_ask = not (upstream_era == "legacy" and era != "legacy")
    async with http_upstream(upstream_era) as upstream, proxy_server(upstream, "search") as proxy:
        await _exercise(proxy, era, can_ask=can_ask)


async def test_proxy_over_stdio_in_both_eras() -> None:
    with anyio.fail_after(30):
        async with proxy_server(stdio_upstream(), "search") as proxy:
            for era in ERAS:
                await _exercise(proxy, era)


async def test_proxy_in_standard_mode_lists_the_upstream_tools() -> None:
    async with (
        http_upstream() as upstream,
        proxy_server(upstream, "standard") as proxy,
        Client(proxy) as client,
    ):
        with anyio.fail_after(10):
            tools = (await client.list_tools()).tools
            summed = await client.call_tool("add_numbers", {"a": 1, "b": 2})
    assert len(tools) == TOOL_COUNT
    assert summed.structured_content == {"result": 3}


def test_an_upstream_is_a_url_or_a_command() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Upstream()
    with pytest.raises(ValueError, match="exactly one"):
        Upstream(url="http://127.0.0.1:1/x", command=("x",))
    assert str(Upstream.stdio("python", "-m", "x")) == "python -m x"


async def test_proxy_in_codesearch_mode_runs_scripts_against_the_upstream() -> None:
    script = "const w = await get_weather({city: 'Porto'}); const e = await echo({text: w.sky}); e.result"
    async with (
        http_upstream() as upstream,
        CodeRunner(workers=1) as runner,
        proxy_server(upstream, "codesearch", code_runner=runner) as proxy,
        Client(proxy) as client,
    ):
        with anyio.fail_after(20):
            tools = {t.name: t for t in (await client.list_tools()).tools}
            result = await client.call_tool("run_code", {"code": script})
    assert set(tools) == {"get_tool", "run_code"}
    assert "get_weather" in (tools["run_code"].description or "")
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["result"] == "clear"
    assert [t["name"] for t in result.structured_content["trace"]] == ["get_weather", "echo"]
