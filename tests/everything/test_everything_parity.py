"""The README's parity table stays true: every test it names exists, and all the server lists is in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import anyio
import pytest
from mcp import Client

from servers.everything import build_everything_server, conformance_fixtures
from tests.everything.harness import FAST, WAIT

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## The everything server"


def _parity_section() -> str:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README has no {SECTION!r} section"
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


HERE = Path(__file__).resolve().parent


def _rows() -> list[list[str]]:
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in _parity_section().splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]
    assert rows[0][:4] == ["Feature", "Ours", "Reference", "Test"]
    return rows[1:]


def _test_functions() -> set[str]:
    names: set[str] = set()
    for path in HERE.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {n.name for n in tree.body if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)}
    return names


def test_every_named_test_exists_and_most_rows_have_one() -> None:
    existing = _test_functions()
    untested = []
    for feature, _ours, _reference, test, *_ in _rows():
        named = re.findall(r"`(test_\w+)`", test)
        missing = set(named) - existing
        assert not missing, f"{feature}: {missing} not in {HERE}"
        if not named:
            untested.append(feature)
    assert untested == ["Client-side tasks"]


@pytest.mark.anyio
async def test_everything_listed_is_in_the_table() -> None:
    ours = " ".join(row[1] for row in _rows())
    async with Client(build_everything_server(FAST), mode="legacy") as client:
        with anyio.fail_after(WAIT):
            tools = [t.name for t in (await client.list_tools()).tools]
            prompts = [p.name for p in (await client.list_prompts()).prompts]
            templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
    # The conformance suite's fixtures have one row, naming their module; the module's lists of
    # them must match what is served, so no fixture hides a feature the table misses.
    fixtures = {
        *conformance_fixtures.TOOLS,
        *conformance_fixtures.PROMPTS,
        *conformance_fixtures.TEMPLATES,
    }
    served = {*tools, *prompts, *templates}
    assert fixtures <= served, f"listed as fixtures but not served: {fixtures - served}"
    assert "`servers/everything/conformance_fixtures.py`" in ours
    for name in served - fixtures:
        assert f"`{name}`" in ours, f"{name} is served but not in the README's parity table"
