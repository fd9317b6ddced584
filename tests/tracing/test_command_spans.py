"""A drone command's span says what became of it: retries, outcome, and for an unanswered
flight action the verdict the telemetry gives. In memory, on virtual time, with faults the
simulator injects; the spans still go out through the OTLP/HTTP receiver."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from tests.drone_server.harness import flying, text_of
from tests.tracing.conftest import Traces
from tests.tracing.receiver import Received, children

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

ERROR: int = 2  # opentelemetry.proto Status.STATUS_CODE_ERROR


def under_tool(spans: list[Received], tool: str) -> list[Received]:
    [call] = [s for s in spans if s.name == f"tools/call {tool}"]
    return children(spans, call)


async def test_a_lost_read_is_retried_on_one_span(traces: Traces) -> None:
    async with flying() as drone, Client(drone.server) as client:
        drone.sim.faults.lose_command = "height?"
        with anyio.fail_after(30):
            result = await client.call_tool("get_sensor", {"sensor": "height"})
        assert not result.is_error, text_of(result)
        sent = [r.data.decode() for r in drone.truth.received if r.data.startswith(b"height?")]
    assert sent == ["height?", "height?"]  # ground truth: two copies went out
    [command] = under_tool(traces.collect(), "get_sensor")
    assert command.name == "drone.command"
    assert command.attributes == {
        "drone.command": "height?",
        "drone.command.verb": "height?",
        "drone.command.outcome": "ok",
        "drone.command.attempts": 2,
        "drone.command.retries": 1,
    }


async def test_an_unanswered_move_carries_its_verdict(traces: Traces) -> None:
    async with flying() as drone, Client(drone.server) as client:
        with anyio.fail_after(30):
            assert not (await client.call_tool("takeoff", {})).is_error
            drone.sim.faults.lose_reply = "forward"
            moved = await client.call_tool("move", {"direction": "forward", "distance_cm": 50})
        assert moved.is_error
        executed = drone.truth.executed_texts()
    assert "forward 50" in executed  # ground truth: it flew, only the reply was lost
    [command] = [
        s for s in under_tool(traces.collect(), "move") if s.attributes["drone.command.verb"] == "forward"
    ]
    assert command.attributes["drone.command.outcome"] == "outcome_unknown"
    assert command.attributes["drone.command.verdict"] == "executed"
    assert command.attributes["drone.command.retries"] == 0  # a flight action is never re-sent
    assert command.status_code == ERROR
