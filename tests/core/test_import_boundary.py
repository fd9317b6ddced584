"""The drone core stays sans-IO: nothing in ``servers/drone/core/`` may reach for I/O or a clock.

Two checks, because each alone can be fooled: the static one reads every import statement in
the package (including ones inside functions); the dynamic one imports the whole package in a
fresh interpreter, with ``servers/__init__`` bypassed, and lists every module that import
pulled in, so an indirect route (core → some helper → anyio) is caught too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "servers" / "drone" / "core"
ROOT = CORE.parents[2]

#: Top-level packages the core must never import, directly or through anything it imports.
FORBIDDEN = frozenset(
    {
        "anyio",
        "asyncio",
        "trio",
        "mcp",
        "pydantic",
        "socket",
        "selectors",
        "select",
        "ssl",
        "time",
        "threading",
        "subprocess",
        "structlog",
        "logging",
        "tello_io",
    }
)


def _imports_of(source: str, *, package: str) -> set[str]:
    """Fully qualified names of every module an import statement in ``source`` names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module is not None:
                names.add(node.module)
    return names


def _violations(imported: set[str]) -> set[str]:
    return {
        name
        for name in imported
        if name.split(".")[0] in FORBIDDEN
        or (name.startswith("servers.") and not name.startswith("servers.drone.core"))
    }


def test_the_checker_catches_what_it_is_for() -> None:
    source = (
        "import math\nfrom anyio import sleep\ndef f():\n    import time\nfrom servers.drone import link\n"
    )
    assert _violations(_imports_of(source, package="servers.drone.core")) == {
        "anyio",
        "time",
        "servers.drone",
    }
    relative = "from ..link import DroneLink\nfrom .errors import DroneError\n"
    assert _violations(_imports_of(relative, package="servers.drone.core")) == {"servers.drone.link"}


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_nothing_that_does_io(path: Path) -> None:
    imported = _imports_of(path.read_text(encoding="utf-8"), package="servers.drone.core")
    assert not _violations(imported), f"{path.name} imports {sorted(_violations(imported))}"


_PROBE = """
import importlib, json, pkgutil, sys, types
root = sys.argv[1]
for name, sub in (("servers", "servers"), ("servers.drone", "servers/drone")):
    stub = types.ModuleType(name)
    stub.__path__ = [f"{root}/{sub}"]
    sys.modules[name] = stub
before = set(sys.modules)
core = importlib.import_module("servers.drone.core")
for info in pkgutil.iter_modules(core.__path__):
    importlib.import_module(f"servers.drone.core.{info.name}")
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_importing_the_whole_core_pulls_in_no_io() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout)
    core_modules = {f"servers.drone.core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__"}
    assert core_modules <= set(loaded), "the probe did not import the core"
    assert not _violations(set(loaded)), f"importing the core loaded {sorted(_violations(set(loaded)))}"
