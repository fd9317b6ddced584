"""`/metrics` after a short flight over HTTP, read back with `prometheus_client.parser` and
checked against the simulator's ground truth (its last state packet, the datagrams it got)."""

from __future__ import annotations

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families

from servers.drone.core.telemetry import parse_state
from servers.metrics import METRICS_PATH
from tests.drone_server.harness import Served, text_of

pytestmark = pytest.mark.anyio

POD_IP = "10.42.0.17:8000"  # how Prometheus scrapes a pod: not in the Host allow-list


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def test_metrics_after_a_flight_match_ground_truth(served: Served) -> None:
    async with (
        httpx2.AsyncClient() as http,
        Client(streamable_http_client(served.url, http_client=http)) as client,
    ):
        with anyio.fail_after(20):
            took_off = await client.call_tool("takeoff", {})
        assert not took_off.is_error, text_of(took_off)
    drone = served.runtime.link.drone_address
    async with httpx.AsyncClient(timeout=10) as raw:
        before = served.truth.last_state_packet
        sent = len(served.truth.received)
        scrape = await raw.get(f"{served.base}{METRICS_PATH}", headers={"Host": POD_IP})
        after = served.truth.last_state_packet
    assert scrape.status_code == 200, scrape.text
    samples = _samples(scrape.text)
    assert before is not None
    assert after is not None
    states = [parse_state(before), parse_state(after)]
    battery = _value(samples, "tello_mcp_drone_battery_ratio", drone=drone)
    height = _value(samples, "tello_mcp_drone_height_meters", drone=drone)
    assert any(battery == s.battery_pct / 100 and height == s.height_cm / 100 for s in states)
    assert height > 0  # it flew
    # Every datagram the simulator got was a command the link counts as sent (no loss here);
    # a keepalive may leave between the two reads, never before the first.
    assert (
        sent <= _value(samples, "tello_mcp_drone_link_sent_total", drone=drone) <= len(served.truth.received)
    )
    assert _value(samples, "tello_mcp_drone_flying", drone=drone) == 1
    assert _value(samples, "tello_mcp_drone_link_status", drone=drone, status="connected") == 1
    assert (
        _value(samples, "tello_mcp_drone_commands_total", drone=drone, command="takeoff", outcome="ok") == 1
    )
    assert (
        _value(samples, "tello_mcp_drone_command_duration_seconds_count", drone=drone, command="takeoff") == 1
    )
    assert _value(samples, "tello_mcp_http_requests_total", path="/drone", method="POST", outcome="ok") >= 1


async def test_metrics_carry_no_session_ids_or_urls(served: Served) -> None:
    async with httpx.AsyncClient(timeout=10) as raw:
        await raw.get(f"{served.base}/no/such/path?token=secret")
        scrape = await raw.get(f"{served.base}{METRICS_PATH}")
    assert scrape.status_code == 200
    assert "/no/such/path" not in scrape.text
    assert "secret" not in scrape.text
    assert (
        _value(
            _samples(scrape.text),
            "tello_mcp_http_requests_total",
            path="other",
            method="GET",
            outcome="protocol_error",
        )
        >= 1
    )
