"""Sandbox families, through a real MCP client, scraped with Prometheus's parser:
`run_code` runs by outcome, limit hits, worker restarts and run durations (fetches: in
tests/fetch/test_fetch_metrics.py, beside the test site's fixtures)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult

from tests.metrics.scrape import Scrape, scrape_app
from tests.tool_modes.sandbox_support import TEST_LIMITS, TOOLS, ToolTable, code_runner
from tool_modes.code import CodeRunner, describe_api

pytestmark = pytest.mark.anyio

RUNS = "tello_mcp_sandbox_runs_total"
LIMITS = "tello_mcp_sandbox_limit_hits_total"
RESTARTS = "tello_mcp_sandbox_worker_restarts_total"


def _run_code_server(runner: CodeRunner) -> MCPServer:
    server = MCPServer("code-metrics-test")

    @server.tool(name="run_code", description=describe_api(TOOLS, index_only=False))
    async def run_code(code: str) -> CallToolResult:  # pyright: ignore[reportUnusedFunction]
        return (await runner.run(code, TOOLS, ToolTable())).to_result()

    return server


@pytest.fixture
async def runner(anyio_backend: str) -> AsyncGenerator[CodeRunner]:
    # A silent worker is killed after 0.3 s: the run that lost it hits the cpu limit and the
    # pool replaces the process, which is the restart counted.
    async with code_runner(dataclasses.replace(TEST_LIMITS, exec_s=30.0, unresponsive_s=0.3), workers=1) as r:
        yield r


def _delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def test_runs_by_outcome_limit_hits_restarts_and_durations(runner: CodeRunner) -> None:
    [pid] = runner.worker_pids
    before = await scrape_app()
    async with Client(_run_code_server(runner)) as client:
        with anyio.fail_after(30):
            ok = await client.call_tool("run_code", {"code": "const s = await add({a: 2, b: 3}); s.sum"})
            assert not ok.is_error
            thrown = await client.call_tool("run_code", {"code": "throw new Error('no')"})
            assert thrown.is_error
            spun = await client.call_tool("run_code", {"code": "for (;;) {}"})
            assert spun.is_error
            after_spin = await client.call_tool("run_code", {"code": "1"})  # on the replacement
            assert not after_spin.is_error
    after = await scrape_app()
    assert pid not in runner.worker_pids
    assert _delta(before, after, RUNS, outcome="ok") == 2
    assert _delta(before, after, RUNS, outcome="error") == 1
    assert _delta(before, after, RUNS, outcome="limit") == 1
    assert _delta(before, after, LIMITS, limit="cpu") == 1
    assert _delta(before, after, RESTARTS) == 1
    assert _delta(before, after, "tello_mcp_sandbox_run_duration_seconds_count") == 4
    assert _delta(before, after, "tello_mcp_sandbox_run_duration_seconds_sum") >= 0.3  # the spin
