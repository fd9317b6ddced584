"""The skill's checked examples: every ```json tool-calls``` block in SKILL.md, run as written.

A block is a JSON list of `{"tool": ..., "arguments": {...}}` calls, optionally with
`"expect_error": "<text>"`: that call must come back `isError` with the text in its message,
every other call must succeed. Each block flies a fresh (landed) simulated drone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.drone_server.harness import TOOL_NAMES, Schemas, connect, text_of

pytestmark = pytest.mark.anyio

SKILL = Path(__file__).resolve().parents[2] / "skills" / "drone-operations" / "SKILL.md"
BLOCK = re.compile(r"^```json tool-calls\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks() -> list[list[dict[str, Any]]]:
    blocks: list[list[dict[str, Any]]] = [
        json.loads(body) for body in BLOCK.findall(SKILL.read_text("utf-8"))
    ]
    return blocks


BLOCKS = _blocks()


def test_skill_has_checked_examples() -> None:
    assert len(BLOCKS) >= 3
    fences = SKILL.read_text("utf-8").count("```json tool-calls")
    assert fences == len(BLOCKS), "a tool-calls fence that does not parse as a block"
    for block in BLOCKS:
        assert block, "empty block"
        for call in block:
            assert set(call) <= {"tool", "arguments", "expect_error"}, call
            assert call["tool"] in TOOL_NAMES, call
            assert isinstance(call.get("arguments", {}), dict), call
    assert any("expect_error" in call for block in BLOCKS for call in block)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block-{i + 1}" for i in range(len(BLOCKS))])
@pytest.mark.virtual_time
async def test_skill_block_runs_as_written(block: list[dict[str, Any]]) -> None:
    async with connect("memory-2026-07-28") as conn:
        schemas = await Schemas.of(conn.client)
        with anyio.fail_after(40):
            for step, call in enumerate(block, 1):
                where = f"step {step}: {call['tool']} {call.get('arguments', {})}"
                result = await conn.client.call_tool(call["tool"], call.get("arguments", {}))
                expected = call.get("expect_error")
                if expected is None:
                    assert not result.is_error, f"{where}: {text_of(result)}"
                    schemas.check(call["tool"], result)
                else:
                    assert result.is_error, f"{where}: succeeded, expected an error with {expected!r}"
                    assert expected in text_of(result), f"{where}: {text_of(result)}"
        # Every example ends on the ground, as the skill teaches.
        assert not conn.truth.flying
