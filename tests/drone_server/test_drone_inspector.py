"""The MCP Inspector CLI, the client people point at the drone by hand, against the HTTP server."""

from __future__ import annotations

import anyio
import pytest

from tests.drone_server.harness import TOOL_NAMES, Served
from tests.support.inspector import INSTALL_TIMEOUT, Era, Inspector, inspector_or_skip

pytestmark = [pytest.mark.anyio, pytest.mark.inspector, pytest.mark.timeout(INSTALL_TIMEOUT + 120)]

CALL_TIMEOUT = 60


@pytest.fixture(scope="session")
def inspector() -> Inspector:
    return inspector_or_skip()


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_inspector_lists_tools_and_reads_state(served: Served, inspector: Inspector, era: Era) -> None:
    with anyio.fail_after(CALL_TIMEOUT):
        listed = await inspector.run(served.url, "tools/list", era=era)
        state = await inspector.run(served.url, "tools/call", era=era, tool_name="get_state")
    assert listed.returncode == 0, listed.stderr
    tools = {tool["name"]: tool for tool in listed.result["tools"]}
    assert set(tools) == TOOL_NAMES
    assert tools["move"]["inputSchema"]["properties"]["distance_cm"]["maximum"] == 500
    assert tools["emergency"]["annotations"]["destructiveHint"] is True
    assert state.returncode == 0, state.stderr
    assert state.result["structuredContent"]["freshness"]["link"] == "connected"
    assert state.result["structuredContent"]["flight"] == "landed"


async def test_inspector_flies_and_reports_a_bad_move(served: Served, inspector: Inspector) -> None:
    truth = served.truth
    with anyio.fail_after(CALL_TIMEOUT):
        took_off = await inspector.run(served.url, "tools/call", tool_name="takeoff")
        moved = await inspector.run(
            served.url, "tools/call", tool_name="move", tool_args={"direction": "forward", "distance_cm": 50}
        )
        sent = len(truth.received)
        too_far = await inspector.run(
            served.url, "tools/call", tool_name="move", tool_args={"direction": "forward", "distance_cm": 501}
        )
        unconfirmed = await inspector.run(served.url, "tools/call", tool_name="emergency")
    assert took_off.returncode == 0, took_off.stderr
    assert moved.returncode == 0, moved.stderr
    assert moved.result["structuredContent"]["command"] == "forward 50"
    assert moved.result["structuredContent"]["state"]["flight"] == "flying"
    assert truth.flying
    assert "forward 50" in truth.executed_texts()

    assert too_far.returncode == 5
    assert too_far.error is not None
    assert too_far.error["code"] == "tool_is_error"
    assert too_far.result["isError"] is True
    assert "distance_cm" in too_far.result["content"][0]["text"]
    # No elicitation in the Inspector CLI: emergency without confirm is refused, not sent.
    assert unconfirmed.returncode == 5
    assert {r.data for r in truth.received[sent:]} <= {b"command"}
    assert truth.flying


MODE_TOOLS = {
    "/drone-search": {"get_tool", "invoke_tool"},
    "/drone-code": {"run_code"},
    "/drone-codesearch": {"get_tool", "run_code"},
}


@pytest.mark.parametrize("path", sorted(MODE_TOOLS))
async def test_inspector_lists_each_mode_paths_tools(served: Served, inspector: Inspector, path: str) -> None:
    url = served.base + path
    with anyio.fail_after(CALL_TIMEOUT):
        listed = await inspector.run(url, "tools/list", era="modern")
        if "get_tool" in MODE_TOOLS[path]:
            found = await inspector.run(
                url, "tools/call", era="modern", tool_name="get_tool", tool_args={"query": "battery level"}
            )
            assert found.returncode == 0, found.stderr
            assert "get_battery" in found.result["content"][0]["text"]
    assert listed.returncode == 0, listed.stderr
    assert {tool["name"] for tool in listed.result["tools"]} == MODE_TOOLS[path]
