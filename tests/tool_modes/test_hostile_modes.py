"""Hostile input to the tool-mode facades (issue 18), through a real MCP client: a query too
long to rank on the event loop, scripts whose trace would dwarf the output cap, and output no
transport could send (lone surrogates, values nested hundreds deep). Each is refused or cut
with an `isError`/`truncated` note, every `run_code` result still carries its trace, and the
event loop is never blocked for long while they are served."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent
from sandbox_support import TEST_LIMITS, code_runner

from tests.support.loop_cpu import metering
from tests.tool_modes.support import connect, json_of, text_of
from tool_modes.bounds import MAX_DEPTH, MAX_QUERY_CHARS
from tool_modes.code import CodeRunner
from tool_modes.modes import build_mode_server

pytestmark = pytest.mark.anyio

CAP = TEST_LIMITS.max_output_bytes
HOSTILE_QUERY = "turn around and fly " * 45_000  # ~900 KB, as in the report
DEEP = 300


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"down": value}
    return value


def build_inner() -> MCPServer[Any]:
    inner: MCPServer[Any] = MCPServer("hostile-inner")

    @inner.tool(structured_output=False)
    async def echo(text: str) -> str:  # pyright: ignore[reportUnusedFunction]
        """Say `text` back."""
        return text

    @inner.tool(structured_output=False)
    async def odd_output() -> CallToolResult:  # pyright: ignore[reportUnusedFunction]
        """A result no transport can send as it is: a lone surrogate and a value 300 deep."""
        return CallToolResult(
            content=[TextContent(type="text", text="half a pair: \ud800")],
            structured_content={"deep": nested(DEEP)},
        )

    return inner


@pytest.fixture
async def runner(anyio_backend: str) -> AsyncGenerator[CodeRunner]:
    async with code_runner() as running:
        yield running


@pytest.mark.parametrize("transport", ["memory-legacy", "http-2026-07-28"])
async def test_an_over_long_query_is_refused_and_the_server_keeps_serving(transport: str) -> None:
    server = build_mode_server(build_inner(), "search")
    async with connect(server, transport) as client:
        with anyio.fail_after(20):
            refused = await client.call_tool("get_tool", {"query": HOSTILE_QUERY})
            found = await client.call_tool("get_tool", {"query": "echo"})
            wrong = await client.call_tool("invoke_tool", {"name": "x" * 10_000})
    assert refused.is_error
    assert text_of(refused) == (
        f"get_tool: query must be at most {MAX_QUERY_CHARS} characters (got {len(HOSTILE_QUERY)}); "
        "nothing was searched"
    )
    assert not found.is_error
    assert json_of(found)["matches"][0]["name"] == "echo"
    assert wrong.is_error
    assert "name must be at most 200 characters (got 10000)" in text_of(wrong)


async def test_the_whole_run_code_result_fits_the_output_cap(runner: CodeRunner) -> None:
    # Ten calls whose arguments fill the run's argument budget, and logs half the cap.
    code = (
        "for (let i = 0; i < 10; i++) await echo({text: 'x'.repeat(1500)}); "
        "console.log('y'.repeat(8000)); 'done'"
    )
    async with Client(build_mode_server(build_inner(), "code", code_runner=runner)) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("run_code", {"code": code})
    [block] = result.content
    assert isinstance(block, TextContent)
    assert len(block.text.encode()) <= CAP
    data = json.loads(block.text)
    assert data == result.structured_content
    assert [e["name"] for e in data["trace"]] == ["echo"] * 10
    assert all(e["outcome"] == "ok" for e in data["trace"])
    assert "1511 bytes of JSON in all; cut" in data["trace"][0]["arguments"]["truncated"]
    assert data["result"] == "done"
    assert data["truncated"].startswith(f"the whole result is capped at {CAP} bytes of JSON; cut to fit: ")


@pytest.mark.parametrize("transport", ["memory-legacy", "http-2026-07-28"])
async def test_unsendable_run_code_output_still_arrives_with_its_trace(
    runner: CodeRunner, transport: str
) -> None:
    lone = "await echo({text: 'hi'}); console.log('half a pair: \\ud800'); 'ok'"
    deep = f"await echo({{text: 'hi'}}); let v = 'bottom'; for (let i = 0; i < {DEEP}; i++) v = [v]; v"
    async with connect(build_mode_server(build_inner(), "code", code_runner=runner), transport) as client:
        with anyio.fail_after(20):
            surrogate = await client.call_tool("run_code", {"code": lone})
            too_deep = await client.call_tool("run_code", {"code": deep})
    assert not surrogate.is_error, text_of(surrogate)
    assert surrogate.structured_content is not None
    assert surrogate.structured_content["logs"] == ["half a pair: \ufffd"]
    assert [e["name"] for e in surrogate.structured_content["trace"]] == ["echo"]
    assert too_deep.structured_content is not None, text_of(too_deep)
    assert [e["name"] for e in too_deep.structured_content["trace"]] == ["echo"]
    depth, value = 0, too_deep.structured_content["result"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]  # pyright: ignore[reportUnknownVariableType]
    assert depth == MAX_DEPTH - 1
    assert value == f"(nested deeper than {MAX_DEPTH} levels: cut)"


@pytest.mark.parametrize("transport", ["memory-legacy", "http-2026-07-28"])
async def test_unsendable_invoke_tool_results_arrive(transport: str) -> None:
    async with connect(build_mode_server(build_inner(), "search"), transport) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("invoke_tool", {"name": "odd_output"})
    assert text_of(result) == "half a pair: \ufffd"
    assert result.structured_content is not None
    assert json.dumps(result.structured_content).count('"down"') == MAX_DEPTH - 1


async def test_hostile_inputs_never_block_the_event_loop(runner: CodeRunner) -> None:
    """No event-loop callback runs more than 50 ms of CPU while hostile get_tool and run_code
    calls are served: CPU time of each callback on this loop's thread (`tests/support/
    loop_cpu.py`), not wall time, so a busy machine does not fail it and an idle one cannot
    hide a stall between two ticks."""
    inner = build_inner()
    results: list[CallToolResult] = []
    # Ten calls at once, each near the cap: only the first fits the run's argument budget.
    flood = (
        "const calls = []; for (let i = 0; i < 10; i++) calls.push(echo({text: 'x'.repeat(15000)})); "
        "(await Promise.allSettled(calls)).map(c => c.status)"
    )
    with metering(threading.get_ident()) as meter:
        async with (
            Client(build_mode_server(inner, "search")) as search,
            Client(build_mode_server(inner, "codesearch", code_runner=runner)) as code,
        ):
            with anyio.fail_after(60):
                for _ in range(3):
                    results.append(await search.call_tool("get_tool", {"query": HOSTILE_QUERY}))
                    results.append(await code.call_tool("get_tool", {"query": HOSTILE_QUERY}))
                    results.append(await code.call_tool("run_code", {"code": flood}))
    assert meter.callbacks > 20, "the meter saw nothing: is this test on asyncio?"
    assert not meter.stalls(0.050), meter.report(0.050)
    assert [r.is_error for r in results] == [True, True, False] * 3
    assert json_of(results[2])["result"] == ["fulfilled"] + ["rejected"] * 9
