"""Prometheus metrics for every process of the suite, in the text format at `/metrics`.

Why `prometheus-client` and not OpenTelemetry's Prometheus exporter: the lab's Prometheus
scrapes pods directly and its alerts are written against Prometheus names; the client library
gives exactly those names (`_total`, base units) with no translation layer, its text
exposition is the reference implementation, and `prometheus_client.parser` lets the tests
read a scrape back. One private `REGISTRY` (not the global default) so tests and several apps
in one process see only the suite's families.

Drone-link values that are a reading (status, state age, battery, height, flying, the link's
own counters) are read from the registered links at scrape time by a collector, so the link
code needs no edit for them; per-command observations come through `observe_command`, one call
from the link's flight-log hook. No label carries an unbounded value: paths are the mounted
paths, command kinds the SDK verbs, outcomes fixed sets.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from servers.drone.link import DroneLink

__all__ = [
    "METRICS_PATH",
    "REGISTRY",
    "RequestMetrics",
    "count_shed",
    "metrics_endpoint",
    "observe_command",
    "register_link",
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

_STATUS: Final = ("connected", "stale", "disconnected")
_LINK_COUNTERS: Final = {
    "sent": "Commands sent on the wire (each retry counts).",
    "retries": "Command retries.",
    "timeouts": "Commands that got no reply in time.",
    "keepalives": "Keepalives sent.",
    "replies": "Replies received.",
}
_links: weakref.WeakSet[DroneLink] = weakref.WeakSet()


def register_link(link: DroneLink) -> None:
    """Read this link at every scrape (held weakly: a closed runtime's link drops out)."""
    _links.add(link)


def set_hold(drone: str, held: bool) -> None:
    """The operator's hold, for the flight-deck work to call when it sets or clears one."""
    HOLD.labels(drone=drone).set(1 if held else 0)


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
        yield from (status, age, battery, height, flying, *counters.values())


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

        async def sending(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope.get("method", "GET")
            method = method if method in ("GET", "POST", "DELETE") else "other"
            HTTP_REQUESTS.labels(path=label, method=method, outcome=_outcome(code)).inc()
            HTTP_DURATION.labels(path=label).observe(time.perf_counter() - start)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type="text/plain; version=0.0.4; charset=utf-8")


def families() -> list[tuple[str, str, str]]:
    """(name, type, help) of every family, for the README table."""
    out: list[tuple[str, str, str]] = []
    for family in REGISTRY.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        out.append((name, family.type, family.documentation))
    return sorted(out)
