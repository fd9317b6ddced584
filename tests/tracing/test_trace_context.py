"""The caller's trace continues into ours, over real HTTP, and the tree is what the call did.

A real MCP client calls the drone app (`tests/drone_server/harness.serving`: uvicorn on
127.0.0.1, the embedded simulator over UDP); the spans arrive at the in-process OTLP/HTTP
receiver. "What the call did" is the simulator's ground truth: the datagrams it received.

Two ways a caller's context arrives: the HTTP `traceparent` header (a gateway sets it; tested
with a client whose `_meta` carries no context) and the request's `_meta` (an instrumented MCP
client injects it from its current span; the SDK reads it, and it wins over the header).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Final

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from servers.drone.core.protocol import KEEPALIVE_READS
from tests.drone_server.harness import KEEPALIVE, Served, mark, sent_since, serving, text_of
from tests.support.eras import ERAS
from tests.tracing.conftest import SERVICE, Traces
from tests.tracing.receiver import children, named, tree
from tests.tracing.support import Parent, current, the

pytestmark = pytest.mark.anyio

SERVER_KIND: Final = 2  # opentelemetry.proto SpanKind
CLIENT_KIND: Final = 3


@contextlib.asynccontextmanager
async def client(served: Served, path: str, era: str, headers: dict[str, str]) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(f"{served.base}{path}", http_client=http), mode=era) as connected,
    ):
        yield connected


LINK_OWN: Final = frozenset({KEEPALIVE, *(c.text for c in KEEPALIVE_READS)})
"""What the link sends by itself, in nobody's call: the keepalive and its side reads."""


def commands_sent(served: Served, since: int) -> list[str]:
    """The callers' commands the simulator received since `since` (a retried read once)."""
    return sorted({text for text in sent_since(served.truth, since) if text not in LINK_OWN})


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.usefixtures("header_only")
async def test_the_traceparent_header_continues_through_a_takeoff(era: str, traces: Traces) -> None:
    parent = Parent.new()
    async with serving() as served, client(served, "/drone", era, {"traceparent": parent.traceparent}) as c:
        before = mark(served.truth)
        with anyio.fail_after(30):
            took_off = await c.call_tool("takeoff", {})
        assert not took_off.is_error, text_of(took_off)
        sent = commands_sent(served, before)
        spans = traces.trace(parent.trace_id)
    call = the(spans, "tools/call takeoff")
    assert call.parent_span_id == parent.span_id
    assert call.kind == SERVER_KIND
    assert call.resource["service.name"] == SERVICE
    assert call.attributes["gen_ai.tool.name"] == "takeoff"
    commands = children(spans, call)
    assert {s.name for s in commands} == {"drone.command"}
    assert sorted(s.attributes["drone.command"] for s in commands) == sent
    assert "takeoff" in sent
    [takeoff] = [s for s in commands if s.attributes["drone.command.verb"] == "takeoff"]
    assert takeoff.attributes["drone.command.outcome"] == "ok"
    assert takeoff.attributes["drone.command.attempts"] == 1
    assert takeoff.attributes["drone.command.retries"] == 0
    assert "drone.command.verdict" not in takeoff.attributes


@pytest.mark.parametrize("era", ERAS)
async def test_the_callers_meta_context_continues(era: str, traces: Traces) -> None:
    parent = Parent.new()
    async with serving() as served, client(served, "/drone", era, {}) as c:
        before = mark(served.truth)
        with current(parent), anyio.fail_after(30):
            battery = await c.call_tool("get_battery", {})
        assert not battery.is_error, text_of(battery)
        sent = commands_sent(served, before)
        spans = traces.trace(parent.trace_id)
    send = the(spans, "MCP send tools/call get_battery")  # the client's own span, from `current`
    assert (send.parent_span_id, send.kind) == (parent.span_id, CLIENT_KIND)
    assert sent == ["battery?"]
    assert tree(spans, send.span_id) == [["tools/call get_battery", [["drone.command", []]]]]
    command = the(spans, "drone.command")
    assert command.attributes["drone.command"] == "battery?"
    assert command.attributes["drone.command.outcome"] == "ok"


async def test_meta_wins_over_the_header(traces: Traces) -> None:
    """Both present (an instrumented agent behind a gateway that set its own header): the MCP
    caller's `_meta` is the parent, as the SDK decides."""
    header, meta = Parent.new(), Parent.new()
    via_header = {"traceparent": header.traceparent}
    async with serving() as served, client(served, "/drone", "2026-07-28", via_header) as c:
        with current(meta), anyio.fail_after(30):
            assert not (await c.call_tool("get_battery", {})).is_error
        by_meta = traces.trace(meta.trace_id)
        by_header = traces.trace(header.trace_id)
    send = the(by_meta, "MCP send tools/call get_battery")
    assert the(by_meta, "tools/call get_battery").parent_span_id == send.span_id
    assert named(by_header, "tools/call get_battery") == []


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.usefixtures("header_only")
async def test_a_scripts_two_calls_are_children_of_its_sandbox_run(era: str, traces: Traces) -> None:
    parent = Parent.new()
    script = "await get_battery({}); await get_sensor({sensor: 'height'}); 'done'"
    via_header = {"traceparent": parent.traceparent}
    async with serving() as served, client(served, "/drone-code", era, via_header) as c:
        before = mark(served.truth)
        with anyio.fail_after(60):
            ran = await c.call_tool("run_code", {"code": script})
        assert not ran.is_error, text_of(ran)
        sent = commands_sent(served, before)
        spans = traces.trace(parent.trace_id)
    assert sent == ["battery?", "height?"]
    call = the(spans, "tools/call run_code")
    assert call.parent_span_id == parent.span_id
    assert tree(spans, call.span_id) == [
        [
            "sandbox.run",
            [
                ["execute_tool get_battery", [["drone.command", []]]],
                ["execute_tool get_sensor", [["drone.command", []]]],
            ],
        ]
    ]
    run = the(spans, "sandbox.run")
    assert run.attributes["sandbox.outcome"] == "ok"
    assert run.attributes["sandbox.tool_calls"] == 2
    for name, command in (("get_battery", "battery?"), ("get_sensor", "height?")):
        inner = the(spans, f"execute_tool {name}")
        assert inner.attributes["gen_ai.tool.name"] == name
        [sent_command] = children(spans, inner)
        assert sent_command.attributes["drone.command"] == command
