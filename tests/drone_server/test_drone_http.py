"""The drone app over HTTP: the SDK's Host check (421), allowed gateway names, and the probes."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from servers.drone.app import STATUS_PATH
from servers.drone.core.protocol import LinkStatus
from tests.drone_server.harness import (
    ERAS,
    Served,
    http_settings,
    serving,
    structured,
    wait_connected,
    wait_status,
)
from tests.support.eras import ACCEPT, LEGACY_INIT

pytestmark = pytest.mark.anyio

CLUSTER_NAME = "drone-mcp.drone.svc.cluster.local"
MODERN_CALL: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "get_state",
        "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    },
}
MODERN_HEADERS = {
    **ACCEPT,
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call",
    "Mcp-Name": "get_state",
}
REQUESTS = [(LEGACY_INIT, ACCEPT), (MODERN_CALL, MODERN_HEADERS)]


@pytest.mark.parametrize(("body", "headers"), REQUESTS, ids=ERAS)
async def test_disallowed_host_gets_the_sdks_421(
    served: Served, body: dict[str, Any], headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        before = len(served.truth.received)
        for host in ("evil.example", "evil.example:8000", f"{CLUSTER_NAME}:8000"):
            refused = await http.post(served.url, json=body, headers={**headers, "Host": host})
            assert (refused.status_code, refused.text) == (421, "Invalid Host header"), host
        bad_origin = await http.post(
            served.url, json=body, headers={**headers, "Origin": "http://evil.example"}
        )
        assert (bad_origin.status_code, bad_origin.text) == (403, "Invalid Origin header")
        local = await http.post(
            served.url, json=body, headers={**headers, "Host": f"localhost:{served.port}"}
        )
        assert local.status_code == 200
    # The refused requests never reached the tools: at most the link's keepalive went out.
    assert {r.data for r in served.truth.received[before:]} <= {b"command"}


@pytest.mark.parametrize("mode", ERAS)
async def test_allowed_cluster_name_is_accepted(mode: str) -> None:
    http = http_settings(allowed_hosts=("127.0.0.1", f"{CLUSTER_NAME}:*"))
    async with serving(http=http) as served:
        with anyio.fail_after(15):
            async with (
                httpx2.AsyncClient(headers={"Host": f"{CLUSTER_NAME}:8000"}) as gateway,
                Client(streamable_http_client(served.url, http_client=gateway), mode=mode) as client,
            ):
                state = structured(await client.call_tool("get_state", {}))
                assert state["freshness"]["link"] == "connected"
            async with httpx.AsyncClient(timeout=10) as raw:
                for host in (CLUSTER_NAME, f"{CLUSTER_NAME}:80", f"127.0.0.1:{served.port}"):
                    ok = await raw.post(served.url, json=LEGACY_INIT, headers={**ACCEPT, "Host": host})
                    assert ok.status_code == 200, host
                other = await raw.post(
                    served.url, json=LEGACY_INIT, headers={**ACCEPT, "Host": f"other.{CLUSTER_NAME}:8000"}
                )
                assert other.status_code == 421
                assert (
                    await raw.post(
                        served.url, json=LEGACY_INIT, headers={**ACCEPT, "Host": f"localhost:{served.port}"}
                    )
                ).status_code == 421  # not in this allow-list


async def test_readiness_means_serving_and_drone_status_shows_the_link(served: Served) -> None:
    """/readyz stays 200 while the drone is off or stale (the pod must stay in its Service so
    agents can learn what is wrong); /drone-status shows the link as it is."""
    sim, runtime = served.sim, served.runtime
    # kubelet probes with the pod IP as Host: the probes sit outside the Host check, and
    # /drone-status (an operator's route) inside it.
    async with (
        httpx.AsyncClient(base_url=served.base, headers={"Host": "10.42.0.7:8000"}, timeout=10) as probe,
        httpx.AsyncClient(base_url=served.base, timeout=10) as http,
    ):
        health = await probe.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = await probe.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})
        assert (await probe.get(STATUS_PATH)).status_code == 421
        status = await http.get(STATUS_PATH)
        assert (status.status_code, status.json()["link"]) == (200, "connected")

        with anyio.fail_after(30):
            sim.faults.state_dropout = True
            await wait_status(sim, runtime, LinkStatus.STALE)
            stale = [await probe.get("/readyz"), await http.get(STATUS_PATH)]
            sim.faults.state_dropout = False
            await wait_connected(runtime)

            sim.power_off()
            await wait_status(sim, runtime, LinkStatus.DISCONNECTED)
            off = [await probe.get("/readyz"), await http.get(STATUS_PATH)]
            assert (await probe.get("/healthz")).status_code == 200
            sim.power_on()
            await wait_connected(runtime, within=20)
            back = await http.get(STATUS_PATH)
    assert [r.status_code for r in stale] == [200, 200]
    assert stale[1].json()["link"] == "stale"
    assert [r.status_code for r in off] == [200, 200]
    assert off[1].json()["link"] == "disconnected"
    assert back.json()["link"] == "connected"
