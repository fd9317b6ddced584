"""When traces leave the process: the standard variables, read as the OpenTelemetry spec says,
and a real `tello-mcp serve drone` that exports on them and flushes on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry import trace

from servers import tracing
from servers.cli import main
from servers.tracing import TraceExport, export_settings
from tests.support.serve import serving, stop
from tests.tracing.conftest import Traces
from tests.tracing.support import Parent, the

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "drone"}, None),  # a name alone exports nothing
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "http://collector:4318/v1/traces"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example/custom",
            },
            "https://traces.example/custom",  # the per-signal URL is used as it is
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "http://c:4318/v1/traces",
        ),
    ],
)
def test_export_follows_the_standard_variables(environ: dict[str, str], endpoint: str | None) -> None:
    assert export_settings(environ) == (None if endpoint is None else TraceExport(endpoint))


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
            },
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "zipkin"},
            "OTEL_TRACES_EXPORTER",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://c/v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    ],
)
def test_a_value_we_cannot_honour_is_refused_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        export_settings(environ)


def test_serve_refuses_grpc_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(SystemExit) as exited:
        main(["serve", "drone", "--sim"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error: traces: OTEL_EXPORTER_OTLP_PROTOCOL='grpc'" in err


def test_without_the_variables_no_sdk_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: list[object] = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    with tracing.exporting(export_settings({})):
        pass
    assert installed == []


def test_without_the_variables_the_sdk_is_not_even_imported() -> None:
    """A fresh interpreter: the server stack and a no-export run load the API only."""
    code = (
        "import sys\n"
        "from servers import cli, http, tracing\n"
        "from servers.drone import app\n"
        "with tracing.exporting(tracing.export_settings({})):\n"
        "    pass\n"
        "from opentelemetry import trace\n"
        "print(type(trace.get_tracer_provider()).__name__, 'opentelemetry.sdk' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["ProxyTracerProvider", "False"]


@pytest.mark.anyio
@pytest.mark.usefixtures("header_only")
async def test_serve_exports_and_flushes_on_sigterm(
    traces: Traces, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`tello-mcp serve drone --sim` with the variables set: the batch waits (a schedule delay of
    ten minutes), so the spans arrive only because shutdown flushes them."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", traces.receiver.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "drone-mcp")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    parent = Parent.new()
    command = [str(BIN / "tello-mcp"), "serve", "drone", "--sim", "--port", "0"]
    async with serving(command, tmp_path / "stderr") as served:
        async with (
            httpx2.AsyncClient(headers={"traceparent": parent.traceparent}) as http,
            Client(streamable_http_client(served.url("/drone"), http_client=http)) as client,
        ):
            with anyio.fail_after(30):
                battery = await client.call_tool("get_battery", {})
            assert not battery.is_error
        assert traces.receiver.trace(parent.trace_id) == []  # still queued in the server
        await stop(served.process)
    spans = traces.receiver.trace(parent.trace_id)
    call = the(spans, "tools/call get_battery")
    assert call.parent_span_id == parent.span_id
    assert call.resource["service.name"] == "drone-mcp"
    assert call.resource["service.version"]
    command_span = the(spans, "drone.command")
    assert command_span.parent_span_id == call.span_id
    assert command_span.attributes["drone.command"] == "battery?"
    assert "application/x-protobuf" in traces.receiver.content_types
