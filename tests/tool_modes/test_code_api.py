"""`describe_api`: the run_code description as a typed API generated from the tool schemas."""

from __future__ import annotations

import json
from pathlib import Path

from mcp_types import Tool

from tool_modes.code import SandboxLimits, describe_api
from tool_modes.sandbox.api import js_names

DRONE_TOOLS = [
    Tool.model_validate(t) for t in json.loads((Path(__file__).parent / "drone_tools.json").read_text())
]


def test_full_api_has_typed_documented_signatures() -> None:
    text = describe_api(DRONE_TOOLS, index_only=False)
    for tool in DRONE_TOOLS:
        assert f"declare function {tool.name}(args" in text
    move = text[text.index("declare function move(") :]
    move = move[: move.index("}): Promise<any>;")]
    assert 'direction: "up" | "down" | "left" | "right" | "forward" | "back";' in move
    assert "distance_cm: number;" in move
    assert "/** 20..500 cm (integer, 20..500) */" in move
    assert "declare function get_state(args?: {}): Promise<any>;" in text
    led = text[text.index("declare function set_led(") :]
    assert "frequency_hz?: number | null;" in led
    assert 'default "solid"' in led
    assert "15 s of script CPU" in text
    assert all(len(line) <= 110 for line in text.split("```")[0].splitlines())
    assert "300 s awaiting tools" in text


def test_index_only_is_one_line_per_tool_and_points_at_get_tool() -> None:
    text = describe_api(DRONE_TOOLS, index_only=True, limits=SandboxLimits(exec_s=5))
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert [line.split("(")[0][2:] for line in lines] == [t.name for t in DRONE_TOOLS]
    assert "- move({direction, distance_cm}): " in text
    assert "- emergency({confirm}): " in text
    assert "get_tool" in text
    assert "declare function" not in text
    assert "5 s of script CPU" in text
    assert len(text) < len(describe_api(DRONE_TOOLS, index_only=False)) / 3


def test_tool_names_become_safe_unique_identifiers() -> None:
    tools = [
        Tool(name=n, input_schema={"type": "object"}) for n in ("get-sum", "a.b", "eval", "9lives", "get_sum")
    ]
    assert js_names(tools) == {
        "get-sum": "get_sum",
        "a.b": "a_b",
        "eval": "eval_",
        "9lives": "_9lives",
        "get_sum": "get_sum_",
    }
    text = describe_api(tools, index_only=False)
    assert 'Tool "get-sum".' in text


def test_output_schemas_become_return_types() -> None:
    tool = Tool(
        name="where",
        input_schema={"type": "object", "properties": {}},
        output_schema={
            "type": "object",
            "properties": {
                "pos": {"$ref": "#/$defs/Pos"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["pos"],
            "$defs": {"Pos": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
        },
    )
    text = describe_api([tool], index_only=False)
    assert "declare function where(args?: {}): Promise<{ pos: { x: number }; tags?: string[] }>;" in text
