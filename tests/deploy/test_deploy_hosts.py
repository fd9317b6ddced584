"""The Host every rendered caller sends is accepted by the server it reaches.

For each overlay: every agentgateway static MCP target (Host `host:port`) and every kagent
RemoteMCPServer (its URL, through the Gateway's route to a backend, or straight to a
Service) is followed to the Deployment behind it; that Deployment's server is started
in-process from its rendered `args` and environment (`servers.cli.plan`, the same resolution
`tello-mcp serve` does), only listening on 127.0.0.1:0 instead of 0.0.0.0:8000 and, for the
drone, flying a silent loopback "drone" instead of the real one. Then a real MCP client
sending that Host lists the tools in both protocol eras, and each Agent's `toolNames` must be
exactly what its path serves. A Host outside the allow-list still gets 421, so the
acceptance is the allow-list's doing, not protection switched off.

Where the rendered environment turns access control on (the drone server), every hop sends
the bearer token from the Secret, as kagent's `headersFrom` does and agentgateway passes on,
and a request without it must get 401.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from servers.cli import plan
from servers.drone.config import DroneSettings
from servers.http import serve
from servers.registry import SERVERS
from servers.suite import ServerEntry, build_suite_app, opened
from tests.deploy.manifests import (
    OVERLAYS,
    Hop,
    Manifests,
    Obj,
    container_env,
    remote_server_hops,
    rendered,
    static_target_hops,
)
from tests.support.eras import ACCEPT, ERAS, LEGACY_INIT

pytestmark = pytest.mark.anyio

DRONE_TOKEN = "tests-deploy-drone-bearer-token"
SECRETS = {
    "everything-request-state/keys": "tests-deploy-shared-request-state-key",
    "drone-mcp-auth/token": DRONE_TOKEN,
    "drone-mcp-auth/authorization": f"Bearer {DRONE_TOKEN}",
}


@contextlib.contextmanager
def silent_drone() -> Any:
    """A UDP port on loopback that never answers: the drone switched off."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(
    m: Manifests, deployment: Obj
) -> AsyncGenerator[tuple[int, dict[str, Any], dict[str, str]]]:
    """The Deployment's server, started from its rendered args and environment; yields its
    port, its container and the headers a caller must send (the bearer token, if it wants one)."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args: list[str] = container["args"]
    assert args[0] == "serve", args
    env = container_env(m, deployment, SECRETS)
    token = env.get("TELLO_MCP_AUTH_TOKEN")
    credentials = {"Authorization": f"Bearer {token}"} if token else {}
    chosen = plan(args[1:], environ=env)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (chosen.common.host, chosen.common.port) == ("0.0.0.0", ports["mcp"])
    http = dataclasses.replace(chosen.common, host="127.0.0.1", port=0).http()
    with silent_drone() as drone_port:
        entries: list[tuple[ServerEntry[Any], Any]] = []
        for name, settings in chosen.servers.items():
            if isinstance(settings, DroneSettings):
                settings = dataclasses.replace(
                    settings,
                    drone_host="127.0.0.1",
                    drone_port=drone_port,
                    bind_host="127.0.0.1",
                    state_port=0,
                    video_port=0,
                )
            entries.append((SERVERS[name], settings))
        async with opened(entries) as components, anyio.create_task_group() as tg:
            port: int = await tg.start(serve, build_suite_app(components, http), http)
            try:
                yield port, container, credentials
            finally:
                tg.cancel_scope.cancel()


async def list_tools(port: int, hop: Hop, mode: str, credentials: dict[str, str]) -> list[str]:
    url = f"http://127.0.0.1:{port}{hop.path}"
    async with (
        httpx2.AsyncClient(headers={"Host": hop.host_header, **credentials}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        listed = await client.list_tools()
    return sorted(t.name for t in listed.tools)


async def check_deployment(
    m: Manifests, hops: list[Hop], served: dict[tuple[str, str, str], list[str]]
) -> None:
    """Start the hops' Deployment and send each hop's Host (and a foreign one, and the probes)."""
    deployment = hops[0].deployment
    name = str(deployment["metadata"]["name"])
    async with serving(m, deployment) as (port, container, credentials):
        for hop in {(h.host_header, h.path): h for h in hops}.values():
            for mode in ERAS:
                try:
                    tools = await list_tools(port, hop, mode, credentials)
                except Exception as exc:
                    raise AssertionError(f"{hop.caller}: Host {hop.host_header} {hop.path} ({mode})") from exc
                assert tools, f"{hop.caller}: {hop.path} lists no tools"
                served[(name, hop.host_header, hop.path)] = tools
        async with httpx2.AsyncClient(timeout=10) as raw:
            refused = await raw.post(
                f"http://127.0.0.1:{port}{hops[0].path}",
                json=LEGACY_INIT,
                headers={**ACCEPT, **credentials, "Host": f"not-{name}.example:8000"},
            )
            assert refused.status_code == 421, "the allow-list must keep DNS-rebinding protection on"
            if credentials:  # access control is on: the token is what gets a caller in
                bare = await raw.post(
                    f"http://127.0.0.1:{port}{hops[0].path}",
                    json=LEGACY_INIT,
                    headers={**ACCEPT, "Host": hops[0].host_header},
                )
                assert bare.status_code == 401, (name, bare.text)
            # The kubelet's probes (Host: the pod IP) answer, whatever the drone does.
            for probe in ("livenessProbe", "readinessProbe"):
                probe_path = container[probe]["httpGet"]["path"]
                answer = await raw.get(
                    f"http://127.0.0.1:{port}{probe_path}", headers={"Host": "10.1.2.3:8000"}
                )
                assert answer.status_code == 200, (name, probe_path, answer.text)


@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_every_rendered_caller_is_accepted_by_the_server_it_reaches(overlay: str) -> None:
    m = rendered(overlay)
    gateway_hops = list(static_target_hops(m))
    agent_hops = list(remote_server_hops(m))
    by_deployment: dict[str, list[Hop]] = {}
    for hop in [*gateway_hops, *(h for _, h in agent_hops)]:
        by_deployment.setdefault(hop.deployment_name, []).append(hop)
    assert set(by_deployment) == {"drone-mcp", "everything", "website-fetcher"}
    assert {h.path for h in gateway_hops} == {
        "/drone",
        "/drone-search",
        "/drone-code",
        "/drone-codesearch",
        "/everything",
        "/fetch",
    }

    served: dict[tuple[str, str, str], list[str]] = {}
    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:  # the three servers start side by side
            for hops in by_deployment.values():
                tg.start_soon(check_deployment, m, hops, served)

    for remote, hop in agent_hops:
        agents = [
            a
            for a in m.kind("Agent")
            for t in a["spec"]["declarative"]["tools"]
            if t["mcpServer"]["name"] == remote["metadata"]["name"]
        ]
        assert agents, f"no Agent uses RemoteMCPServer {remote['metadata']['name']}"
        for agent in agents:
            (tool,) = [
                t
                for t in agent["spec"]["declarative"]["tools"]
                if t["mcpServer"]["name"] == remote["metadata"]["name"]
            ]
            assert (
                sorted(tool["mcpServer"]["toolNames"])
                == served[(hop.deployment_name, hop.host_header, hop.path)]
            )
