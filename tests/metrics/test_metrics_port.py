"""`--metrics-port`: a second listener of a real `tello-mcp serve` process that serves only
`/metrics` and the probes, to any Host (how Prometheus scrapes a pod), while the main port
keeps its Host allow-list; bad values are refused naming the flag."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from mcp import Client

from servers.cli import plan
from tests.metrics.scrape import POD_HOST, Scrape
from tests.support.serve import serving

pytestmark = pytest.mark.anyio

BIN = Path(sys.executable).parent


async def test_the_metrics_port_serves_metrics_and_probes_to_any_host_and_nothing_else(
    tmp_path: Path, free_tcp_port: int
) -> None:
    command = [str(BIN / "tello-mcp"), "serve", "everything", "--port", "0"]
    command += ["--metrics-port", str(free_tcp_port)]
    async with serving(command, tmp_path / "stderr.log") as served:
        metrics = f"http://127.0.0.1:{free_tcp_port}"
        assert f"metrics {metrics}/metrics" in served.banner
        url = served.url("/everything")
        async with Client(url) as client:
            assert not (await client.call_tool("echo", {"message": "hi"})).is_error
        async with httpx.AsyncClient(timeout=10, headers={"Host": POD_HOST}) as http:
            scraped = await http.get(f"{metrics}/metrics")
            ready = await http.get(f"{metrics}/readyz")
            health = await http.get(f"{metrics}/healthz")
            mcp = await http.post(f"{metrics}/everything", json={})
            main_refuses_pod_host = await http.post(url, json={})
    assert scraped.status_code == 200, scraped.text
    parsed = Scrape.parse(scraped.text)
    assert parsed.value("tello_mcp_tool_calls_total", path="/everything", tool="echo", outcome="ok") == 1
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert health.status_code == 200
    assert mcp.status_code == 404  # no MCP, no admin route on this listener
    assert main_refuses_pod_host.status_code == 421  # the main port's Host check is untouched


@pytest.mark.parametrize("value", ["-1", "65536", "8000"])
def test_a_bad_metrics_port_is_refused_naming_the_setting(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        plan(["drone", "--port", "8000", "--metrics-port", value], environ={})
    assert exited.value.code == 2
    assert "metrics_port" in capsys.readouterr().err


def test_the_metrics_port_comes_from_its_variable() -> None:
    assert plan(["drone"], environ={"TELLO_MCP_METRICS_PORT": "9090"}).common.metrics_port == 9090
    assert plan(["drone"], environ={}).common.metrics_port == 0
