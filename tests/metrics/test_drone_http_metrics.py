"""MCP-level families over HTTP, through a real MCP client against the simulator, read back
from `/metrics` with Prometheus's parser: tool calls by tool and outcome, sessions and
streams open, safety refusals by limit, emergencies, the operator's hold. Ground truth is
the simulator's (what it executed) and the client's own account of what it called."""

from __future__ import annotations

import anyio
import httpx
import pytest
from mcp import Client

from servers.drone.app import STANDARD_PATH
from tests.drone_server.harness import Served, serving, text_of
from tests.metrics.scrape import Scrape, scrape
from tests.support.eras import ACCEPT, LEGACY_INIT

pytestmark = pytest.mark.anyio

CALLS = "tello_mcp_tool_calls_total"
REFUSALS = "tello_mcp_safety_refusals_total"


def _calls(s: Scrape, tool: str, outcome: str) -> float:
    return s.value(CALLS, path=STANDARD_PATH, tool=tool, outcome=outcome)


async def test_tool_calls_are_counted_by_tool_and_outcome_and_unknown_names_stay_unknown(
    served: Served,
) -> None:
    before = await scrape(served.base)
    async with Client(served.url, mode="legacy") as client:
        with anyio.fail_after(20):
            for _ in range(3):
                assert not (await client.call_tool("get_state", {})).is_error
            landed_move = await client.call_tool("move", {"direction": "forward", "distance_cm": 50})
            assert landed_move.is_error, text_of(landed_move)
            unknown = await client.call_tool("drop_payload_8c1f", {})
            assert unknown.is_error
    after = await scrape(served.base)
    assert _calls(after, "get_state", "ok") - _calls(before, "get_state", "ok") == 3
    assert _calls(after, "move", "tool_error") - _calls(before, "move", "tool_error") == 1
    assert _calls(after, "unknown", "tool_error") - _calls(before, "unknown", "tool_error") == 1
    assert "drop_payload_8c1f" not in after.text  # a client cannot mint label values
    duration = "tello_mcp_tool_call_duration_seconds_count"
    assert (
        after.value(duration, path=STANDARD_PATH, tool="get_state")
        - before.value(duration, path=STANDARD_PATH, tool="get_state")
        == 3
    )
    assert "move" not in served.truth.executed_texts()  # refused, nothing sent


async def test_sessions_and_streams_open_follow_a_handshake_era_client(served: Served) -> None:
    sessions, streams = "tello_mcp_mcp_sessions_open", "tello_mcp_http_streams_open"
    before = await scrape(served.base)
    assert before.value(sessions, path=STANDARD_PATH) == 0
    async with Client(served.url, mode="legacy") as client:
        assert not (await client.call_tool("get_state", {})).is_error
        with anyio.fail_after(10):
            # The client opens its GET stream in the background: scrape until it is counted.
            while (during := await scrape(served.base)).value(streams, path=STANDARD_PATH, method="GET") < 1:
                pass
        assert during.value(sessions, path=STANDARD_PATH) == 1
        assert during.value(streams, path=STANDARD_PATH, method="GET") == 1
    with anyio.fail_after(10):
        while (after := await scrape(served.base)).value(streams, path=STANDARD_PATH, method="GET") > 0:
            pass
    assert after.value(sessions, path=STANDARD_PATH) == 0  # the client's DELETE ended it
    for labels in after.labels_of("tello_mcp_mcp_sessions_open"):
        assert set(labels) == {"path"}  # never a session id


async def test_a_2026_era_client_opens_no_session(served: Served) -> None:
    async with Client(served.url, mode="2026-07-28") as client:
        assert not (await client.call_tool("get_state", {})).is_error
        during = await scrape(served.base)
    assert during.value("tello_mcp_mcp_sessions_open", path=STANDARD_PATH) == 0


async def test_safety_refusals_by_limit_emergencies_and_the_hold() -> None:
    async with serving(land_first=False) as served, Client(served.url) as client:
        drone = served.runtime.link.drone_address
        before = await scrape(served.base)
        with anyio.fail_after(30):
            not_flying = await client.call_tool("move", {"direction": "up", "distance_cm": 50})
            assert "not flying" in text_of(not_flying)
            assert not (await client.call_tool("takeoff", {})).is_error
            too_high = await client.call_tool("move", {"direction": "up", "distance_cm": 400})
            assert "max_height_cm" in text_of(too_high), text_of(too_high)
            served.runtime.hold.set("operator-ana", served.runtime.link)  # what the deck's hold does
            held_scrape = await scrape(served.base)
            held = await client.call_tool("rotate", {"direction": "clockwise", "degrees": 90})
            assert "on hold" in text_of(held)
            served.runtime.hold.release("operator-ana", served.runtime.link)
            released_scrape = await scrape(served.base)
            stopped = await client.call_tool("emergency", {"confirm": True})
            assert not stopped.is_error, text_of(stopped)
        after = await scrape(served.base)
        executed = served.truth.executed_texts()
    for limit in ("not_flying", "max_height_cm", "operator_hold"):
        labels = {"drone": drone, "limit": limit}
        counted = after.value(REFUSALS, **labels) - before.value(REFUSALS, **labels)
        assert counted == 1, limit
    assert held_scrape.value("tello_mcp_drone_operator_hold", drone=drone) == 1
    assert released_scrape.value("tello_mcp_drone_operator_hold", drone=drone) == 0
    emergencies = "tello_mcp_safety_emergencies_total"
    assert after.value(emergencies, drone=drone) - before.value(emergencies, drone=drone) == 1
    assert "emergency" in executed
    assert not any(text.startswith(("up ", "cw ")) for text in executed)  # the refusals sent nothing


async def test_a_call_with_malformed_params_is_a_protocol_error(served: Served) -> None:
    """Raw JSON-RPC (a client would not send it): `arguments` that is not an object."""
    before = await scrape(served.base)
    async with httpx.AsyncClient(timeout=10, headers=ACCEPT) as http:
        init = await http.post(served.url, json=LEGACY_INIT)
        assert init.status_code == 200, init.text
        session = {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await http.post(served.url, json=done, headers=session)).status_code == 202
        bad = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "get_state", "arguments": 7},
        }
        answer = await http.post(served.url, json=bad, headers=session)
        assert '"error"' in answer.text, answer.text
        await http.delete(served.url, headers=session)
    after = await scrape(served.base)
    assert _calls(after, "get_state", "protocol_error") - _calls(before, "get_state", "protocol_error") == 1
    assert _calls(after, "get_state", "ok") == _calls(before, "get_state", "ok")
