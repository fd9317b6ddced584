"""`tello-mcp serve proxy`, as an operator runs it: the everything server re-served in a tool
mode, its upstream reached over streamable HTTP (another `tello-mcp` process) or over stdio."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp_types import TextContent

from tests.support.serve import serving as support_serving

pytestmark = pytest.mark.anyio

BIN = Path(sys.executable).parent


@contextlib.asynccontextmanager
async def serving(argv: Sequence[str], tmp_path: Path) -> AsyncGenerator[dict[str, str]]:
    """`tello-mcp serve ARGV`, until the block ends; yields {name: url} from its banner."""
    command = [str(BIN / "tello-mcp"), "serve", *argv]
    async with support_serving(command, tmp_path / f"stderr-{argv[0]}.log", cwd=tmp_path) as served:
        yield {name: url for url, name in served.endpoints.items()}


async def _echo_through_search_mode(url: str, mode: str) -> None:
    async with Client(url, mode=mode) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == {"get_tool", "invoke_tool"}
        found = await client.call_tool("get_tool", {"query": "echo"})
        assert not found.is_error
        echoed = await client.call_tool(
            "invoke_tool", {"name": "echo", "arguments": {"message": "over the proxy"}}
        )
    assert not echoed.is_error
    texts = [block.text for block in echoed.content if isinstance(block, TextContent)]
    assert any("over the proxy" in text for text in texts), texts


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_proxy_over_an_http_upstream(mode: str, tmp_path: Path) -> None:
    async with serving(["everything", "--port", "0"], tmp_path) as upstream:
        argv = ["proxy", "--mode", "search", "--upstream", upstream["everything"], "--port", "0"]
        async with serving(argv, tmp_path) as proxy:
            with anyio.fail_after(60):
                await _echo_through_search_mode(proxy["proxy"], mode)


async def test_proxy_over_a_stdio_upstream(tmp_path: Path) -> None:
    upstream = [str(BIN / "tello-mcp"), "serve", "everything", "--transport", "stdio"]
    async with serving(["proxy", "--mode", "search", "--port", "0", "--", *upstream], tmp_path) as proxy:
        with anyio.fail_after(60):
            await _echo_through_search_mode(proxy["proxy"], "2026-07-28")


def test_a_proxy_needs_exactly_one_upstream() -> None:
    done = subprocess.run(
        [str(BIN / "tello-mcp"), "serve", "proxy", "--mode", "search"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "exactly one" in done.stderr
