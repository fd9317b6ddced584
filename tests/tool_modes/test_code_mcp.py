"""A `run_code` tool built on `CodeRunner`, through a real MCP client in both protocol eras,
in memory and over HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncGenerator

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ImageContent, TextContent
from sandbox_support import TEST_LIMITS, TOOLS, ToolTable, code_runner

from servers.http import HttpSettings, build_app, serve
from tool_modes.code import CodeRunner, describe_api

pytestmark = pytest.mark.anyio
TRANSPORTS = ("memory-legacy", "memory-2026-07-28", "http-legacy", "http-2026-07-28")


@pytest.fixture
async def runner(anyio_backend: str) -> AsyncGenerator[CodeRunner]:
    async with code_runner() as running:
        yield running


def build(runner: CodeRunner, table: ToolTable) -> MCPServer:
    server = MCPServer("code-test")

    @server.tool(name="run_code", description=describe_api(TOOLS, index_only=False))
    async def run_code(code: str, ctx: Context) -> CallToolResult:
        async def progress(done: float, message: str) -> None:
            await ctx.report_progress(done, None, message)

        outcome = await runner.run(code, TOOLS, table, on_progress=progress)
        return outcome.to_result()

    return server


@contextlib.asynccontextmanager
async def connect(server: MCPServer, transport: str) -> AsyncGenerator[Client]:
    """A client on `server`, in memory or over real HTTP on 127.0.0.1 (a free port)."""
    where, era = transport.split("-", 1)
    if where == "memory":
        async with Client(server, mode=era) as client:
            yield client
        return
    settings = HttpSettings(port=0, shutdown_timeout=1.0)
    async with anyio.create_task_group() as group:
        port: int = await group.start(serve, build_app({"/code": server}, settings=settings), settings)
        async with Client(f"http://127.0.0.1:{port}/code", mode=era) as client:
            yield client
        group.cancel_scope.cancel()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_run_code_over_mcp(runner: CodeRunner, transport: str) -> None:
    table = ToolTable()
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    code = "const s = await add({a: 2, b: 3}); const p = await photo({}); console.log(s.sum); [s.sum, p[1]]"
    async with connect(build(runner, table), transport) as client:
        listed = await client.list_tools()
        [tool] = listed.tools
        assert "declare function add(args: {" in (tool.description or "")
        with anyio.fail_after(15):
            result = await client.call_tool("run_code", {"code": code}, progress_callback=on_progress)
            failed = await client.call_tool("run_code", {"code": "await add({a: 1, b: 1}); for (;;) {}"})
            after = await client.call_tool("run_code", {"code": "(await add({a: 20, b: 22})).sum"})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["result"] == [5, {"age_s": 0.1}]
    assert result.structured_content["logs"] == ["5"]
    assert [t["name"] for t in result.structured_content["trace"]] == ["add", "photo"]
    assert [type(c) for c in result.content] == [TextContent, ImageContent]
    assert seen == [1.0, 2.0]

    assert failed.is_error
    text = failed.content[0]
    assert isinstance(text, TextContent)
    assert "script CPU time limit exceeded" in text.text
    assert failed.structured_content is not None
    assert [t["outcome"] for t in failed.structured_content["trace"]] == ["ok"]

    assert not after.is_error
    first = after.content[0]
    assert isinstance(first, TextContent)
    assert json.loads(first.text)["result"] == 42


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancelling_the_request_stops_the_script(anyio_backend: str, transport: str) -> None:
    table = ToolTable()
    limits = dataclasses.replace(TEST_LIMITS, exec_s=30.0)  # the script alone would spin for 30 s
    async with code_runner(limits, workers=1) as runner:
        [pid] = runner.worker_pids
        async with connect(build(runner, table), transport) as client:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:

                    async def call() -> None:
                        await client.call_tool("run_code", {"code": "await enter({}); for (;;) {}"})

                    group.start_soon(call)
                    await table.entered.wait()
                    group.cancel_scope.cancel()
                # One worker: this run can only start once the spinning one is killed and replaced.
                after = await client.call_tool("run_code", {"code": "(await add({a: 1, b: 2})).sum"})
            assert pid not in runner.worker_pids
        assert not after.is_error, after.content
        assert after.structured_content is not None
        assert after.structured_content["result"] == 3
