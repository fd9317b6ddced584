"""Spans: the SDK's own around each tool call, ours around each drone command, in one trace.

Only the API is a runtime dependency; the operator installs an SDK to export. Here the test
installs one with an in-memory exporter.
"""

from __future__ import annotations

import anyio
import pytest
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from servers.drone.server import build_drone_server
from tests.support.virtual import virtual_runtime

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):  # the global provider can be set once per process
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_drone_commands_are_spans_inside_the_tool_call_span(spans: InMemorySpanExporter) -> None:
    spans.clear()
    async with virtual_runtime() as runtime:
        server, _ = build_drone_server(runtime)
        async with Client(server) as client:
            with anyio.fail_after(10):
                while not runtime.connected():
                    await runtime.link.wait_changed()
                assert not (await client.call_tool("get_sensor", {"sensor": "height"})).is_error
    finished = spans.get_finished_spans()
    ours = [s for s in finished if s.name == "drone.command" and s.attributes == {"drone.command": "height?"}]
    assert len(ours) == 1
    [command] = ours
    tool_calls = [s for s in finished if (s.attributes or {}).get("gen_ai.tool.name") == "get_sensor"]
    assert tool_calls, [s.name for s in finished]
    assert command.context is not None
    assert any(t.context is not None and t.context.trace_id == command.context.trace_id for t in tool_calls)
