"""Prometheus metrics for every process of the suite, in the text format at `/metrics`.

Why `prometheus-client` and not OpenTelemetry's Prometheus exporter: the lab's Prometheus
scrapes pods directly and its alerts are written against Prometheus names; the client library
gives exactly those names (`_total`, base units) with no translation layer, its text
exposition is the reference implementation, and `prometheus_client.parser` lets the tests
read a scrape back. One private `REGISTRY` (not the global default) so tests and several apps
in one process see only the suite's families.

Drone-link values that are a reading (status, state age, battery, height, flying, the link's
own counters, the video receiver's counters, handshake-era sessions open) are read from the
registered objects at scrape time by a collector, so their code needs no edit for them; events
(a command finished, a tool call, a refusal, a run, a fetch) are counted by one call at the one
place each happens. No label carries an unbounded value: paths are the mounted paths, tool
names the registered tools (anything else is `unknown`), command kinds the SDK verbs, limits,
rules and outcomes fixed sets; no session id, URL, argument or client ever becomes a label.

`--metrics-port` serves `metrics_app` on a listener of its own: `/metrics` and the probes only,
with no Host check, since Prometheus scrapes a pod by its IP (which the main port's Host
allow-list refuses). The table of every family in the README is `metrics_table()`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from mcp_types import CallToolResult
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servers.auth.scopes import noting_refusals
from servers.sdk import session_count

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from servers.drone.camera import VideoReceiver
    from servers.drone.link import DroneLink

__all__ = [
    "METRICS_PATH",
    "REGISTRY",
    "RequestMetrics",
    "ToolCallMetrics",
    "count_auto_land",
    "count_emergency",
    "count_reconnect",
    "count_refusal",
    "count_shed",
    "count_worker_restart",
    "families",
    "forget_link",
    "metrics_app",
    "metrics_endpoint",
    "metrics_table",
    "observe_command",
    "observe_fetch",
    "observe_run",
    "register_link",
    "register_sessions",
    "register_video",
    "set_hold",
]

METRICS_PATH: Final = "/metrics"
PREFIX: Final = "tello_mcp_"
REGISTRY: Final = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS: Final = Counter(
    f"{PREFIX}http_requests",
    "HTTP requests by mounted path, method and outcome.",
    ("path", "method", "outcome"),
    registry=REGISTRY,
)
HTTP_DURATION: Final = Histogram(
    f"{PREFIX}http_request_duration_seconds",
    "Time from request start to the end of the response, by mounted path.",
    ("path",),
    registry=REGISTRY,
)
SHED: Final = Counter(
    f"{PREFIX}http_requests_shed",
    "Requests refused by admission control (overload), by mounted path.",
    ("path",),
    registry=REGISTRY,
)
COMMAND_RTT: Final = Histogram(
    f"{PREFIX}drone_command_duration_seconds",
    "Round trip of a drone command (send to reply, retries included), by command kind.",
    ("drone", "command"),
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
    registry=REGISTRY,
)
COMMAND_OUTCOMES: Final = Counter(
    f"{PREFIX}drone_commands",
    "Drone commands by kind and outcome (ok, rejected, timeout, outcome_unknown, preempted, not_connected).",
    ("drone", "command", "outcome"),
    registry=REGISTRY,
)
VERDICTS: Final = Counter(
    f"{PREFIX}drone_unanswered_verdicts",
    "Verdicts on flight actions left without a reply (executed, did_not_start, unknown).",
    ("drone", "verdict"),
    registry=REGISTRY,
)
HOLD: Final = Gauge(
    f"{PREFIX}drone_operator_hold",
    "1 while the operator holds the drone (agents' flight actions refused), else 0.",
    ("drone",),
    registry=REGISTRY,
)

RECONNECTS: Final = Counter(
    f"{PREFIX}drone_link_reconnects",
    "Times the link heard the drone again after it had been disconnected.",
    ("drone",),
    registry=REGISTRY,
)
TOOL_CALLS: Final = Counter(
    f"{PREFIX}tool_calls",
    "MCP tool calls by mounted path, tool and outcome "
    "(ok, tool_error, refused_auth, rate_limited, protocol_error, cancelled).",
    ("path", "tool", "outcome"),
    registry=REGISTRY,
)
TOOL_DURATION: Final = Histogram(
    f"{PREFIX}tool_call_duration_seconds",
    "Time an MCP tool call took in the server, by mounted path and tool.",
    ("path", "tool"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
STREAMS: Final = Gauge(
    f"{PREFIX}http_streams_open",
    "Event-stream (SSE) responses open on the MCP paths, by mounted path and method "
    "(GET: a session's standalone stream; POST: a call's or a subscription's stream).",
    ("path", "method"),
    registry=REGISTRY,
)
SAFETY_REFUSALS: Final = Counter(
    f"{PREFIX}safety_refusals",
    "Flight actions refused before anything was sent, by the envelope limit or rule that refused them.",
    ("drone", "limit"),
    registry=REGISTRY,
)
EMERGENCIES: Final = Counter(
    f"{PREFIX}safety_emergencies",
    "Emergency motor stops requested (from a tool or the flight deck).",
    ("drone",),
    registry=REGISTRY,
)
AUTO_LANDS: Final = Counter(
    f"{PREFIX}safety_auto_lands",
    "Landings the server started by itself, by reason (critical_battery, shutdown).",
    ("drone", "reason"),
    registry=REGISTRY,
)
SANDBOX_RUNS: Final = Counter(
    f"{PREFIX}sandbox_runs",
    "run_code runs by outcome (ok, error, limit).",
    ("outcome",),
    registry=REGISTRY,
)
SANDBOX_LIMIT_HITS: Final = Counter(
    f"{PREFIX}sandbox_limit_hits",
    "run_code runs ended by a limit, by limit (cpu, tool_wait, memory, stack, tool_calls, ...).",
    ("limit",),
    registry=REGISTRY,
)
SANDBOX_RESTARTS: Final = Counter(
    f"{PREFIX}sandbox_worker_restarts",
    "Sandbox worker processes replaced after a run that did not end in step (killed, crashed, silent).",
    registry=REGISTRY,
)
SANDBOX_DURATION: Final = Histogram(
    f"{PREFIX}sandbox_run_duration_seconds",
    "Wall time of a run_code run, tool calls included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
FETCHES: Final = Counter(
    f"{PREFIX}fetches",
    "Fetches by outcome (ok, refused, failed) and the safety rule that refused them (none otherwise).",
    ("outcome", "rule"),
    registry=REGISTRY,
)
FETCH_BYTES: Final = Counter(
    f"{PREFIX}fetch_response_bytes",
    "Body bytes of the pages fetched (decoded, as returned).",
    registry=REGISTRY,
)

SANDBOX_OUTCOMES: Final = ("ok", "error", "limit")
FETCH_OUTCOMES: Final = ("ok", "refused", "failed")
_STATUS: Final = ("connected", "stale", "disconnected")
_LINK_COUNTERS: Final = {
    "sent": "Commands sent on the wire (each retry counts).",
    "retries": "Command retries.",
    "timeouts": "Commands that got no reply in time.",
    "keepalives": "Keepalives sent.",
    "replies": "Replies received.",
    "state_packets": "State packets received and parsed.",
    "bad_state": "State datagrams that did not parse.",
}
_VIDEO_COUNTERS: Final = {
    "frames_decoded": ("video_frames_decoded", "Video frames the decoder produced."),
    "frames_discarded": (
        "video_frames_dropped",
        "Decoded video frames not published (corrupt, or waiting for a keyframe after loss).",
    ),
    "decode_errors": ("video_decode_errors", "Video access units the decoder could not decode."),
    "bytes": ("video_received_bytes", "Video bytes received."),
}
_links: weakref.WeakSet[DroneLink] = weakref.WeakSet()
_videos: weakref.WeakKeyDictionary[VideoReceiver, str] = weakref.WeakKeyDictionary()
_sessions: weakref.WeakKeyDictionary[StreamableHTTPSessionManager, str] = weakref.WeakKeyDictionary()


def register_link(link: DroneLink) -> None:
    """Read this link at every scrape (held weakly: a closed runtime's link drops out)."""
    _links.add(link)


def forget_link(link: DroneLink) -> None:
    """Stop reading this link (its runtime is stopping): a stopped link that is not collected
    yet must not shadow a new one for the same drone, whose samples carry the same labels."""
    _links.discard(link)


def register_video(drone: str, receiver: VideoReceiver) -> None:
    """Read this video receiver's counters at every scrape, labelled with its drone (held weakly)."""
    _videos[receiver] = drone


def register_sessions(path: str, manager: StreamableHTTPSessionManager) -> None:
    """Count the handshake-era sessions this mount's session manager holds, at every scrape."""
    _sessions[manager] = path


def set_hold(drone: str, held: bool) -> None:
    """The operator's hold: set by the hold itself when an operator sets or clears it."""
    HOLD.labels(drone=drone).set(1 if held else 0)


def count_reconnect(drone: str) -> None:
    RECONNECTS.labels(drone=drone).inc()


def count_refusal(drone: str, limit: str) -> None:
    """A flight action refused with nothing sent; `limit` is a fixed name (`SafetyViolation.limit`)."""
    SAFETY_REFUSALS.labels(drone=drone, limit=limit).inc()


def count_emergency(drone: str) -> None:
    EMERGENCIES.labels(drone=drone).inc()


def count_auto_land(drone: str, reason: str) -> None:
    AUTO_LANDS.labels(drone=drone, reason=reason).inc()


def observe_run(error: str | None, limit: str | None, wall_s: float) -> None:
    """One finished run_code run (`limit`: the key of the limit that ended it, if one did)."""
    outcome = "ok" if error is None else "limit" if limit is not None else "error"
    SANDBOX_RUNS.labels(outcome=outcome).inc()
    if limit is not None:
        SANDBOX_LIMIT_HITS.labels(limit=limit).inc()
    SANDBOX_DURATION.observe(wall_s)


def count_worker_restart() -> None:
    SANDBOX_RESTARTS.inc()


def observe_fetch(outcome: str, rule: str | None = None, body_bytes: int = 0) -> None:
    """One finished fetch: `outcome` one of `FETCH_OUTCOMES`, `rule` the refusing rule's name."""
    FETCHES.labels(outcome=outcome, rule=rule or "none").inc()
    FETCH_BYTES.inc(body_bytes)


def count_shed(path: str) -> None:
    """One request shed by admission control on `path` (a mounted path, never a raw URL)."""
    SHED.labels(path=path).inc()


def observe_command(drone: str, verb: str, outcome: str, latency_s: float, verdict: str | None) -> None:
    """One finished drone command, from the link's flight-log record."""
    COMMAND_OUTCOMES.labels(drone=drone, command=verb, outcome=outcome).inc()
    if outcome == "ok":
        COMMAND_RTT.labels(drone=drone, command=verb).observe(latency_s)
    if outcome == "outcome_unknown":
        VERDICTS.labels(drone=drone, verdict=verdict or "unknown").inc()


class _LinkCollector(Collector):
    """Readings of every registered link, taken when Prometheus scrapes."""

    def collect(self) -> Iterable[Any]:
        status = GaugeMetricFamily(
            f"{PREFIX}drone_link_status", "1 for the link's current status.", labels=("drone", "status")
        )
        age = GaugeMetricFamily(
            f"{PREFIX}drone_state_age_seconds", "Age of the newest state packet.", labels=("drone",)
        )
        battery = GaugeMetricFamily(
            f"{PREFIX}drone_battery_ratio", "Battery charge from the state stream (0-1).", labels=("drone",)
        )
        height = GaugeMetricFamily(
            f"{PREFIX}drone_height_meters", "Height from the state stream.", labels=("drone",)
        )
        flying = GaugeMetricFamily(
            f"{PREFIX}drone_flying", "1 while the link believes the drone is flying.", labels=("drone",)
        )
        counters = {
            name: CounterMetricFamily(f"{PREFIX}drone_link_{name}", text, labels=("drone",))
            for name, text in _LINK_COUNTERS.items()
        }
        video = {
            key: CounterMetricFamily(f"{PREFIX}drone_{name}", text, labels=("drone",))
            for key, (name, text) in _VIDEO_COUNTERS.items()
        }
        sessions = GaugeMetricFamily(
            f"{PREFIX}mcp_sessions_open",
            "Handshake-era MCP sessions open, by mounted path (the 2026-07-28 era has none).",
            labels=("path",),
        )
        for receiver, drone in list(_videos.items()):
            if not receiver.running:  # its runtime has stopped (it may not be collected yet)
                continue
            for key, family in video.items():
                family.add_metric([drone], float(getattr(receiver.stats, key)))
        by_path: dict[str, int] = {}
        for manager, path in list(_sessions.items()):
            by_path[path] = by_path.get(path, 0) + session_count(manager)
        for path, count in sorted(by_path.items()):
            sessions.add_metric([path], count)
        for link in list(_links):
            drone = link.drone_address
            reading = link.reading()
            for value in _STATUS:
                status.add_metric([drone, value], 1.0 if reading.status.value == value else 0.0)
            if reading.state_age_s is not None:
                age.add_metric([drone], reading.state_age_s)
            if reading.telemetry is not None:
                battery.add_metric([drone], reading.telemetry.battery_pct / 100)
                height.add_metric([drone], reading.telemetry.height_cm / 100)
            flying.add_metric([drone], 1.0 if link.is_flying() else 0.0)
            values = link.counters
            for name, family in counters.items():
                family.add_metric([drone], values[name])
        yield from (status, age, battery, height, flying, *counters.values(), *video.values(), sessions)


REGISTRY.register(_LinkCollector())


def _outcome(status: int) -> str:
    if status in (401, 403):
        return "refused_auth"
    if status == 429:
        return "rate_limited"
    if status == 503:
        return "shed"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "protocol_error"
    return "ok"


class RequestMetrics:
    """ASGI middleware: counts and times requests on the mounted MCP paths (other paths are
    not labelled by their URL, so a scanner cannot grow the label set)."""

    def __init__(self, app: ASGIApp, *, mounts: Iterable[str]) -> None:
        self.app = app
        self.mounts = frozenset(mounts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw: str = scope.get("path", "")
        path = raw.rstrip("/") or "/"
        label = path if path in self.mounts else "other"
        start = time.perf_counter()
        code = 500
        method: str = scope.get("method", "GET")
        method = method if method in ("GET", "POST", "DELETE") else "other"
        stream: Gauge | None = None

        async def sending(message: Message) -> None:
            nonlocal code, stream
            if message["type"] == "http.response.start":
                code = int(message["status"])
                if label != "other" and _is_event_stream(message):
                    stream = STREAMS.labels(path=label, method=method)
                    stream.inc()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if stream is not None:
                stream.dec()
            HTTP_REQUESTS.labels(path=label, method=method, outcome=_outcome(code)).inc()
            HTTP_DURATION.labels(path=label).observe(time.perf_counter() - start)


def _is_event_stream(start: Message) -> bool:
    headers: list[tuple[bytes, bytes]] = start.get("headers", [])
    return any(k.lower() == b"content-type" and v.startswith(b"text/event-stream") for k, v in headers)


class ToolCallMetrics:
    """SDK (context-tier) middleware counting and timing `tools/call` by tool and outcome.

    Outcomes: `ok`, `tool_error` (a result with `isError`, the model-visible failure),
    `refused_auth` (the token lacks the tool's scope), `rate_limited` (the client's flight-action
    limit), `protocol_error` (a JSON-RPC error: unknown tool, bad arguments, a crash), `cancelled`.
    A name that is not one of the server's tools is counted as `unknown`, so a client cannot
    grow the label set. `build_app` attaches one to every mounted server."""

    def __init__(self, path: str, known: Callable[[str], bool]) -> None:
        self.path = path
        self._known = known

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        name: object = ctx.params.get("name") if ctx.params else None
        tool = name if isinstance(name, str) and self._known(name) else "unknown"
        start = time.perf_counter()
        outcome = "cancelled"
        try:
            with noting_refusals() as refused:
                result = await call_next(ctx)
        except Exception:
            outcome = "protocol_error"
            raise
        else:
            outcome = "tool_error" if _is_tool_error(result) else "ok"
            if outcome == "tool_error":
                outcome = refused.get("outcome", outcome)
            return result
        finally:
            TOOL_CALLS.labels(path=self.path, tool=tool, outcome=outcome).inc()
            TOOL_DURATION.labels(path=self.path, tool=tool).observe(time.perf_counter() - start)


def _is_tool_error(result: object) -> bool:
    """As the SDK's own OpenTelemetry middleware judges it: the shapes that reach the wire as
    an error result."""
    if isinstance(result, CallToolResult):
        return result.is_error is True
    return isinstance(result, dict) and result.get("isError") is True  # pyright: ignore[reportUnknownMemberType]


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type="text/plain; version=0.0.4; charset=utf-8")


def metrics_app(probes: Iterable[BaseRoute] = ()) -> Starlette:
    """The `--metrics-port` listener: `/metrics` and `probes` (the main app's `/healthz` and
    `/readyz`), nothing else, and no Host or Origin check: Prometheus and the kubelet send the
    pod IP as Host. It carries no MCP and no admin route, so there is nothing to rebind to."""
    return Starlette(routes=[Route(METRICS_PATH, metrics_endpoint, methods=["GET"]), *probes])


def families() -> list[tuple[str, str, tuple[str, ...], str]]:
    """(name, type, labels, help) of every family the suite defines, for the README table.

    Read from the registry with every collector-backed family present even when nothing is
    registered with it yet (the collector's families are described by `describe`)."""
    out: list[tuple[str, str, tuple[str, ...], str]] = []
    for family in REGISTRY.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        out.append((name, family.type, _labels_of(family), family.documentation))
    return sorted(out)


def _labels_of(family: Any) -> tuple[str, ...]:
    """A family's label names: a collector's families carry them, the client's own metric
    objects (`Counter`, ...) hold them on the object registered under the family's name."""
    names: object = getattr(family, "_labelnames", None)
    if names is None:
        owner = REGISTRY._names_to_collectors.get(family.name)  # pyright: ignore[reportPrivateUsage]
        names = getattr(owner, "_labelnames", ())
    return tuple(str(n) for n in names) if isinstance(names, tuple) else ()  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]


def metrics_table() -> str:
    """Every metric family as a Markdown table (the README's)."""
    rows = ["| metric | type | labels | what |", "|---|---|---|---|"]
    for name, kind, labels, text in families():
        shown = ", ".join(f"`{label}`" for label in labels) or "(none)"
        rows.append(f"| `{name}` | {kind} | {shown} | {text} |")
    return "\n".join(rows) + "\n"
