"""Every rendered object validated offline: core kinds with `kubernetes-validate` (strict),
custom resources against the vendored CRDs with unknown fields rejected and their CEL rules
evaluated; and proof that each of those checks rejects what it should."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy import crd
from tests.deploy.manifests import OVERLAYS, Obj, rendered

KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
"""Oldest and newest supported by the manifests' API versions (policy/v1, apps/v1, ...)."""

CRD_KINDS = {
    "AgentgatewayBackend",
    "AgentgatewayPolicy",
    "Gateway",
    "HTTPRoute",
    "Agent",
    "ModelConfig",
    "RemoteMCPServer",
    "PodMonitor",
    "PrometheusRule",
}
NO_CEL_KINDS = {"PodMonitor", "PrometheusRule"}
"""Kinds whose vendored CRDs (prometheus-operator v0.93.0) carry no `x-kubernetes-validations`."""


def _by_kind(overlay: str, kind: str) -> Obj:
    return copy.deepcopy(rendered(overlay).kind(kind)[0])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_kinds_validate_strictly(overlay: str) -> None:
    core = [o for o in rendered(overlay).objects if crd.schema_for(o) is None]
    assert {o["kind"] for o in core} == {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }
    for version in KUBERNETES_VERSIONS:
        for obj in core:
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_their_crds(overlay: str) -> None:
    custom = [o for o in rendered(overlay).objects if crd.schema_for(o) is not None]
    assert {o["kind"] for o in custom} == CRD_KINDS
    for obj in custom:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        assert crd.schema_errors(obj) == [], name
        assert crd.cel_failures(obj) == [], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_cel_rules_are_actually_reached(overlay: str) -> None:
    """The CEL pass is not vacuous: each kind's rendered objects meet rules of their CRD."""
    counts: dict[str, int] = {}
    for obj in rendered(overlay).objects:
        if crd.schema_for(obj) is not None:
            counts[obj["kind"]] = counts.get(obj["kind"], 0) + crd.cel_count(obj)
    assert set(counts) == CRD_KINDS
    assert all(n > 0 for kind, n in counts.items() if kind not in NO_CEL_KINDS), counts
    assert all(counts[kind] == 0 for kind in NO_CEL_KINDS), "a CRD gained CEL rules: update NO_CEL_KINDS"


def test_strict_core_validation_rejects_an_unknown_field() -> None:
    deployment = _by_kind("sim", "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(
    ("kind", "edit", "expected"),
    [
        # a field at the wrong level (it belongs under static)
        ("AgentgatewayBackend", lambda o: o["spec"]["mcp"]["targets"][0].update(port=8000), "port"),
        # kagent's spelling of the protocol on an agentgateway target
        (
            "AgentgatewayBackend",
            lambda o: o["spec"]["mcp"]["targets"][0]["static"].update(protocol="STREAMABLE_HTTP"),
            "STREAMABLE_HTTP",
        ),
        ("Agent", lambda o: o["spec"]["declarative"].update(systemPrompt="x"), "systemPrompt"),
        ("RemoteMCPServer", lambda o: o["spec"].update(protocol="StreamableHTTP"), "StreamableHTTP"),
        ("HTTPRoute", lambda o: o["spec"]["rules"][0].update(backendRef=[]), "backendRef"),
        ("ModelConfig", lambda o: o.update(specs={}), "specs"),
    ],
)
def test_tightened_schemas_reject_misplaced_fields(kind: str, edit: Any, expected: str) -> None:
    obj = _by_kind("sim", kind)
    assert crd.schema_errors(obj) == []
    edit(obj)
    errors = crd.schema_errors(obj)
    assert any(expected in e for e in errors), errors


def test_plain_crd_schemas_would_have_let_unknown_fields_through() -> None:
    """Why `tightened` exists: the CRDs as published accept any extra field."""
    import jsonschema

    obj = _by_kind("sim", "Agent")
    obj["spec"]["declarative"]["systemPrompt"] = "x"
    schema = crd.crd_schemas()[(obj["apiVersion"], obj["kind"])]
    assert list(jsonschema.Draft7Validator(schema).iter_errors(obj)) == []


@pytest.mark.parametrize(
    ("kind", "edit", "message"),
    [
        (
            "AgentgatewayBackend",
            lambda o: o["spec"]["mcp"]["targets"][0]["static"].update(backendRef={"name": "drone-mcp"}),
            "exactly one of the fields in [host backendRef]",
        ),
        (
            "AgentgatewayBackend",
            lambda o: o["spec"]["mcp"]["targets"].append(copy.deepcopy(o["spec"]["mcp"]["targets"][0])),
            "target names must be unique",
        ),
        ("Agent", lambda o: o["spec"].pop("declarative"), "declarative must be specified"),
        (
            "Agent",
            lambda o: o["spec"]["declarative"].update(
                systemMessageFrom={"type": "ConfigMap", "name": "a", "key": "b"}
            ),
            "mutually exclusive",
        ),
        (
            "Agent",
            lambda o: o["spec"]["declarative"]["tools"][0]["mcpServer"].update(requireApproval=["nope"]),
            "RequireApproval entry must also appear in ToolNames",
        ),
        (
            "RemoteMCPServer",
            lambda o: o["spec"].update(tls={"disableVerify": True}),
            "spec.tls must be unset",
        ),
        ("ModelConfig", lambda o: o["spec"].pop("apiKeySecretKey"), "apiKeySecretKey must be set"),
        ("AgentgatewayPolicy", lambda o: o["spec"].pop("traffic"), "At least one of traffic"),
    ],
)
def test_cel_rules_reject_what_the_api_server_would(kind: str, edit: Any, message: str) -> None:
    obj = _by_kind("sim", kind)
    assert crd.cel_failures(obj) == []
    edit(obj)
    assert crd.schema_errors(obj) == [], "the schema alone lets this through: only CEL catches it"
    failures = crd.cel_failures(obj)
    assert any(message in f for f in failures), failures


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rules_the_schemas_leave_to_cel_hold(overlay: str) -> None:
    """The same invariants, asserted directly, so a CEL interpreter quirk cannot hide one."""
    m = rendered(overlay)
    for backend in m.kind("AgentgatewayBackend"):
        spec = backend["spec"]
        assert [k for k in ("ai", "static", "dynamicForwardProxy", "mcp", "aws", "a2a") if k in spec] == [
            "mcp"
        ]
        names = [t["name"] for t in spec["mcp"]["targets"]]
        assert len(names) == len(set(names))
        assert 1 <= len(names) <= 32
        for target in spec["mcp"]["targets"]:
            assert ("selector" in target) != ("static" in target)
            assert ("host" in target["static"]) != ("backendRef" in target["static"])
            assert target["static"]["protocol"] in ("StreamableHTTP", "SSE")
    for agent in m.kind("Agent"):
        spec = agent["spec"]
        assert spec["type"] == "Declarative"
        assert "declarative" in spec
        assert "byo" not in spec
        declarative = spec["declarative"]
        assert "systemMessage" in declarative
        assert "systemMessageFrom" not in declarative
        assert len(declarative["tools"]) <= 20
        for tool in declarative["tools"]:
            assert tool["type"] == "McpServer"
            assert "agent" not in tool
            server = tool["mcpServer"]
            assert set(server.get("requireApproval", [])) <= set(server["toolNames"])
            assert len(server["toolNames"]) <= 50
    for remote in m.kind("RemoteMCPServer"):
        assert remote["spec"]["protocol"] == "STREAMABLE_HTTP"
        assert not (remote["spec"]["url"].startswith("http://") and "tls" in remote["spec"])
    for model in m.kind("ModelConfig"):
        spec = model["spec"]
        assert ("apiKeySecret" in spec) == ("apiKeySecretKey" in spec)
        assert (
            all(k not in spec for k in ("anthropic", "azureOpenAI", "ollama", "gemini"))
            or spec["provider"] != "OpenAI"
        )
    for policy in m.kind("AgentgatewayPolicy"):
        assert {"traffic", "frontend", "backend"} & set(policy["spec"])
        for ref in policy["spec"]["targetRefs"]:
            assert (ref["group"], ref["kind"]) == ("gateway.networking.k8s.io", "HTTPRoute")


def test_vendored_schemas_are_recorded_with_their_sources() -> None:
    readme = (crd.SCHEMAS / "README.md").read_text(encoding="utf-8")
    files = crd.vendored_files()
    assert len(files) == 10
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        row = re.search(rf"^\|\s*`{re.escape(path.name)}`\s*\|(.*)$", readme, re.MULTILINE)
        assert row is not None, f"{path.name} is not listed in deploy/schemas/README.md"
        assert digest in row.group(1), f"{path.name} differs from the recorded upstream file"
