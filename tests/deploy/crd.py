"""Offline validation of custom resources against the CRDs vendored in `deploy/schemas/`.

An API server does three things a plain JSON Schema validator does not, so each is done here:

* it prunes or rejects unknown fields: `tightened` adds `additionalProperties: false` to every
  object node that lists its properties (except under `x-kubernetes-preserve-unknown-fields`),
  so a misspelt or misplaced field fails instead of vanishing;
* it applies schema defaults before validation rules see the object: `defaulted`;
* it evaluates the `x-kubernetes-validations` CEL rules: `cel_rules` collects every rule whose
  node is present in the object, and `evaluate` runs it with a CEL interpreter (`celpy`).
  Transition rules (`oldSelf`) only apply to updates and are skipped.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import celpy
import jsonschema
import yaml
from celpy.adapter import json_to_cel

from tests.deploy.manifests import DEPLOY

SCHEMAS: Final = DEPLOY / "schemas"

Schema = dict[str, Any]
_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Schema]:
    """`(apiVersion, kind)` -> `openAPIV3Schema`, for every served version of every vendored CRD."""
    found: dict[tuple[str, str], Schema] = {}
    for path in sorted(SCHEMAS.glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            crd = cast("dict[str, Any]", doc)
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    found[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = version["schema"][
                        "openAPIV3Schema"
                    ]
    return found


def schema_for(obj: dict[str, Any]) -> Schema | None:
    return crd_schemas().get((str(obj["apiVersion"]), str(obj["kind"])))


def tightened(schema: Schema) -> Schema:
    """A copy of `schema` in which unknown fields fail."""
    node = dict(schema)
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    if "properties" in node:
        node["properties"] = {k: tightened(v) for k, v in node["properties"].items()}
        if not preserve and "additionalProperties" not in node:
            node["additionalProperties"] = False
    extra, items = node.get("additionalProperties"), node.get("items")
    if isinstance(extra, dict):
        node["additionalProperties"] = tightened(cast("Schema", extra))
    if isinstance(items, dict):
        node["items"] = tightened(cast("Schema", items))
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in node:
            node[combinator] = [tightened(s) for s in node[combinator]]
    return node


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(tightened(crd_schemas()[(api_version, kind)]))


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Every schema violation of `obj` (unknown fields included), as `path: message`."""
    validator = _validator(str(obj["apiVersion"]), str(obj["kind"]))
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]


def defaulted(value: Any, schema: Schema) -> Any:
    """`value` with the schema's defaults filled in, as the API server does before CEL."""
    if isinstance(value, dict):
        obj = dict(cast("dict[str, Any]", value))
        props: dict[str, Schema] = schema.get("properties", {})
        for name, sub in props.items():
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
        for name, item in obj.items():
            if name in props:
                obj[name] = defaulted(item, props[name])
            elif isinstance(schema.get("additionalProperties"), dict):
                obj[name] = defaulted(item, schema["additionalProperties"])
        return obj
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [defaulted(v, schema["items"]) for v in cast("list[Any]", value)]
    return value


@dataclass(frozen=True)
class CelRule:
    path: str
    rule: str
    message: str
    node: Any


def cel_rules(value: Any, schema: Schema, path: str = "") -> Iterator[CelRule]:
    """Every validation rule that applies to a node present in `value`."""
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" not in rule["rule"]:
            yield CelRule(path or "<root>", rule["rule"], rule.get("message", ""), value)
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties", {})
        for name, item in cast("dict[str, Any]", value).items():
            if name in props:
                yield from cel_rules(item, props[name], f"{path}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                yield from cel_rules(item, schema["additionalProperties"], f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(cast("list[Any]", value)):
            yield from cel_rules(item, schema["items"], f"{path}[{i}]")


_ENV = celpy.Environment()


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return _ENV.program(_ENV.compile(rule))


def evaluate(rule: CelRule) -> bool:
    """The rule's verdict on its node (a CEL error is a failure, as on the API server)."""
    result = _program(rule.rule).evaluate({"self": json_to_cel(rule.node)})
    assert not isinstance(result, Exception), f"{rule.path}: CEL error {result!r} in {rule.rule}"
    return bool(result)


def cel_failures(obj: dict[str, Any]) -> list[str]:
    """Every CEL rule `obj` (defaulted) breaks, with its message; and the number checked."""
    schema = crd_schemas()[(str(obj["apiVersion"]), str(obj["kind"]))]
    return [
        f"{r.path}: {r.message} ({r.rule})"
        for r in cel_rules(defaulted(obj, schema), schema)
        if not evaluate(r)
    ]


def cel_count(obj: dict[str, Any]) -> int:
    schema = crd_schemas()[(str(obj["apiVersion"]), str(obj["kind"]))]
    return sum(1 for _ in cel_rules(defaulted(obj, schema), schema))


def vendored_files() -> list[Path]:
    return sorted(SCHEMAS.glob("*.yaml"))
