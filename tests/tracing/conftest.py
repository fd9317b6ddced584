"""One tracer provider for the test process, built by `servers.tracing` and exporting over
OTLP/HTTP to an in-process receiver (`receiver.py`).

The OpenTelemetry API takes a global provider once per process, so it is installed once, for
the session; each test clears the receiver, makes its calls, and reads what arrived after
`force_flush()` (the batch processor's queue exported and answered: no waiting on a timer).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp.shared import jsonrpc_dispatcher
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from servers.tracing import build_provider, export_settings  # noqa: E402
from tests.tracing.receiver import Received, Receiver, receiving  # noqa: E402

SERVICE = "tello-mcp-under-test"


@dataclass
class Traces:
    provider: TracerProvider
    receiver: Receiver

    def collect(self) -> list[Received]:
        """Every span ended so far, as the receiver decoded it."""
        assert self.provider.force_flush(20_000), "the exporter did not deliver within 20 s"
        return self.receiver.all()

    def trace(self, trace_id: str) -> list[Received]:
        self.collect()
        return self.receiver.trace(trace_id)


@pytest.fixture(scope="session")
def _exporting() -> Generator[Traces]:
    with receiving() as receiver:
        export = export_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
        assert export is not None
        assert export.endpoint == receiver.url
        if "OTEL_SERVICE_NAME" in os.environ or "OTEL_RESOURCE_ATTRIBUTES" in os.environ:
            pytest.fail("the tracing tests need OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES unset")
        provider = build_provider(export, service_name=SERVICE)
        trace.set_tracer_provider(provider)
        assert trace.get_tracer_provider() is provider, "another provider was installed first"
        try:
            yield Traces(provider, receiver)
        finally:
            provider.shutdown()


@pytest.fixture
def header_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client puts no trace context in `_meta`: like a caller behind a gateway, only the
    HTTP header carries it."""

    def no_meta(meta: dict[str, Any]) -> None:
        return None

    monkeypatch.setattr(jsonrpc_dispatcher, "inject_trace_context", no_meta)


@pytest.fixture
def traces(_exporting: Traces) -> Traces:
    _exporting.collect()
    _exporting.receiver.clear()
    return _exporting
