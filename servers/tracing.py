"""Traces: our spans join the caller's trace, and leave the process over OTLP/HTTP when asked to.

Spans are made on the OpenTelemetry API everywhere (the MCP SDK's own `tools/call <name>` span
per request, ours inside it: `drone.command` per datagram exchange, `sandbox.run` per script
with an `execute_tool <name>` child per inner call, `fetch` per page). With no SDK provider
installed the API hands out non-recording spans, which cost next to nothing; that is the
default.

* Export: when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
  `exporting()` installs the OpenTelemetry SDK's provider with a batch processor and the
  OTLP/HTTP (protobuf) exporter, and shuts it down (flushing what is queued) when the process
  ends. Everything else is the SDK's own reading of the standard variables: resource
  (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`; "tello-mcp" when no service name is given),
  exporter headers, timeout, compression and certificates (`OTEL_EXPORTER_OTLP_*`), sampler
  (`OTEL_TRACES_SAMPLER`) and batching (`OTEL_BSP_*`). `OTEL_SDK_DISABLED=true` or
  `OTEL_TRACES_EXPORTER=none` turn it off; gRPC and other exporters are refused at start-up,
  naming the variable, rather than silently sending nothing.
* The caller's context: the SDK continues a trace from the request's `_meta`
  (`traceparent`/`tracestate`) by itself. `continue_http_traces` adds what it lacks: the HTTP
  request's own `traceparent` header (what a gateway sets), used when `_meta` carries none.
* No secrets: no span carries headers, tokens, tool arguments, scripts, elicitation answers,
  exception messages of fetches (URLs can hold query tokens) or full URLs; only names,
  counts, outcomes and the fetched host.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Generator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, Final, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

import structlog
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, StatusCode

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "TraceExport",
    "command_span",
    "continue_http_traces",
    "export_settings",
    "exporting",
    "fetch_redirect",
    "record_command",
    "traced_fetch",
]

_log = structlog.get_logger("tello_mcp.tracing")

DEFAULT_SERVICE_NAME: Final = "tello-mcp"
TRACES_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
_PROTOCOLS: Final = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_HTTP_PROTOBUF: Final = "http/protobuf"

_tracer = trace.get_tracer("tello_mcp")


# ---- export ----


@dataclass(frozen=True, slots=True)
class TraceExport:
    """Where spans go: the full OTLP/HTTP traces URL (`.../v1/traces`)."""

    endpoint: str


def export_settings(environ: Mapping[str, str]) -> TraceExport | None:
    """The export the standard variables in `environ` ask for, or None (nothing exported).

    Raises `ValueError` naming the variable for a value this server cannot honour.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    named = environ.get("OTEL_TRACES_EXPORTER", "otlp")
    exporters = [e.strip().lower() for e in named.split(",") if e.strip()]
    if not exporters or exporters == ["none"]:
        return None
    if exporters != ["otlp"]:
        raise ValueError(f"OTEL_TRACES_EXPORTER={named!r}: only 'otlp' (OTLP/HTTP) or 'none'")
    for name in _PROTOCOLS:
        protocol = environ.get(name, "").strip()
        if protocol:
            if protocol != _HTTP_PROTOBUF:
                raise ValueError(f"{name}={protocol!r}: traces are exported as {_HTTP_PROTOBUF!r} only")
            break
    traces = environ.get(TRACES_ENDPOINT, "").strip()
    base = environ.get(ENDPOINT, "").strip()
    if traces:
        name, endpoint = TRACES_ENDPOINT, traces
    elif base:
        name, endpoint = ENDPOINT, base.rstrip("/") + "/v1/traces"
    else:
        return None
    split = urlsplit(endpoint)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ValueError(f"{name}={endpoint!r}: an http(s) URL, e.g. http://otel-collector:4318")
    return TraceExport(endpoint)


def build_provider(export: TraceExport, *, service_name: str = DEFAULT_SERVICE_NAME) -> TracerProvider:
    """The SDK provider: resource from the environment, one batch processor, the OTLP/HTTP exporter."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from servers.version import package_version

    resource = Resource.create({SERVICE_VERSION: package_version()})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=export.endpoint)))
    return provider


@contextlib.contextmanager
def exporting(export: TraceExport | None, *, service_name: str = DEFAULT_SERVICE_NAME) -> Generator[None]:
    """For the block, export spans as `export` says (None: leave the API's no-op provider);
    on the way out, shut the provider down, which sends what is still queued."""
    if export is None:
        yield
        return
    provider = build_provider(export, service_name=service_name)
    trace.set_tracer_provider(provider)
    shown = urlsplit(export.endpoint)
    _log.info("traces_exported", to=f"{shown.scheme}://{shown.hostname}{shown.path}")  # no userinfo
    try:
        yield
    finally:
        provider.shutdown()


# ---- the caller's context over HTTP ----


class _HttpTraceContext:
    """SDK middleware, outermost: the HTTP request's `traceparent` header as the ambient context.

    The SDK's own span (next in the chain) prefers the request's `_meta` context and falls back
    to the ambient one, so `_meta` wins where a client sends both.
    """

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        headers: Mapping[str, str] | None = getattr(ctx.request, "headers", None)
        if headers is None or "traceparent" not in headers:
            return await call_next(ctx)
        carrier = {key: headers[key] for key in ("traceparent", "tracestate") if key in headers}
        parent = propagate.extract(carrier)
        if not trace.get_current_span(parent).get_span_context().is_valid:
            return await call_next(ctx)
        token = otel_context.attach(parent)
        try:
            return await call_next(ctx)
        finally:
            otel_context.detach(token)


def continue_http_traces(server: MCPServer[Any]) -> None:
    """Make `server`'s spans children of the HTTP caller's `traceparent` (idempotent)."""
    chain = server.middleware
    if not any(isinstance(m, _HttpTraceContext) for m in chain):
        chain.insert(0, _HttpTraceContext())


# ---- drone commands ----


_FREE_TEXT_VERBS: Final = frozenset({"EXT mled"})
"""Commands whose text carries a tool argument's free text (the matrix's scrolling text)."""


def command_span(verb: str, text: str) -> contextlib.AbstractContextManager[Span]:
    """The span of one drone command: its SDK text (a verb and numbers), or for a command that
    carries free text from a tool argument, the verb alone."""
    shown = verb if verb in _FREE_TEXT_VERBS else text
    return _tracer.start_as_current_span(
        "drone.command", attributes={"drone.command": shown, "drone.command.verb": verb}
    )


def record_command(span: Span, outcome: str, attempts: int, verdict: str | None) -> None:
    """What became of a command, on its span (taken in the caller's task: the outcome is
    often recorded from the link's receive loop)."""
    if not span.is_recording():
        return
    span.set_attributes(
        {
            "drone.command.outcome": outcome,
            "drone.command.attempts": attempts,
            "drone.command.retries": max(attempts - 1, 0),
        }
    )
    if verdict is not None:
        span.set_attribute("drone.command.verdict", verdict)


# ---- fetches ----


class _Fetched(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def body(self) -> bytes: ...


class _FetchSettings(Protocol):
    @property
    def robots_txt(self) -> bool: ...


class _Fetcher(Protocol):
    @property
    def settings(self) -> _FetchSettings: ...


@dataclass(slots=True)
class _FetchTrace:
    span: Span
    redirects: int = 0


_fetch: ContextVar[_FetchTrace | None] = ContextVar("tello_mcp_fetch_trace", default=None)
_F = TypeVar("_F", bound=_Fetcher)
_P = TypeVar("_P", bound=_Fetched)
_Rest = ParamSpec("_Rest")


def traced_fetch(
    method: Callable[Concatenate[_F, str, _Rest], Awaitable[_P]],
) -> Callable[Concatenate[_F, str, _Rest], Awaitable[_P]]:
    """A `fetch` span around `Fetcher.fetch`: the host, whether robots.txt was consulted,
    the redirects followed, and the rule that refused it or the status and size it got."""

    @functools.wraps(method)
    async def traced(self: _F, raw_url: str, *args: _Rest.args, **kwargs: _Rest.kwargs) -> _P:
        attributes: dict[str, str | bool] = {"fetch.robots_txt": bool(self.settings.robots_txt)}
        with contextlib.suppress(ValueError):
            split = urlsplit(raw_url.strip())
            if split.hostname:
                attributes["server.address"] = split.hostname
            if split.scheme:
                attributes["url.scheme"] = split.scheme.lower()
        with _tracer.start_as_current_span(
            "fetch", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            state = _FetchTrace(span)
            token = _fetch.set(state)
            try:
                page = await method(self, raw_url, *args, **kwargs)
            except Exception as exc:
                rule = getattr(exc, "rule", None)
                span.set_attributes(
                    {
                        "fetch.outcome": "refused" if rule is not None else "failed",
                        "fetch.redirects": state.redirects,
                        "error.type": type(exc).__name__,
                    }
                )
                if rule is not None:
                    span.set_attribute("fetch.rule", str(rule))
                span.set_status(StatusCode.ERROR, type(exc).__name__)  # the message may quote the URL
                raise
            finally:
                _fetch.reset(token)
            span.set_attributes(
                {
                    "fetch.outcome": "ok",
                    "fetch.redirects": state.redirects,
                    "http.response.status_code": page.status,
                    "fetch.bytes": len(page.body),
                }
            )
            return page

    return traced


def fetch_redirect(status: int, to_host: str) -> None:
    """One redirect followed inside the current fetch (an event on its span)."""
    state = _fetch.get()
    if state is None:
        return
    state.redirects += 1
    state.span.add_event(
        "redirect",
        {"fetch.hop": state.redirects, "http.response.status_code": status, "server.address": to_host},
    )
