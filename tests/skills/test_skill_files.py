"""The skill's files: one text per tool mode, the Standard one identical to SKILL.md, each
covering the same rules, and every example in a form the suite can run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from servers.skills import SKILLS_DIR, SkillError, load_skill
from tests.skills.snippets import KINDS, SKILL_DIR, fences, mode_file, mode_text, path_of, snippets
from tool_modes.modes import MODES

TOPICS = {
    "preflight": r"^## Preflight",
    "one motion at a time": r"^## One motion at a time",
    "lost reply": r"^## When a flight action's reply is lost",
    "low battery": r"^## Low battery: land",
    "emergency": r"^## Emergency: only with confirmation",
    "verdict executed": r"\*\*executed\*\*.*\n?.*do not (send|invoke|call) it again",
    "verdict did not start": r"\*\*did not start\*\*(.|\n)*?safe to (send|invoke|call) the same action again",
    "verdict unknown": r"\*\*unknown\*\*(.|\n)*?before acting\s+again(.|\n)*?Never repeat the action blindly",
    "confirmation": r"confirm\"?: true",
    "freshness": r"freshness\.link",
    "battery threshold": r"20%",
}


def test_one_text_per_mode_and_standard_is_skill_md() -> None:
    assert SKILL_DIR == SKILLS_DIR / "drone-operations"
    assert sorted(p.stem for p in (SKILL_DIR / "modes").glob("*.md")) == sorted(MODES)
    assert mode_file("standard").read_bytes() == (SKILL_DIR / "SKILL.md").read_bytes()
    skill = load_skill(SKILL_DIR)
    assert [m.mode for m in skill.modes] == sorted(MODES)
    for mode in MODES:
        assert skill.mode(mode).text == mode_text(mode)
        assert path_of(mode) in skill.mode(mode).description


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_covers_every_rule(mode: str) -> None:
    text = mode_text(mode)
    missing = [topic for topic, pattern in TOPICS.items() if not re.search(pattern, text, re.MULTILINE)]
    assert missing == [], f"{mode} mode does not cover {missing}"


@pytest.mark.parametrize("mode", MODES)
def test_examples_are_well_formed(mode: str) -> None:
    examples = snippets(mode)
    known = [info for info, _ in fences(mode_text(mode)) if " ".join(info.split()[:2]) in KINDS]
    assert len(examples) == len(known) >= 3
    kinds = {s.kind for s in examples}
    assert ("js run_code" in kinds) == (mode in ("code", "codesearch"))
    for snippet in examples:
        if snippet.kind == "json tool-calls":
            for call in snippet.calls:
                assert set(call) <= {"tool", "arguments", "expect_error", "outcome"}, call
                assert isinstance(call.get("arguments", {}), dict), call
                assert call.get("outcome", "any") == "any", call
        else:
            assert "await " in snippet.body
    assert any(s.flies[0] for s in examples), f"{mode}: no example flies"
    # Every mode shows what to do with a lost reply, and the suite loses one each way.
    faults = {f.split(":")[0] for s in examples for f in s.faults}
    assert faults == {"lose-command", "lose-reply"}


def test_a_fence_without_flies_is_rejected() -> None:
    with pytest.raises(AssertionError, match="nothing of what the drone flies"):
        snippets("code", "```js run_code\nawait land({})\n```\n")
    body = json.dumps([{"tool": "land", "arguments": {}}])
    [parsed] = snippets("standard", f'```json tool-calls flies="land"\n{body}\n```\n')
    assert parsed.flies == (("land",),)


def _skill_copy(tmp_path: Path) -> Path:
    target = tmp_path / "drone-operations"
    (target / "modes").mkdir(parents=True)
    (target / "SKILL.md").write_text((SKILL_DIR / "SKILL.md").read_text("utf-8"), "utf-8")
    return target


def test_a_mode_text_of_another_skill_is_refused(tmp_path: Path) -> None:
    target = _skill_copy(tmp_path)
    (target / "modes" / "search.md").write_text("---\nname: other\ndescription: x\n---\nbody\n", "utf-8")
    with pytest.raises(SkillError, match="must be the skill's"):
        load_skill(target)


def test_a_missing_mode_text_is_an_error(tmp_path: Path) -> None:
    skill = load_skill(_skill_copy(tmp_path))
    with pytest.raises(SkillError, match="no text for mode 'code'"):
        skill.mode("code")


def test_a_path_without_its_mode_text_keeps_the_standard_text(tmp_path: Path) -> None:
    """An install missing `modes/*.md` still serves (the shared Standard text), with a warning."""
    from mcp.server.mcpserver import MCPServer

    from servers.skills import register_mode_text

    server: MCPServer[None] = MCPServer(name="search-facade")
    assert register_mode_text(server, load_skill(_skill_copy(tmp_path)), "search") is False
    assert register_mode_text(server, load_skill(SKILL_DIR), "search") is True
