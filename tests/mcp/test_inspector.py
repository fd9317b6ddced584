"""The MCP Inspector CLI, the client people use by hand, against the demo servers over HTTP."""

from __future__ import annotations

import anyio
import pytest

from tests.mcp.demo import PATHS, Served
from tests.support.inspector import INSTALL_TIMEOUT, Era, Inspector, inspector_or_skip

pytestmark = [pytest.mark.anyio, pytest.mark.inspector, pytest.mark.timeout(INSTALL_TIMEOUT + 120)]

CALL_TIMEOUT = 60


@pytest.fixture(scope="session")
def inspector() -> Inspector:
    return inspector_or_skip()


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_inspector_lists_and_calls_tools(served: Served, inspector: Inspector, era: Era) -> None:
    url = served.url(PATHS[1])
    with anyio.fail_after(CALL_TIMEOUT):
        listed = await inspector.run(url, "tools/list", era=era)
        assert listed.returncode == 0, listed.stderr
        tools = {tool["name"]: tool for tool in listed.result["tools"]}
        assert set(tools) == {"move", "refuse", "count", "hold"}
        assert tools["move"]["inputSchema"]["properties"]["distance_cm"]["maximum"] == 500

        moved = await inspector.run(
            url, "tools/call", era=era, tool_name="move", tool_args={"distance_cm": 40}
        )
        assert moved.returncode == 0, moved.stderr
        assert moved.result["structuredContent"] == {"distance_cm": 40, "direction": "up"}
        # Only the stateless era stamps serverInfo on results: proof of which era was spoken.
        assert ("_meta" in moved.result) is (era == "modern")


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_inspector_reports_tool_errors(served: Served, inspector: Inspector, era: Era) -> None:
    url = served.url()
    with anyio.fail_after(CALL_TIMEOUT):
        refused = await inspector.run(
            url, "tools/call", era=era, tool_name="refuse", tool_args={"reason": "no"}
        )
        too_far = await inspector.run(
            url, "tools/call", era=era, tool_name="move", tool_args={"distance_cm": 9000}
        )
    assert refused.returncode == 5
    assert refused.error is not None
    assert refused.error["code"] == "tool_is_error"
    assert too_far.returncode == 5
    assert too_far.result["isError"] is True
    assert "distance_cm" in too_far.result["content"][0]["text"]
