"""The "everything" demo server (every MCP feature) in Search mode, in process and proxied over
stdio: each `invoke_tool` result must equal the Standard-mode result of the same call, with the
server's sampling, elicitation (form and URL), roots and progress reaching the outer client."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.server.mcpserver import MCPServer
from pydantic import FileUrl

from servers.everything import build_everything_server
from tests.tool_modes.everything_stdio import FAST
from tests.tool_modes.support import ERAS, json_of, text_of
from tool_modes.catalog import Upstream
from tool_modes.code import CodeRunner
from tool_modes.modes import build_mode_server
from tool_modes.proxy import proxy_server

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]

CALLS: Final[list[tuple[str, dict[str, Any]]]] = [
    ("echo", {"message": "hello"}),
    ("get-sum", {"a": 2, "b": 3}),
    ("get-tiny-image", {}),
    ("get-annotated-message", {"messageType": "error", "includeImage": True}),
    ("trigger-sampling-request", {"prompt": "a haiku", "maxTokens": 20}),
    ("trigger-elicitation-request", {}),
    ("get-roots-list", {}),
    ("simulate-research-query", {"topic": "tides", "ambiguous": True}),
    ("trigger-long-running-operation", {"duration": 0.05, "steps": 3}),
]


class User:
    """Answers every question the same way, and remembers what was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.progress: list[float] = []

    async def sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.asked.append("sampling")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="a reply"), model="scripted"
        )

    async def elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        self.asked.append("elicitation")
        if isinstance(params, types.ElicitRequestURLParams):
            return types.ElicitResult(action="accept")
        if "interpretation" in params.requested_schema["properties"]:
            return types.ElicitResult(action="accept", content={"interpretation": "historical"})
        return types.ElicitResult(action="accept", content={"name": "Ada", "integer": 7, "check": True})

    async def list_roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        self.asked.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri=FileUrl("file:///work"), name="work")])

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append(progress)

    def client(self, server: MCPServer[Any], era: str) -> Client:
        return Client(
            server,
            mode=era,
            sampling_callback=self.sampling,
            elicitation_callback=self.elicitation,
            list_roots_callback=self.list_roots,
        )


async def _same_as_standard(
    search: MCPServer[Any], standard: MCPServer[Any], era: str, *, same_progress: bool = True
) -> None:
    via, direct = User(), User()
    async with via.client(search, era) as client, direct.client(standard, era) as plain:
        for name, arguments in CALLS:
            with anyio.fail_after(10):
                got = await client.call_tool(
                    "invoke_tool", {"name": name, "arguments": arguments}, progress_callback=via.on_progress
                )
                want = await plain.call_tool(name, arguments, progress_callback=direct.on_progress)
            assert not got.is_error, (name, text_of(got))
            assert got.content == want.content, name
            assert got.structured_content == want.structured_content, name
    assert via.asked == direct.asked
    assert via.asked.count("elicitation") == 2
    if same_progress:
        assert via.progress == direct.progress
    assert len(via.progress) >= 7  # the research query's stages and the long operation's steps


@pytest.mark.parametrize("era", ERAS)
async def test_everything_in_search_mode_is_standard_mode_behind_invoke_tool(era: str) -> None:
    standard = build_everything_server(FAST)
    search = build_mode_server(standard, "search")
    await _same_as_standard(search, standard, era)
    async with Client(search, mode=era) as client:
        with anyio.fail_after(10):
            found = json_of(await client.call_tool("get_tool", {"query": "add two numbers"}))
    assert found["matches"][0]["name"] == "get-sum"


async def test_everything_proxied_over_stdio_in_search_mode() -> None:
    upstream = Upstream.stdio(sys.executable, "-m", "tests.tool_modes.everything_stdio", cwd=str(REPO))
    with anyio.fail_after(30):
        async with proxy_server(upstream, "search") as proxy:
            for era in ERAS:
                # The proxy's own session is 2026-07-28, where the research query reports its
                # stages a little differently than to a handshake-era client asked mid-call.
                await _same_as_standard(
                    proxy, build_everything_server(FAST), era, same_progress=era == "2026-07-28"
                )


@pytest.mark.parametrize("era", ERAS)
async def test_everything_resources_and_prompts_page_through_search_mode_unchanged(era: str) -> None:
    standard = build_everything_server(FAST)
    search = build_mode_server(standard, "search")

    async def everything_listed(client: Client) -> tuple[list[types.Resource], int]:
        resources: list[types.Resource] = []
        cursor: str | None = None
        for pages in range(1, 50):
            page = await client.list_resources(cursor=cursor)
            resources += page.resources
            cursor = page.next_cursor
            if cursor is None:
                return resources, pages
        raise AssertionError("resources/list never ended")

    async with Client(search, mode=era) as client, Client(standard, mode=era) as plain:
        with anyio.fail_after(10):
            via, via_pages = await everything_listed(client)
            direct, direct_pages = await everything_listed(plain)
            templates = (await client.list_resource_templates()).resource_templates
            prompts = (await client.list_prompts()).prompts
            read = await client.read_resource(via[0].uri)
            read_direct = await plain.read_resource(via[0].uri)
            assert templates == (await plain.list_resource_templates()).resource_templates
            assert prompts == (await plain.list_prompts()).prompts
    assert via == direct
    assert via_pages == direct_pages > 1  # the inner server's own paging is kept
    assert read.contents == read_direct.contents
    assert templates
    assert prompts


async def test_codesearch_names_the_script_function_of_a_hyphenated_tool() -> None:
    standard = build_everything_server(FAST)
    async with CodeRunner(workers=1) as runner:
        codesearch = build_mode_server(standard, "codesearch", code_runner=runner)
        async with Client(codesearch) as client:
            with anyio.fail_after(20):
                found = json_of(await client.call_tool("get_tool", {"query": "sum of two numbers"}))
                best = found["matches"][0]
                script = f"await {best['call_as']}({{a: 20, b: 22}})"
                result = await client.call_tool("run_code", {"code": script})
                echo = json_of(await client.call_tool("get_tool", {"query": "echo"}))
    assert (best["name"], best["call_as"]) == ("get-sum", "get_sum")
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert "42" in json.dumps(result.structured_content["result"])
    assert "call_as" not in echo["matches"][0]  # a valid identifier is called by its name
