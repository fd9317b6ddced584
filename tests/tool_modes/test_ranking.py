"""`get_tool` ranking quality on a realistic tool set: the drone server's 15 tool definitions
(`drone_tools.json`, dumped from `servers.drone.tools`), against natural-language queries an
agent would send. Recall is asserted so that ranking regressions fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest
from mcp_types import Tool

from tool_modes.ranking import ToolIndex, tokenize

DRONE_TOOLS: Final = [
    Tool.model_validate(t)
    for t in json.loads((Path(__file__).with_name("drone_tools.json")).read_text(encoding="utf-8"))
]

LABELLED: Final = [
    ("how much battery is left", "get_battery"),
    ("battery", "get_battery"),
    ("check the charge level of the battery", "get_battery"),
    ("turn around", "rotate"),
    ("rotate", "rotate"),
    ("turn 90 degrees clockwise", "rotate"),
    ("spin left", "rotate"),
    ("take off", "takeoff"),
    ("start flying", "takeoff"),
    ("come down and land", "land"),
    ("land the drone", "land"),
    ("kill the motors now", "emergency"),
    ("emergency stop", "emergency"),
    ("hover in place", "stop"),
    ("stop moving", "stop"),
    ("fly forward 50 cm", "move"),
    ("go up one metre", "move"),
    ("move left", "move"),
    ("do a flip", "flip"),
    ("fly to coordinates x y z", "go_to"),
    ("fly to a mission pad", "go_to"),
    ("take a picture", "capture_photo"),
    ("what does the camera see", "capture_photo"),
    ("snapshot image", "capture_photo"),
    ("how high is the drone", "get_sensor"),
    ("temperature", "get_sensor"),
    ("read the barometer", "get_sensor"),
    ("wifi signal strength", "get_sensor"),
    ("is the drone connected", "get_state"),
    ("current position and telemetry", "get_state"),
    ("change flight speed", "set_speed"),
    ("make it faster", "set_speed"),
    ("set the led colour to red", "set_led"),
    ("blink the light", "set_led"),
    ("show text on the matrix display", "show_matrix"),
    ("scroll a message", "show_matrix"),
    ("draw a heart", "show_matrix"),
    ("get_batery", "get_battery"),
    ("capturePhoto", "capture_photo"),
    ("GoTo", "go_to"),
]

MIN_RECALL_AT_1: Final = 0.85
MIN_RECALL_AT_3: Final = 0.97


def test_fixture_is_the_drone_tool_set() -> None:
    assert len(DRONE_TOOLS) == 15
    assert {t.name for t in DRONE_TOOLS} >= {"get_battery", "rotate", "capture_photo", "emergency"}
    assert {want for _, want in LABELLED} == {t.name for t in DRONE_TOOLS}  # every tool is asked for


def test_recall_on_labelled_queries() -> None:
    index = ToolIndex(DRONE_TOOLS)
    at_1 = at_3 = 0
    misses: list[str] = []
    for query, want in LABELLED:
        ranked = [m.tool.name for m in index.search(query, limit=3)]
        at_1 += ranked[:1] == [want]
        at_3 += want in ranked
        if ranked[:1] != [want]:
            misses.append(f"{query!r}: {ranked} (want {want})")
    assert at_1 / len(LABELLED) >= MIN_RECALL_AT_1, misses
    assert at_3 / len(LABELLED) >= MIN_RECALL_AT_3, misses


@pytest.mark.parametrize("tool", DRONE_TOOLS, ids=lambda t: t.name)
def test_an_exact_name_always_ranks_first(tool: Tool) -> None:
    index = ToolIndex(DRONE_TOOLS)
    for query in (tool.name, tool.name.upper(), f"  {tool.name} "):
        first = index.search(query, limit=3)[0]
        assert first.tool.name == tool.name
        assert first.exact


def test_unknown_and_empty_queries_give_no_exception() -> None:
    index = ToolIndex(DRONE_TOOLS)
    assert index.search("", limit=3) == []
    assert index.search("xylophone quantum", limit=3) == []
    assert next(m.tool.name for m in index.search("rotat", limit=3)) == "rotate"
    assert index.search("battery", limit=0) == []
    assert ToolIndex([]).search("battery") == []


def test_tokenize_splits_cases_and_stems_plurals() -> None:
    assert tokenize("get_battery") == tokenize("getBattery") == tokenize("GetBattery") == ["get", "batteri"]
    assert tokenize("batteries") == tokenize("battery")
    assert tokenize("photos") == tokenize("photo")
    assert tokenize("HTTPServer go-to x2") == ["http", "server", "go", "to", "x", "2"]
    assert tokenize("how do I turn", query=True) == ["turn", "rotat"]
    assert tokenize("the a of", query=True) == ["the", "a", "of"]  # all stop words: kept


def test_ranking_scales_to_a_thousand_tools() -> None:
    synthetic = [
        Tool(
            name=f"tool_{i}_{word}",
            description=f"Does thing number {i} with the {word}.",
            input_schema={"type": "object", "properties": {f"{word}_id": {"type": "string"}}},
        )
        for i, word in enumerate(["alpha", "bravo", "charlie", "delta"] * 250)
    ]
    index = ToolIndex([*synthetic, *DRONE_TOOLS])
    assert index.search("how much battery is left", limit=3)[0].tool.name == "get_battery"
    assert index.search(synthetic[517].name, limit=3)[0].tool is synthetic[517]
    assert index.search("thing number 517", limit=3)[0].tool is synthetic[517]
