"""Request bodies holding more JSON structure than the SDK can validate in a few milliseconds
are refused (413) before it sees them; `json_shape` counts structure without parsing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers.security import MAX_JSON_CONTAINERS, MAX_JSON_VALUES, json_shape
from tests.support.eras import ACCEPT
from tests.support.serve import serving

pytestmark = pytest.mark.anyio


def _exact(value: Any) -> tuple[int, int]:
    """(containers, values) counted on the parsed value: the truth `json_shape` bounds."""
    if isinstance(value, dict):
        inner = [_exact(v) for v in value.values()]
        return 1 + sum(c for c, _ in inner), len(value) + sum(v for _, v in inner)
    if isinstance(value, list):
        inner = [_exact(v) for v in value]
        return 1 + sum(c for c, _ in inner), len(value) + sum(v for _, v in inner)
    return 0, 0


@pytest.mark.parametrize(
    "value",
    [
        {"a": [{"k": i} for i in range(6000)]},
        {"code": "const a = [1, 2, {b: 3}];\n" * 3000},  # brackets inside a string
        {"s": ['he said "[{,"', "\\", '\\"[', "x\\\\", "]"] * 20000},  # escapes around brackets
        [[[[]]]] * 2000,
        {f"k{i}": [i, {"v": "[,{"}] for i in range(20000)},
    ],
)
def test_json_shape_bounds_what_the_parser_would_build(value: Any) -> None:
    containers, values = _exact(value)
    for text in (json.dumps(value), json.dumps(value, separators=(",", ":"))):
        counted = json_shape(text.encode())
        if counted[0] > MAX_JSON_CONTAINERS or counted[1] > MAX_JSON_VALUES:
            assert counted[0] == containers  # past a limit it counts exactly
            assert values <= counted[1] <= values + containers  # each container adds at most one
        else:
            assert counted[0] >= containers
            assert counted[1] >= values - containers


async def test_a_body_of_many_containers_is_refused_before_the_sdk(tmp_path: Path) -> None:
    nested = [json.loads("[" * 150 + "]" * 150) for _ in range(300)]
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "x", "extra": nested}},
    }
    command = [str(Path(sys.executable).parent / "tello-mcp"), "serve", "everything", "--port", "0"]
    async with serving(command, tmp_path / "stderr.log") as server, httpx.AsyncClient() as http:
        url = server.url("/everything")
        refused = await http.post(url, json=call, headers=ACCEPT)
        assert refused.status_code == 413
        assert f"at most {MAX_JSON_CONTAINERS}" in refused.json()["error"]
        # A script full of brackets is one string: it passes.
        script = {**call, "params": {"name": "echo", "arguments": {"message": "[{" * 20000}}}
        passed = await http.post(url, json=script, headers=ACCEPT)
        assert passed.status_code != 413
