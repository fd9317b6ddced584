"""Both overlays render, and what they render has the shape issue 13 asks for: the drone server
as one host-networked replica that probes "serves MCP", the simulator beside it (sim) or a real
drone's address (drone), two hardened replicas of each demo server with disruption budgets,
and every name one object uses for another resolving inside the render."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from deploy import generate
from servers.config import SERVE
from servers.drone.config import DRONE, DroneSettings
from servers.version import package_version
from tests.deploy.manifests import DEPLOY, OVERLAYS, Manifests, Obj, container_env, kustomize, rendered

IMAGE = "ghcr.io/tello-mcp/tello-mcp"
NAMESPACE = generate.namespace()
SECRETS = {"everything-request-state/keys": "k", f"{generate.AUTH_SECRET}/token": "t"}

COMMON: set[tuple[str, str]] = {
    ("Namespace", "tello-mcp"),
    ("Deployment", "drone-mcp"),
    ("Service", "drone-mcp"),
    ("Deployment", "everything"),
    ("Service", "everything"),
    ("PodDisruptionBudget", "everything"),
    ("Deployment", "website-fetcher"),
    ("Service", "website-fetcher"),
    ("PodDisruptionBudget", "website-fetcher"),
    ("Gateway", "agw"),
    ("HTTPRoute", "tello-mcp"),
    ("AgentgatewayPolicy", "tello-mcp-host"),
    ("AgentgatewayBackend", "virtual-mcp"),
    ("ModelConfig", "tello-mcp-model"),
    ("PodMonitor", "tello-mcp"),
    ("PrometheusRule", "tello-mcp"),
    *(
        (kind, name)
        for name in ("drone", "drone-search", "drone-code", "drone-codesearch")
        for kind in ("AgentgatewayBackend", "RemoteMCPServer", "Agent")
    ),
}


def pod_spec(deployment: Obj) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def server_container(deployment: Obj) -> dict[str, Any]:
    (container,) = pod_spec(deployment)["containers"]
    return container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_suite(overlay: str) -> None:
    m = rendered(overlay)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in m.objects if o["kind"] != "ConfigMap"}
    expected = COMMON | ({("Deployment", "drone-sim")} if overlay == "sim" else set())
    assert kinds == expected
    for o in m.objects:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == NAMESPACE, o["metadata"]
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tello-mcp" or o["kind"] == "ConfigMap"


def test_base_renders_alone() -> None:
    objects = kustomize(DEPLOY / "base")
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "Agent", "AgentgatewayBackend"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_image_runs_every_server_by_subcommand(overlay: str) -> None:
    m = rendered(overlay)
    commands: dict[str, list[str]] = {}
    for d in m.kind("Deployment"):
        container = server_container(d)
        assert container["image"] == f"{IMAGE}:{package_version()}"
        assert "command" not in container, "the image's entrypoint is tello-mcp"
        commands[d["metadata"]["name"]] = container["args"][:2]
    assert commands["drone-mcp"] == ["serve", "drone"]
    assert commands["everything"] == ["serve", "everything"]
    assert commands["website-fetcher"] == ["serve", "fetch"]
    if overlay == "sim":
        assert commands["drone-sim"][0] == "sim"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_drone_server_is_one_host_networked_replica(overlay: str) -> None:
    m = rendered(overlay)
    drone = m.one("Deployment", "drone-mcp", NAMESPACE)
    spec, pod = drone["spec"], pod_spec(drone)
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    container = server_container(drone)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "mcp"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "mcp"}
    env = container_env(m, drone, SECRETS)
    serve = SERVE.resolve(None, env)
    assert serve.host == "0.0.0.0"
    assert serve.port == ports["mcp"]
    settings = drone_settings_from(env)
    assert ports["state"] == settings.state_port
    assert ports["video"] == settings.video_port
    ipaddress.ip_address(settings.drone_host)  # the link matches replies by source address


def drone_settings_from(env: dict[str, str]) -> DroneSettings:
    return DRONE.resolve(None, env)


def test_sim_overlay_flies_the_simulator_beside_the_server() -> None:
    m = rendered("sim")
    drone, sim = m.one("Deployment", "drone-mcp", NAMESPACE), m.one("Deployment", "drone-sim", NAMESPACE)
    target = drone_settings_from(container_env(m, drone, SECRETS))
    args = server_container(sim)["args"]
    listen = dict(zip(args[1::2], args[2::2], strict=True))
    # The simulator listens on the node's loopback, where the server sends its commands.
    assert (listen["--host"], int(listen["--port"])) == (target.drone_host, target.drone_port)
    assert ipaddress.ip_address(target.drone_host).is_loopback
    assert pod_spec(sim)["hostNetwork"] is True
    assert pod_spec(drone)["hostNetwork"] is True
    assert sim["spec"]["replicas"] == 1
    # ... which is the same loopback only on the same node.
    (term,) = pod_spec(drone)["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    sim_labels = sim["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"].items() <= sim_labels.items()


def test_drone_overlay_takes_the_address_from_its_config_map() -> None:
    m = rendered("drone")
    drone = m.one("Deployment", "drone-mcp", NAMESPACE)
    env_file = (DEPLOY / "overlays" / "drone" / "drone.env").read_text(encoding="utf-8")
    expected = dict(
        line.split("=", 1) for line in env_file.splitlines() if line.strip() and not line.startswith("#")
    )
    config_maps = [
        m.one("ConfigMap", s["configMapRef"]["name"], NAMESPACE) for s in server_container(drone)["envFrom"]
    ]
    assert any(c.get("data") == expected for c in config_maps)
    assert (
        drone_settings_from(container_env(m, drone, SECRETS)).drone_host == expected["TELLO_MCP_DRONE_HOST"]
    )
    assert pod_spec(drone)["nodeSelector"] == {"tello-mcp/drone-link": "true"}
    assert "affinity" not in pod_spec(drone)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", ["everything", "website-fetcher"])
def test_demo_servers_are_hardened_stateless_replicas(overlay: str, name: str) -> None:
    m = rendered(overlay)
    d = m.one("Deployment", name, NAMESPACE)
    assert d["spec"]["replicas"] == 2
    pod, container = pod_spec(d), server_container(d)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) == {"cpu", "memory"}
    assert not pod.get("hostNetwork")
    assert {v["name"] for v in pod.get("volumes", [])} == {"tmp"}
    assert all("emptyDir" in v for v in pod["volumes"]), "stateless: no persistent volume"
    pdb = m.one("PodDisruptionBudget", name, NAMESPACE)
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 0 < pdb["spec"]["minAvailable"] < d["spec"]["replicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_runs_hardened(overlay: str) -> None:
    for d in rendered(overlay).kind("Deployment"):
        pod, container = pod_spec(d), server_container(d)
        assert pod["securityContext"]["runAsNonRoot"] is True, d["metadata"]["name"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, d["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False
        assert "limits" in container["resources"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves_in_the_render(overlay: str) -> None:
    m: Manifests = rendered(overlay)
    for d in m.kind("Deployment"):
        container = server_container(d)
        ports = {p["name"] for p in container.get("ports", [])}
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in ports
        for source in container.get("envFrom", []):
            m.one("ConfigMap", source["configMapRef"]["name"], NAMESPACE)
        mounts = {v["mountPath"] for v in container.get("volumeMounts", [])}
        assert "/tmp" in mounts or "volumeMounts" not in container
    for service in m.kind("Service"):
        (deployment,) = m.pods_of(service)
        container_ports = {p["name"] for p in server_container(deployment)["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports
            assert port["appProtocol"] == "agentgateway.dev/mcp"
    for route in m.kind("HTTPRoute"):
        for parent in route["spec"]["parentRefs"]:
            m.one("Gateway", parent["name"], NAMESPACE)
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                assert (ref["group"], ref["kind"]) == ("agentgateway.dev", "AgentgatewayBackend")
                m.one(ref["kind"], ref["name"], NAMESPACE)
    for agent in m.kind("Agent"):
        declarative = agent["spec"]["declarative"]
        m.one("ModelConfig", declarative["modelConfig"], NAMESPACE)
        for tool in declarative["tools"]:
            server = tool["mcpServer"]
            # An empty kind falls through to kmcp's MCPServer: always name the kind.
            assert (server["apiGroup"], server["kind"]) == ("kagent.dev", "RemoteMCPServer")
            m.one("RemoteMCPServer", server["name"], server.get("namespace", NAMESPACE))
    for policy in m.kind("AgentgatewayPolicy"):
        for ref in policy["spec"]["targetRefs"]:
            m.one(ref["kind"], ref["name"], NAMESPACE)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_routes_give_each_drone_mode_its_own_path(overlay: str) -> None:
    m = rendered(overlay)
    gateway = m.one("Gateway", "agw", NAMESPACE)
    expected = {
        "/drone": "drone",
        "/drone-search": "drone-search",
        "/drone-code": "drone-code",
        "/drone-codesearch": "drone-codesearch",
        "/mcp": "virtual-mcp",
    }
    for path, backend in expected.items():
        for sub in ("", "/", "/x"):
            assert [b["metadata"]["name"] for b in m.route_backends(gateway, path + sub)] == [backend]
    assert m.route_backends(gateway, "/dronex") == []
    virtual = m.one("AgentgatewayBackend", "virtual-mcp", NAMESPACE)["spec"]["mcp"]
    assert sorted(t["static"]["host"] for t in virtual["targets"]) == ["everything", "website-fetcher"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_access_control_is_on_for_the_drone_and_every_agent_sends_the_token(overlay: str) -> None:
    m = rendered(overlay)
    drone = m.one("Deployment", "drone-mcp", NAMESPACE)
    env = {item["name"]: item for item in server_container(drone).get("env", [])}
    token_ref = env["TELLO_MCP_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert (token_ref["name"], token_ref["key"]) == (generate.AUTH_SECRET, "token")
    assert int(env["TELLO_MCP_RATE_LIMIT_ACTIONS"]["value"]) > 0
    resolved = container_env(m, drone, SECRETS)
    settings = SERVE.resolve(None, resolved).http().access
    assert settings.mode == "static"
    assert "drone:fly" in settings.static_scopes
    remotes = list(m.kind("RemoteMCPServer"))
    assert remotes
    for remote in remotes:
        assert remote["spec"]["headersFrom"] == [
            {
                "name": "Authorization",
                "valueFrom": {"type": "Secret", "name": generate.AUTH_SECRET, "key": "authorization"},
            }
        ], remote["metadata"]["name"]
