"""The skill's checked examples in SKILL.md (the Standard-mode text), run as written.

A block is a JSON list of `{"tool": ..., "arguments": {...}}` calls, optionally with
`"expect_error": "<text>"`: that call must come back `isError` with the text in its message;
`"outcome": "any"` lets it succeed or fail; every other call must succeed, with a result valid
against the tool's output schema. Each block flies a fresh (landed) simulated drone; its
`flies` attribute says which flight commands the drone executes (ground truth). All four
modes' texts, with the faults the blocks name, run on their own paths in tests/skills/.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from servers.skills import SKILLS_DIR
from tests.drone_server.harness import TOOL_NAMES, Schemas, connect, text_of
from tests.skills.snippets import Snippet, snippets

pytestmark = pytest.mark.anyio

SKILL = SKILLS_DIR / "drone-operations" / "SKILL.md"
BLOCKS = snippets("standard", SKILL.read_text("utf-8"))


def test_skill_has_checked_examples() -> None:
    assert len(BLOCKS) >= 3
    fences = SKILL.read_text("utf-8").count("```json tool-calls")
    assert fences == len(BLOCKS), "a tool-calls fence that does not parse as a block"
    assert {b.kind for b in BLOCKS} == {"json tool-calls"}
    for block in BLOCKS:
        assert block.calls, "empty block"
        for call in block.calls:
            assert set(call) <= {"tool", "arguments", "expect_error", "outcome"}, call
            assert call["tool"] in TOOL_NAMES, call
            assert isinstance(call.get("arguments", {}), dict), call
            assert call.get("outcome", "any") == "any", call
    assert any("expect_error" in call for block in BLOCKS for call in block.calls)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block-{b.index}" for b in BLOCKS])
@pytest.mark.virtual_time
async def test_skill_block_runs_as_written(block: Snippet) -> None:
    async with connect("memory-2026-07-28") as conn:
        schemas = await Schemas.of(conn.client)
        with anyio.fail_after(40):
            for step, call in enumerate(block.calls, 1):
                arguments: dict[str, Any] = call.get("arguments", {})
                where = f"step {step}: {call['tool']} {arguments}"
                result = await conn.client.call_tool(call["tool"], arguments)
                expected = call.get("expect_error")
                if call.get("outcome") == "any":
                    continue  # lost-reply examples: tests/skills runs them with the reply lost
                if expected is None:
                    assert not result.is_error, f"{where}: {text_of(result)}"
                    schemas.check(call["tool"], result)
                else:
                    assert result.is_error, f"{where}: succeeded, expected an error with {expected!r}"
                    assert expected in text_of(result), f"{where}: {text_of(result)}"
        flown = tuple(record.text for record in conn.truth.executed_actions())
        # Every example ends on the ground, as the skill teaches.
        assert not conn.truth.flying
    assert flown in block.flies, f"the drone flew {list(flown)}; expected one of {block.flies}"
