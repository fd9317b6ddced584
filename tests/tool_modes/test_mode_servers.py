"""Code and CodeSearch mode servers: the glue between the mode server, the inner tool set and the
sandbox (`tool_modes.code.CodeRunner`, tested on its own in test_code*.py). Through a real
MCP client, in both eras; in memory and over HTTP."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any
from unittest.mock import ANY

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.tool_modes.support import ERAS, connect, text_of
from tests.tool_modes.test_search_mode import Answer
from tests.tool_modes.toy_server import COUNTER_URI, build_toy_server
from tool_modes.catalog import ServerCatalog
from tool_modes.code import CodeRunner
from tool_modes.modes import build_catalog_server, build_mode_server

pytestmark = pytest.mark.anyio


@pytest.fixture
async def runner(anyio_backend: str) -> AsyncGenerator[CodeRunner]:
    async with CodeRunner(workers=1) as started:
        yield started


def _structured(result: types.CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, text_of(result)
    return result.structured_content


@pytest.mark.parametrize("era", ERAS)
async def test_code_modes_list_run_code_described_from_the_inner_tools(era: str, runner: CodeRunner) -> None:
    inner, _ = build_toy_server()
    async with (
        Client(build_mode_server(inner, "code", code_runner=runner), mode=era) as code,
        Client(build_mode_server(inner, "codesearch", code_runner=runner), mode=era) as codesearch,
    ):
        with anyio.fail_after(10):
            code_tools = {t.name: t for t in (await code.list_tools()).tools}
            search_tools = {t.name: t for t in (await codesearch.list_tools()).tools}
    assert set(code_tools) == {"run_code"}
    assert set(search_tools) == {"get_tool", "run_code"}
    full = code_tools["run_code"].description or ""
    index = search_tools["run_code"].description or ""
    assert "declare function set_volume(" in full
    assert "0..11" in full  # parameter ranges are documented
    assert "declare function" not in index
    assert "set_volume" in index  # one line per tool (its exact shape is the sandbox's business)
    assert "get_tool" in index
    assert len(index) < len(full)
    assert "run_code" in (search_tools["get_tool"].description or "")


@pytest.mark.parametrize("transport", ["memory-legacy", "http-2026-07-28"])
async def test_run_code_calls_the_inner_tools(transport: str, runner: CodeRunner) -> None:
    inner, _ = build_toy_server()
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    script = """
        const sum = await add_numbers({a: 2, b: 40});
        const said = await echo({text: "hi"});
        const picture = await draw_pixel({});
        console.log("done");
        ({sum: sum.result, said: said.result, picture})
    """
    async with connect(build_mode_server(inner, "code", code_runner=runner), transport) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("run_code", {"code": script}, progress_callback=on_progress)
    data = _structured(result)
    assert not result.is_error, text_of(result)
    assert data["result"]["sum"] == 42
    assert data["result"]["said"] == "hi"
    assert data["logs"] == ["done"]
    assert [(t["name"], t["outcome"]) for t in data["trace"]] == [
        ("add_numbers", "ok"),
        ("echo", "ok"),
        ("draw_pixel", "ok"),
    ]
    images = [c for c in result.content if isinstance(c, types.ImageContent)]
    assert [i.mime_type for i in images] == ["image/png"]
    assert [p for p, _ in seen] == [1.0, 2.0, 3.0]  # one notification per tool call
    assert all(m is not None and m.startswith("tool call ") for _, m in seen)


async def test_run_code_checks_arguments_before_calling(runner: CodeRunner) -> None:
    inner, _ = build_toy_server()
    script = """
        const errors = [];
        for (const call of [() => bump_counter({by: 2}), () => set_volume({level: 99})]) {
            try { await call(); } catch (e) { errors.push(String(e.message)); }
        }
        errors
    """
    async with Client(build_mode_server(inner, "code", code_runner=runner)) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("run_code", {"code": script})
            counter = await client.read_resource(COUNTER_URI)
    errors = _structured(result)["result"]
    assert errors == [
        "bump_counter takes no arguments; unknown: by; nothing was called",
        "level must be between 0 and 11 (got 99); nothing was called",
    ]
    assert [c.text for c in counter.contents if isinstance(c, types.TextResourceContents)] == ["0"]


@pytest.mark.parametrize("era", ERAS)
async def test_elicitation_inside_a_script(era: str, runner: CodeRunner) -> None:
    """A handshake-era client is asked mid-call, as in Standard mode; a 2026-07-28 request cannot
    be suspended for an input_required round mid-script, so the call fails saying why."""
    inner, _ = build_toy_server()
    answer = Answer("accept")
    server = build_mode_server(inner, "codesearch", code_runner=runner)
    async with Client(server, mode=era, elicitation_callback=answer) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("run_code", {"code": "await shred_files({})"})
    data = _structured(result)
    if era == "legacy":
        assert answer.asked == ["Really shred every file in the workshop?"]
        assert data["result"] == {"result": "shredded"}
    else:
        assert answer.asked == []
        assert result.is_error
        assert "cannot be collected here" in data["error"]  # the failed call's words, once
        assert "Really shred every file" in data["error"]
        assert data["trace"] == [{"name": "shred_files", "arguments": {}, "outcome": "error", "ms": ANY}]


async def test_code_modes_need_a_runner_and_standard_has_no_facade() -> None:
    inner, _ = build_toy_server()
    for mode in ("code", "codesearch"):
        with pytest.raises(ValueError, match="CodeRunner"):
            build_mode_server(inner, mode)
    with pytest.raises(ValueError, match="standard"):
        build_catalog_server(ServerCatalog(inner), "standard", name="x")
