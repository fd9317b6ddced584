"""One wording for a refusal on every path a model reaches a tool by: the drone's Standard path,
`invoke_tool` (Search), a `run_code` script (Code), and the everything server directly and
through the proxy. What was refused, why, what to do, whether anything was sent; never the SDK's
"Error executing tool X:" prefix, never "ToolError: ..." nested in a script's error, and a
failed script states its error once. The drone is the embedded simulator; its ground truth
shows that a refused call sent nothing."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from drone_sim import GroundTruth
from servers.drone.app import running
from servers.drone.runtime import DroneRuntime
from servers.drone.server import build_drone_server
from servers.everything import build_everything_server
from servers.validation import StrictToolsServer
from tests.drone_server.harness import KEEPALIVE, http_drone_settings, wait_connected
from tool_modes.catalog import Upstream
from tool_modes.code import CodeRunner
from tool_modes.modes import build_mode_server
from tool_modes.proxy import proxy_server

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]

Path_ = Callable[[str, dict[str, Any]], Awaitable[str]]
"""Calls a tool on one path and returns the refusal as the model reads it."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # sandbox worker processes and the drone link over UDP run on real time


def _text(result: CallToolResult) -> str:
    assert result.is_error, result
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    assert len(texts) == 1, texts
    return texts[0]


def standard(client: Client) -> Path_:
    async def call(name: str, arguments: dict[str, Any]) -> str:
        return _text(await client.call_tool(name, arguments))

    return call


def invoked(client: Client) -> Path_:
    async def call(name: str, arguments: dict[str, Any]) -> str:
        return _text(await client.call_tool("invoke_tool", {"name": name, "arguments": arguments}))

    return call


def scripted(client: Client) -> Path_:
    async def call(name: str, arguments: dict[str, Any]) -> str:
        script = f"await {name.replace('-', '_')}({json.dumps(arguments)})"
        result = await client.call_tool("run_code", {"code": script})
        text = _text(result)
        assert result.structured_content is not None
        error: str = result.structured_content["error"]
        assert text.count(error) == 1, text  # stated once: not beside an "Error:" line, nor in the trace
        assert [entry.get("error") for entry in result.structured_content["trace"]] == [None]
        assert result.structured_content["trace"][0]["outcome"] == "error"
        return error

    return call


@contextlib.asynccontextmanager
async def drone_paths() -> AsyncGenerator[tuple[dict[str, Path_], GroundTruth]]:
    runtime = DroneRuntime(http_drone_settings())
    server, updates = build_drone_server(runtime)
    async with running(runtime, [updates]), CodeRunner(workers=1) as runner:
        await wait_connected(runtime)
        assert runtime.sim is not None
        async with (
            Client(server) as direct,
            Client(build_mode_server(server, "search")) as search,
            Client(build_mode_server(server, "code", code_runner=runner)) as code,
        ):
            yield (
                {"standard": standard(direct), "invoke_tool": invoked(search), "run_code": scripted(code)},
                (runtime.sim.truth),
            )


DRONE_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    (
        "move",
        {"direction": "up", "distance_cm": 20, "speed": 5},
        "move takes direction, distance_cm; unknown: speed (set_speed sets the speed); nothing was sent",
    ),
    (
        "move",
        {"direction": "up", "distance_cm": 600},
        "distance_cm must be between 20 and 500 (got 600); nothing was sent",
    ),
    (
        "rotate",
        {"degrees": 90},
        "direction is required: one of 'clockwise', 'counter-clockwise'; nothing was sent",
    ),
    (
        "rotate",
        {"direction": "clockwise", "degrees": -90},
        "degrees must be between 1 and 360 (got -90); "
        "to turn the other way, rotate counter-clockwise 90 degrees; nothing was sent",
    ),
    ("takeoff", {"height": 100}, "takeoff takes no arguments; unknown: height; nothing was sent"),
    (
        "flip",
        {"direction": "left"},
        "refused 'flip left': the drone is not flying (take off first). Nothing was sent.",
    ),
    (
        "move",
        {"direction": "up", "distance_cm": 20},
        "refused 'up 20': the drone is not flying (take off first). Nothing was sent.",
    ),
]


async def test_a_drone_refusal_reads_the_same_on_every_path() -> None:
    with anyio.fail_after(60):
        async with drone_paths() as (paths, truth):
            before = len(truth.received)
            said = {
                (name, json.dumps(arguments), path): await call(name, arguments)
                for name, arguments, _ in DRONE_REFUSALS
                for path, call in paths.items()
            }
            sent = [r.data.decode() for r in truth.received[before:] if r.data.decode() != KEEPALIVE]
    expected = {
        (name, json.dumps(arguments), path): words
        for name, arguments, words in DRONE_REFUSALS
        for path in ("standard", "invoke_tool", "run_code")
    }
    assert said == expected
    assert sent == []  # every one refused before anything reached the drone


@contextlib.asynccontextmanager
async def everything_paths() -> AsyncGenerator[dict[str, Path_]]:
    upstream = Upstream.stdio(sys.executable, "-m", "tests.tool_modes.everything_stdio", cwd=str(REPO))
    everything: MCPServer[Any] = build_everything_server()
    async with (
        CodeRunner(workers=1) as runner,
        proxy_server(upstream, "standard") as proxied,
        proxy_server(upstream, "search") as proxied_search,
        proxy_server(upstream, "code", code_runner=runner) as proxied_code,
        Client(everything) as direct,
        Client(build_mode_server(everything, "search")) as search,
        Client(build_mode_server(everything, "code", code_runner=runner)) as code,
        Client(proxied) as via_proxy,
        Client(proxied_search) as via_proxy_search,
        Client(proxied_code) as via_proxy_code,
    ):
        yield {
            "standard": standard(direct),
            "invoke_tool": invoked(search),
            "run_code": scripted(code),
            "proxy": standard(via_proxy),
            "proxy invoke_tool": invoked(via_proxy_search),
            "proxy run_code": scripted(via_proxy_code),
        }


async def test_an_everything_refusal_reads_the_same_on_every_path_and_through_the_proxy() -> None:
    refused = ("gzip-file-as-resource", {"data": "https://example.com/"})
    unknown = ("echo", {"message": "hi", "loud": True})
    with anyio.fail_after(60):
        async with everything_paths() as paths:
            tool_said = {path: await call(*refused) for path, call in paths.items()}
            argument_said = {path: await call(*unknown) for path, call in paths.items()}
    assert set(tool_said.values()) == {"URLs are not fetched: pass the content itself or a data: URI"}
    # The everything server refuses its own arguments; a proxy's facade over an upstream checks
    # them itself, in the same engine's words, saying it called nothing.
    assert argument_said == {
        "standard": "echo takes message; unknown: loud; the tool did not run",
        "invoke_tool": "echo takes message; unknown: loud; the tool did not run",
        "run_code": "echo takes message; unknown: loud; the tool did not run",
        "proxy": "echo takes message; unknown: loud; the tool did not run",
        "proxy invoke_tool": "echo takes message; unknown: loud; nothing was called",
        "proxy run_code": "echo takes message; unknown: loud; nothing was called",
    }


async def test_a_crash_says_what_is_known_without_the_sdk_prefix() -> None:
    server = StrictToolsServer(name="crashy")

    @server.tool()
    async def crash() -> str:  # pyright: ignore[reportUnusedFunction]
        """Fails in a way nobody anticipated."""
        raise RuntimeError("secret internal detail")

    async with Client(server) as client:
        said = _text(await client.call_tool("crash", {}))
    assert (
        said
        == "crash failed on an unexpected error (the server logged it); whether it did anything is not known"
    )
