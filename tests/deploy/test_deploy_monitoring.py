"""Observability in the rendered overlays (issue 20, "Deploy"): every server serves `/metrics`
on the port the scrape configuration names (PodMonitor and `prometheus.io/*` annotations
alike), the PrometheusRule's expressions parse with `promql-parser` and name only metrics
`servers.metrics.families()` defines, each alert an operator needs is there with a severity and
a runbook line, and the OTLP endpoint the overlays set is one the servers export to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import promql_parser
import pytest

from deploy import generate
from servers.config import SERVE
from servers.metrics import METRICS_PATH, families
from servers.tracing import export_settings
from tests.deploy.manifests import OVERLAYS, Manifests, Obj, container_env, rendered

SERVERS: Final = ("drone-mcp", "everything", "website-fetcher")
SECRETS: Final = {"everything-request-state/keys": "k", f"{generate.AUTH_SECRET}/token": "t"}
SEVERITIES: Final = {"critical", "warning"}

REQUIRED_ALERTS: Final = {
    # alert: the metrics its expression must read (what makes it the alert the issue asks for)
    "TelloDroneLinkDownWhileAgentsConnected": {
        "tello_mcp_drone_link_status",
        "tello_mcp_http_streams_open",
        "tello_mcp_tool_calls_total",
    },
    "TelloDroneStateStaleWhileFlying": {"tello_mcp_drone_state_age_seconds", "tello_mcp_drone_flying"},
    "TelloDroneBatteryLowWhileFlying": {"tello_mcp_drone_battery_ratio", "tello_mcp_drone_flying"},
    "TelloDroneUnknownVerdict": {"tello_mcp_drone_unanswered_verdicts_total"},
    "TelloSandboxLimitHits": {"tello_mcp_sandbox_limit_hits_total"},
    "TelloHttp5xxRate": {"tello_mcp_http_requests_total"},
    "TelloAuthFailures": {"tello_mcp_http_requests_total"},
}


# ---- PromQL ----


def known_metric_names() -> set[str]:
    """Every series name the suite exposes: counters as `families()` names them (`_total`),
    histograms as their `_bucket`, `_count` and `_sum` series, gauges as they are."""
    names: set[str] = set()
    for name, kind, _labels, _help in families():
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        else:
            names.add(name)
    return names


def selector_names(node: Any) -> Iterator[str]:
    """The metric name of every vector selector in a parsed expression (a selector without a
    name, such as `{job="x"}`, yields "" so the caller's check fails on it)."""
    if isinstance(node, promql_parser.VectorSelector):
        by_label = [m.value for m in node.matchers.matchers if m.name == "__name__"]
        yield node.name or (by_label[0] if by_label else "")
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from selector_names(node.vector_selector)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from selector_names(node.lhs)
        yield from selector_names(node.rhs)
    elif isinstance(node, promql_parser.AggregateExpr):
        yield from selector_names(node.expr)
        if node.param is not None:
            yield from selector_names(node.param)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from selector_names(arg)
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        yield from selector_names(node.expr)
    elif not isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral):
        raise TypeError(f"unexpected PromQL node {type(node).__name__}")


def metrics_of(expr: str) -> set[str]:
    return set(selector_names(promql_parser.parse(expr)))


def alert_rules(m: Manifests) -> list[dict[str, Any]]:
    return [
        rule
        for prometheus_rule in m.kind("PrometheusRule")
        for group in prometheus_rule["spec"]["groups"]
        for rule in group["rules"]
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_alert_expressions_name_only_metrics_the_suite_defines(overlay: str) -> None:
    rules = alert_rules(rendered(overlay))
    assert rules
    known = known_metric_names()
    used: set[str] = set()
    for rule in rules:
        names = metrics_of(rule["expr"])
        assert names, f"{rule['alert']}: its expression reads no metric"
        assert names <= known, (
            f"{rule['alert']}: {sorted(names - known)} are not in servers.metrics.families()"
        )
        used |= names
    assert {n for needed in REQUIRED_ALERTS.values() for n in needed} <= used


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("tello_mcp_drone_flying == 1", {"tello_mcp_drone_flying"}),
        ('{__name__="tello_mcp_drone_flying"}', {"tello_mcp_drone_flying"}),
        ('{job="x"}', {""}),
        (
            "-(histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m]))) > bool b)"
            " and on () topk(1, c) or max_over_time(d[10m:1m] offset 1m)",
            {"a_bucket", "b", "c", "d"},
        ),
    ],
)
def test_selector_names_reach_every_selector(expr: str, names: set[str]) -> None:
    assert metrics_of(expr) == names


def test_a_misspelt_metric_is_caught() -> None:
    """The check above is not vacuous: a name one letter off, or a histogram's base name
    (which is no series), is not a known metric."""
    known = known_metric_names()
    assert "tello_mcp_http_requests_total" in known
    assert "tello_mcp_tool_call_duration_seconds_bucket" in known
    for wrong in ("tello_mcp_http_request_total", "tello_mcp_tool_call_duration_seconds", "up"):
        assert not metrics_of(f"rate({wrong}[5m])") <= known, wrong


def test_an_expression_that_does_not_parse_fails() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("sum by (drone (tello_mcp_drone_flying)")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_alert_the_operator_needs_is_there_with_a_severity_and_a_runbook(overlay: str) -> None:
    rules = alert_rules(rendered(overlay))
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), names
    assert set(REQUIRED_ALERTS) <= set(names)
    for rule in rules:
        name = rule["alert"]
        assert REQUIRED_ALERTS.get(name, set()) <= metrics_of(rule["expr"]), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        for field in ("summary", "description", "runbook"):
            text = str(annotations.get(field, "")).strip()
            assert text, f"{name}: no {field}"
            assert "\n" not in text, f"{name}: {field} is more than one line"


# ---- scrape configuration ----


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and In / NotIn / Exists / DoesNotExist)."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def scraped(m: Manifests, pod_monitor: Obj) -> list[Obj]:
    ns = pod_monitor["metadata"]["namespace"]
    return [
        d
        for d in m.kind("Deployment")
        if d["metadata"]["namespace"] == ns
        and selects(pod_monitor["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_monitor_scrapes_every_server_on_its_metrics_port(overlay: str) -> None:
    m = rendered(overlay)
    (pod_monitor,) = m.kind("PodMonitor")
    deployments = scraped(m, pod_monitor)
    assert sorted(d["metadata"]["name"] for d in deployments) == sorted(SERVERS)
    endpoints = pod_monitor["spec"]["podMetricsEndpoints"]
    assert [(e["port"], e["path"]) for e in endpoints] == [("metrics", METRICS_PATH)]
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p for p in container["ports"]}
        assert "metrics" in ports, f"{name}: no container port named metrics"
        assert ports["metrics"]["protocol"] == "TCP"
        serve = SERVE.resolve(None, container_env(m, deployment, SECRETS))
        assert serve.metrics_port == ports["metrics"]["containerPort"], name
        assert serve.metrics_port != serve.port, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_prometheus_annotations_name_the_metrics_port_and_path(overlay: str) -> None:
    m = rendered(overlay)
    for name in SERVERS:
        deployment = m.one("Deployment", name, generate.namespace())
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        serve = SERVE.resolve(None, container_env(m, deployment, SECRETS))
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations.get("prometheus.io/port") == str(serve.metrics_port), name
        assert annotations.get("prometheus.io/path") == METRICS_PATH, name
    for deployment in m.kind("Deployment"):
        if deployment["metadata"]["name"] not in SERVERS:  # the simulator serves no metrics
            annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
            assert "prometheus.io/scrape" not in annotations


# ---- traces ----


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_server_exports_traces_to_the_endpoint_the_overlay_sets(overlay: str) -> None:
    m = rendered(overlay)
    services: set[str] = set()
    for name in SERVERS:
        env = container_env(m, m.one("Deployment", name, generate.namespace()), SECRETS)
        export = export_settings(env)
        assert export is not None, f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT is not set"
        assert export.endpoint == env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
        services.add(env["OTEL_SERVICE_NAME"])
    assert len(services) == len(SERVERS), "each server has its own OTEL_SERVICE_NAME"
