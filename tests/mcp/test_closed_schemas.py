"""What a model reads when it lists tools: every tool of every server of the suite (the drone in
its four modes, everything, fetch, and the proxy over everything) has a closed input schema
(`additionalProperties: false`) and a description without its source's indentation, seen
through a real MCP client; and a structured result's text is compact JSON."""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import TextContent, Tool

from servers.drone.runtime import DroneRuntime
from servers.drone.server import build_drone_server
from servers.everything import build_everything_server
from servers.fetch.server import build_fetch_server
from servers.validation import StrictToolsServer
from tests.drone_server.harness import drone_settings
from tool_modes.catalog import Upstream
from tool_modes.code import CodeRunner
from tool_modes.modes import MODES, build_mode_server
from tool_modes.proxy import proxy_server

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the sandbox's worker processes and the stdio upstream run on real time


@contextlib.asynccontextmanager
async def every_server() -> AsyncGenerator[dict[str, MCPServer[Any]]]:
    """Each server a client can reach, by a label: built, not started (listing needs no drone)."""
    drone, _ = build_drone_server(DroneRuntime(drone_settings()))
    everything = build_everything_server()
    upstream = Upstream.stdio(sys.executable, "-m", "tests.tool_modes.everything_stdio", cwd=str(REPO))
    async with CodeRunner(workers=1) as runner, contextlib.AsyncExitStack() as stack:
        servers: dict[str, MCPServer[Any]] = {"fetch": build_fetch_server()}
        for mode in MODES:
            servers[f"drone-{mode}"] = build_mode_server(drone, mode, code_runner=runner)
            servers[f"everything-{mode}"] = build_mode_server(everything, mode, code_runner=runner)
        for mode in ("standard", "search", "codesearch"):
            proxy = await stack.enter_async_context(proxy_server(upstream, mode, code_runner=runner))
            servers[f"proxy-{mode}"] = proxy
        yield servers


async def listed(server: MCPServer[Any]) -> list[Tool]:
    async with Client(server) as client:
        return (await client.list_tools()).tools


async def test_every_tool_of_every_server_is_closed_and_dedented() -> None:
    with anyio.fail_after(60):
        async with every_server() as servers:
            seen = {label: await listed(server) for label, server in servers.items()}
    every = [(f"{label}/{tool.name}", tool) for label, tools in seen.items() for tool in tools]
    assert [name for name, tool in every if tool.input_schema.get("additionalProperties") is not False] == []
    assert [
        name
        for name, tool in every
        if tool.description and inspect.cleandoc(tool.description) != tool.description
    ] == []
    assert [name for name, tool in every if str(tool.input_schema.get("title")).endswith("Arguments")] == []
    assert [
        f"{name}.{arg}"
        for name, tool in every
        for arg, prop in tool.input_schema.get("properties", {}).items()
        if prop.get("title") == arg.replace("_", " ").title()  # pydantic's made-up titles cost tokens
    ] == []
    assert all(seen.values()), [label for label, tools in seen.items() if not tools]
    assert {t.name for t in seen["drone-standard"]} >= {"move", "rotate", "flip", "takeoff"}
    assert {t.name for t in seen["drone-search"]} == {"get_tool", "invoke_tool"}
    assert {t.name for t in seen["proxy-standard"]} == {t.name for t in seen["everything-standard"]}
    (get_state,) = [t for t in seen["drone-standard"] if t.name == "get_state"]
    assert get_state.description is not None
    assert "\n    " not in get_state.description


async def test_a_tool_added_after_the_server_is_built_is_closed_too() -> None:
    """Closing is the server's, not a list of tools: a tool registered later (a conformance
    fixture, a plugin) is closed and refuses what it does not take."""
    server = StrictToolsServer(name="late")

    @server.tool()
    async def late_tool(x: int) -> int:  # pyright: ignore[reportUnusedFunction]
        """A tool registered after the server was built."""
        return x

    async with Client(server) as client:
        (tool,) = (await client.list_tools()).tools
        refused = await client.call_tool("late_tool", {"x": 1, "y": 2})
        taken = await client.call_tool("late_tool", {"x": 1})
    assert tool.input_schema["additionalProperties"] is False
    assert refused.is_error
    assert [c.text for c in refused.content if isinstance(c, TextContent)] == [
        "late_tool takes x; unknown: y; the tool did not run"
    ]
    assert not taken.is_error
    with pytest.raises(ToolError, match=r"^late_tool takes x; unknown: y"):
        await server.call_tool("late_tool", {"x": 1, "y": 2})


async def test_a_structured_result_is_sent_as_compact_json() -> None:
    everything = build_everything_server()
    async with Client(everything) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        structured = next(name for name, t in tools.items() if t.output_schema is not None)
        arguments = _minimal_arguments(tools[structured])
        result = await client.call_tool(structured, arguments)
    assert not result.is_error, result
    (text,) = [c.text for c in result.content if isinstance(c, TextContent)]
    assert result.structured_content is not None
    assert text == json.dumps(result.structured_content, ensure_ascii=False, separators=(",", ":"))


def _minimal_arguments(tool: Tool) -> dict[str, Any]:
    """Values for a tool's required arguments that its schema accepts (numbers and strings)."""
    props: dict[str, Any] = tool.input_schema.get("properties", {})
    out: dict[str, Any] = {}
    for name in tool.input_schema.get("required", []):
        prop = props[name]
        if "enum" in prop:
            out[name] = prop["enum"][0]
        elif prop.get("type") in ("integer", "number"):
            out[name] = prop.get("minimum", 1)
        else:
            out[name] = "x"
    return out
