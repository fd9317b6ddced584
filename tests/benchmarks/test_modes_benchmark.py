"""`python -m benchmarks.modes` runs (quick: one task per mode) and prints a complete table of
tasks that succeeded on the simulator's ground truth; a transcript that does the wrong thing
is reported as failed, not measured.

No timing is asserted: wall times belong to the benchmark's output, not to a test suite sharing
two cores.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcp_types import ImageContent

from benchmarks.modes import (
    COLUMNS,
    PATHS,
    QUICK,
    SQUARE_SIDE_CM,
    TASKS,
    TASKS_BY_KEY,
    Call,
    Lookup,
    image_tokens,
    jpeg_size,
    measure_one,
)
from tests.support.virtual import virtual_runtime
from tool_modes.code import CodeRunner
from tool_modes.modes import MODES

REPO = Path(__file__).resolve().parents[2]


def test_quick_benchmark_prints_a_complete_table_of_successful_tasks(tmp_path: Path) -> None:
    out = tmp_path / "modes.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.modes", "--quick", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout, done.stdout

    data = json.loads(out.read_text())
    measured = [(m["task"], m["mode"]) for m in data["measurements"]]
    assert measured == list(QUICK)
    assert {mode for _, mode in measured} == set(MODES)
    assert {task for task, _ in measured} == {t.key for t in TASKS}
    for m in data["measurements"]:
        assert m["ok"], m
        assert m["problems"] == [], m
        for figure in ("definition_tokens", "call_tokens", "result_tokens", "round_trips", "context_tokens"):
            assert m[figure] > 0, (figure, m)
        assert m["context_tokens"] > m["definition_tokens"]
    rounds = {m["mode"]: m["round_trips"] for m in data["measurements"]}
    assert rounds["code"] == 1  # one script
    assert rounds["codesearch"] >= 2  # get_tool, then one script
    assert rounds["standard"] == len(TASKS_BY_KEY["photo"].calls)

    # One Markdown table per mode, each with its header and a row per task measured, plus the summary.
    header = "| " + " | ".join(COLUMNS)
    tables = [t for t in done.stdout.split("\n\n") if t.startswith("| ")]
    per_mode = [t for t in tables if re.sub(r"\s+", " ", t).startswith(re.sub(r"\s+", " ", header))]
    assert len(per_mode) == len(MODES), done.stdout
    for (task, _), table in zip(QUICK, per_mode, strict=True):
        rows = table.splitlines()[2:]
        assert len(rows) == 1
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        assert len(cells) == len(COLUMNS)
        assert cells[0] == TASKS_BY_KEY[task].title
        assert cells[1] == "yes"
        assert all(re.fullmatch(r"[\d.]+", c) for c in cells[2:]), cells
    for mode in MODES:
        assert f"**{mode} ({PATHS[mode]})**" in done.stdout
    assert "**all modes**" in done.stdout


# ---- a transcript that does the wrong thing cannot produce a pretty table ----


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_a_transcript_that_flies_the_wrong_moves_fails_on_ground_truth() -> None:
    square = TASKS_BY_KEY["square"]
    three_sides = dataclasses.replace(
        square,
        calls=(
            Call("takeoff"),
            *(
                Call("move", {"direction": d, "distance_cm": SQUARE_SIDE_CM})
                for d in ("forward", "right", "back")
            ),
            Call("land"),
        ),
    )
    measured = await measure_one(three_sides, "standard", None, runtime=virtual_runtime())
    assert not measured.ok
    assert any("the drone flew" in p and "left 100" in p for p in measured.problems), measured.problems
    assert any("did not close" in p for p in measured.problems), measured.problems


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_a_wrong_answer_fails_against_the_drones_replies() -> None:
    sensors = TASKS_BY_KEY["sensors"]
    swapped = dataclasses.replace(
        sensors, answer=lambda r: {"height_cm": r[1].get("value"), "temperature_c": r[0].get("value")}
    )
    measured = await measure_one(swapped, "standard", None, runtime=virtual_runtime())
    assert not measured.ok
    assert any(p.startswith("answered height") for p in measured.problems), measured.problems
    assert any(p.startswith("answered temperature") for p in measured.problems), measured.problems


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_a_search_agent_that_never_finds_its_tool_fails() -> None:
    sensors = TASKS_BY_KEY["sensors"]
    lost = dataclasses.replace(sensors, lookups=(Lookup("set the LED colour", "get_sensor"),))
    measured = await measure_one(lost, "search", None, runtime=virtual_runtime())
    assert not measured.ok
    assert any("get_tool('set the LED colour') returned" in p for p in measured.problems), measured.problems
    assert measured.round_trips == 1  # the agent stopped: it had no schema for get_sensor


@pytest.mark.anyio
async def test_the_photo_reaches_the_model_in_code_mode() -> None:
    """Regression: `run_code` dropped a tool's image when the tool also returned structured
    content (capture_photo does), so the JPEG never reached the model."""
    async with CodeRunner(workers=1) as runner:
        measured = await measure_one(TASKS_BY_KEY["photo"], "code", runner)
    assert measured.problems == []


# ---- image accounting ----


def _jpeg_header(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline SOF0 segment: enough for `jpeg_size`."""
    app0 = b"\xff\xe0" + (16).to_bytes(2, "big") + b"JFIF\x00" + bytes(9)
    sof0 = (
        b"\xff\xc0" + (17).to_bytes(2, "big") + b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big")
    )
    return b"\xff\xd8" + app0 + sof0 + bytes(12)


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (480, 360, 231),  # the simulator's photo: 172,800 px / 750
        (960, 720, 922),
        (4000, 3000, 1534),  # scaled down to ~1.15 MP first
    ],
)
def test_image_tokens_follow_the_published_rate(width: int, height: int, expected: int) -> None:
    data = _jpeg_header(width, height)
    assert jpeg_size(data) == (width, height)
    image = ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type="image/jpeg")
    assert image_tokens(image) == expected


def test_a_non_jpeg_is_refused() -> None:
    with pytest.raises(ValueError, match="not a JPEG"):
        jpeg_size(b"\x89PNG\r\n")
