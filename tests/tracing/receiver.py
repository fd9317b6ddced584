"""An OTLP/HTTP trace receiver for tests: a Starlette app on 127.0.0.1, in its own thread.

It decodes each `ExportTraceServiceRequest` (protobuf, optionally gzip) with
`opentelemetry-proto`, as a collector would, and keeps every span with its resource. Its own
thread and event loop: the SDK exporter posts from the batch processor's thread, and a test's
`force_flush()` blocks the caller until the receiver has answered.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TRACES_PATH = "/v1/traces"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass(frozen=True)
class Received:
    """One span as the collector got it (ids as hex, like a `traceparent`)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status_code: int
    status_message: str
    resource: dict[str, Any]
    scope: str


def _span(span: Span, resource: dict[str, Any], scope: str) -> Received:
    return Received(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        kind=span.kind,
        attributes=_attributes(span.attributes),
        events=[(e.name, _attributes(e.attributes)) for e in span.events],
        status_code=span.status.code,
        status_message=span.status.message,
        resource=resource,
        scope=scope,
    )


@dataclass
class Receiver:
    url: str = ""
    spans: list[Received] = field(default_factory=list[Received])
    requests: int = 0
    content_types: set[str] = field(default_factory=set[str])
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        """The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` names it."""
        return self.url.removesuffix(TRACES_PATH)

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()

    def trace(self, trace_id: str) -> list[Received]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.spans)

    async def export(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        received = [
            _span(span, _attributes(resource_spans.resource.attributes), scope_spans.scope.name)
            for resource_spans in message.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._lock:
            self.requests += 1
            self.content_types.add(request.headers.get("content-type", ""))
            self.spans.extend(received)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")


class _Server(uvicorn.Server):
    """uvicorn in a thread: no signal handlers, and an event once it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


@contextlib.contextmanager
def receiving() -> Generator[Receiver]:
    """A receiver listening on a free port for the block."""
    receiver = Receiver()
    app = Starlette(routes=[Route(TRACES_PATH, receiver.export, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    receiver.url = f"http://127.0.0.1:{sock.getsockname()[1]}{TRACES_PATH}"
    server = _Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.listening.wait(30), "the OTLP receiver did not start within 30 s"
        yield receiver
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def children(spans: Iterable[Received], parent: Received) -> list[Received]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def named(spans: Iterable[Received], name: str) -> list[Received]:
    return [s for s in spans if s.name == name]


def tree(spans: Iterable[Received], root_parent: str) -> list[Any]:
    """The span names under `root_parent` (a span id) as nested [name, [children...]] lists,
    children in name order, for comparing a trace's shape in one assertion."""
    by_parent: dict[str, list[Received]] = {}
    for span in spans:
        by_parent.setdefault(span.parent_span_id, []).append(span)

    def build(parent: str) -> list[Any]:
        return sorted(([s.name, build(s.span_id)] for s in by_parent.get(parent, [])), key=str)

    return build(root_parent)
