"""`python -m benchmarks.verdicts`: a small run (one configuration at 30 % loss, a few actions,
simulator and server in their own processes) holds the issue-9 invariants on ground truth and
writes complete JSON; and the judging itself catches every kind of violation it reports.

No timing is asserted: wall times belong to the benchmark's output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.verdicts import (
    CLASSES,
    NON_IDEMPOTENT,
    Attempt,
    ConfigResult,
    configurations,
    judge,
    plan,
    render,
    server_accepts_time_scale,
    text_verdict,
)
from drone_sim.__main__ import build_parser as build_sim_parser

REPO = Path(__file__).resolve().parents[2]
ACTIONS = 5
TIME_SCALE = 2.0 if server_accepts_time_scale() else 1.0
"""Both processes on a scaled clock where the server allows it with an external drone."""


def test_small_run_holds_the_invariants_on_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "verdicts.json"
    argv = ["--loss", "0.3", "--faults", "", "--actions", str(ACTIONS), "--time-scale", f"{TIME_SCALE:g}"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.verdicts", *argv, "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    header, *rows = done.stdout.splitlines()[1:3]
    assert header.split()[:3] == ["faults", "actions", "ok"]
    assert rows[0].startswith("loss 30%"), done.stdout
    assert rows[0].endswith("OK"), done.stdout

    data = json.loads(out.read_text())
    assert data["ok"] is True
    assert data["options"] == {
        "actions": ACTIONS,
        "loss": [0.3],
        "faults": [],
        "time_scale": TIME_SCALE,
        "seed": 9,
    }
    [config] = data["configurations"]
    assert config["name"] == "loss 30%"
    assert config["sim_args"] == ["--loss", "0.3"]
    assert config["error"] is None
    assert config["contradictions"] == []
    assert config["double_executions"] == {}
    assert config["silence_events"] == 0
    assert config["ok"] is True
    planned = {a.text for a in plan(ACTIONS)}
    attempts: list[dict[str, Any]] = config["attempts"]
    assert config["actions"] == len(attempts) >= ACTIONS
    assert {a["text"] for a in attempts} == planned  # every action tried, nothing else
    assert sum(config["counts"].values()) == len(attempts)
    assert set(config["counts"]) == set(CLASSES)
    assert sum(config["checked"].values()) == sum(
        config["counts"][k] for k in ("ok", "executed", "did_not_start")
    )
    for a in attempts:
        if a["outcome"] in ("executed", "did_not_start"):
            assert a["evidence"], a  # a verdict always comes with its evidence
    # The simulator's own account, as the script read it: it ran nothing that was not planned.
    assert set(config["executed_by_text"]) <= planned
    assert config["events"].get("sdk_entered", 0) >= 1
    assert (Path(data["logs"]) / "loss-30.truth.jsonl").is_file()


# ---- the judging, on made-up ground truth ------------------------------------------------------


def _attempt(text: str, outcome: str, detail: str = "") -> Attempt:
    return Attempt("move", {}, text, outcome, detail or outcome, None, None, 0.1)


def _ran(*texts: str, rejected: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"kind": "executed", "text": t, "flight_action": True, "outcome": "done"} for t in texts] + [
        {"kind": "executed", "text": t, "flight_action": True, "outcome": "rejected"} for t in rejected
    ]


def _judged(attempts: list[Attempt], truth: list[dict[str, Any]]) -> ConfigResult:
    result = ConfigResult("test", [], "legacy", attempts)
    judge(result, truth)
    return result


def test_judge_accepts_outcomes_the_truth_bears_out() -> None:
    result = _judged(
        [
            _attempt("up 20", "ok"),
            _attempt("cw 40", "executed"),
            _attempt("forward 30", "did_not_start"),
            _attempt("forward 30", "ok"),  # the re-send
            _attempt("back 30", "unknown"),  # may or may not have run
            _attempt("down 20", "unknown"),
            _attempt("go -150 0 0 60", "other", "refused: envelope"),
        ],
        _ran("up 20", "cw 40", "forward 30", "back 30", rejected=("go -150 0 0 60",)),
    )
    assert result.ok, result
    assert result.checked == {"ok": 2, "executed": 1, "did_not_start": 1}
    assert result.counts == {"ok": 2, "executed": 1, "did_not_start": 1, "unknown": 2, "other": 1}


@pytest.mark.parametrize(
    ("attempts", "truth", "wrong"),
    [
        ([_attempt("cw 40", "executed")], _ran(), "judged executed"),
        ([_attempt("up 20", "ok")], _ran(rejected=("up 20",)), "answered ok"),
        ([_attempt("up 20", "did_not_start")], _ran("up 20"), "did not start"),
        (
            [_attempt("up 20", "did_not_start"), _attempt("up 20", "ok")],
            _ran("up 20", "up 20"),
            "did not start",
        ),
        ([_attempt("up 20", "other", "refused: stale")], _ran("up 20"), "did not start"),
    ],
)
def test_judge_reports_a_verdict_the_truth_contradicts(
    attempts: list[Attempt], truth: list[dict[str, Any]], wrong: str
) -> None:
    result = _judged(attempts, truth)
    assert not result.ok
    [line] = result.contradictions
    assert wrong in line


def test_judge_reports_double_executions_and_silence() -> None:
    result = _judged(
        [_attempt("up 20", "unknown"), _attempt("land", "ok")],
        [
            *_ran("up 20", "up 20", "cw 90", "land", "land"),
            {"kind": "event", "t": 30.0, "event": "auto_land", "detail": "no command for 15 s"},
            {"kind": "event", "t": 31.0, "event": "sdk_exited", "detail": "no command for 15 s"},
            {"kind": "burst", "t": 17.0, "until": 20.0},
        ],
    )
    assert "land" not in NON_IDEMPOTENT  # landing twice is harmless
    assert result.double_executions == {"up 20": 1, "cw 90": 1}
    assert result.silence_events == 2
    assert result.bursts == 1
    assert not result.ok
    lines: list[str] = []
    render([result], lines.append)
    assert lines[1].split()[-1] == "BROKEN"
    assert any("too often: 'cw 90'" in line for line in lines)


def test_plan_flies_every_kind_of_action_once_per_text() -> None:
    actions = plan(24)
    texts = [a.text for a in actions]
    assert len(actions) == 24
    assert len(set(texts)) == len(texts)
    assert (texts[0], texts[-1]) == ("takeoff", "land")
    assert {a.tool for a in actions} == {"takeoff", "move", "rotate", "go_to", "land"}
    lengths = [a.arguments["distance_cm"] for a in actions if a.tool == "move"]
    assert min(lengths) < 50  # short moves
    assert max(lengths) >= 150  # and long ones


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        (
            "no reply to 'cw 40' within 5.9s, but the state stream shows it ran: yaw. Verdict: executed.",
            "executed",
        ),
        (
            "no reply ..., and the state stream shows it did not start: still. Verdict: did not start.",
            "did_not_start",
        ),
        ("no reply to 'up 20' within 8.0s: outcome unknown, the drone may have executed it.", "unknown"),
        ("height 310 cm is above the envelope", None),
    ],
)
def test_text_verdict_reads_the_tool_result_wording(text: str, verdict: str | None) -> None:
    assert text_verdict(text) == verdict


def test_every_configuration_names_its_simulator_faults() -> None:
    configs = configurations([0.0, 0.5], ["dup", "jitter", "burst"])
    assert [name for name, _ in configs][:2] == ["loss 0%", "loss 50%"]
    assert [args for _, args in configs][:2] == [["--loss", "0"], ["--loss", "0.5"]]
    parser = build_sim_parser()
    for _, args in configs:
        parsed = parser.parse_args(args)  # every one is a valid drone-sim command line
        assert parsed.loss in (0.0, 0.1, 0.5)
    assert parser.parse_args(configs[-1][1]).burst == (3.0, 20.0)
