"""The soak (`benchmarks/soak.py`) for 45 s: its zero-invariants and its resource baseline.

45 s is enough for two short sorties (takeoff, up, down, land: one action in each tool mode),
one reboot while landed, one new IP while flying and a stretch of loss and duplicates, with 15
other clients in both eras reading and calling the demo servers. Nothing here is about speed:
no figure of time is asserted, so a loaded machine makes the run slower, never red. The pilot
flies on past the 45 s until both one-off faults have happened, so the test always covers them
(the whole test takes ~65 s here, ~120 s with the machine loaded by others).

Resources are judged with the benchmark's own tolerance (`TOLERANCE`): sessions, asyncio tasks
and threads exactly back to the baseline taken after a warm-up at full concurrency (pools reach
their working size there), descriptors and sockets within 2 (a sandbox worker whose caller went
away mid-run is replaced in the background, and a replacement still starting holds pipes for
both for a moment). The end is read after up to `SETTLE_S` of settling, so a thread or task
that is merely on its way out does not count.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import pytest

from benchmarks.soak import (
    CLIENTS,
    MODES,
    NEW_IP,
    READER_TOOL,
    TOLERANCE,
    Flight,
    Resources,
    double_executions,
    soak,
)
from drone_sim.records import ExecutedCommand, Outcome

SOAK_S: Final = 45.0
DRONE: Final = ("127.0.0.1", 50000)


def executed(*rows: tuple[str, Outcome]) -> list[ExecutedCommand]:
    return [
        ExecutedCommand(seq=i, t=float(i), text=text, sender=DRONE, command=None, reply="ok", outcome=outcome)
        for i, (text, outcome) in enumerate(rows, start=1)
    ]


def test_double_execution_is_a_non_idempotent_command_run_more_often_than_asked() -> None:
    log = executed(
        ("takeoff", Outcome.DONE),
        ("up 20", Outcome.DONE),
        ("up 20", Outcome.INTERRUPTED),  # twice in the first sortie, asked once there
        ("cw 30", Outcome.DONE),
        ("takeoff", Outcome.REJECTED),  # rejected: nothing happened
        ("land", Outcome.DONE),
        ("land", Outcome.DONE),  # idempotent: the server may land by itself
        ("battery?", Outcome.DONE),
        ("up 20", Outcome.DONE),  # t=9: the second sortie
    )
    first = Flight(0.5, 8.5, Counter({"takeoff": 1, "up 20": 1, "cw 30": 1}))
    second = Flight(8.5, 20.0, Counter({"takeoff": 1, "up 20": 1}))
    assert double_executions(log, [first, second]) == {"up 20": 1}
    # A request lost in the second sortie does not excuse the double in the first.
    second.requested["up 20"] = 2
    assert double_executions(log, [first, second]) == {"up 20": 1}
    first.requested["up 20"] = 2
    assert double_executions(log, [first, second]) == {}
    # Outside every sortie nobody asked for anything.
    assert double_executions(log, [second]) == {"takeoff": 1, "up 20": 2, "cw 30": 1}


def test_resources_above_the_baseline_beyond_the_tolerance_are_leaks() -> None:
    base = Resources(rss_kib=1000, fds=20, sockets=8, threads=5, tasks=17, sessions=0)
    within = Resources(rss_kib=9000, fds=20 + TOLERANCE["fds"], sockets=7, threads=4, tasks=17, sessions=0)
    assert within.excess(base) == {}
    leaking = Resources(
        rss_kib=1000, fds=20 + TOLERANCE["fds"] + 1, sockets=8, threads=6, tasks=18, sessions=1
    )
    assert leaking.excess(base) == {"fds": TOLERANCE["fds"] + 1, "threads": 1, "tasks": 1, "sessions": 1}


@pytest.mark.anyio
@pytest.mark.timeout(SOAK_S + 240)
async def test_soak_runs_clean() -> None:
    report = await soak(SOAK_S, short_sorties=True, overrun_s=90.0)

    # It did what a soak must do, so the zeros below mean something.
    assert report.clients == CLIENTS
    for kind in READER_TOOL:
        assert report.succeeded.get(kind, 0) > 0, f"no {kind} call succeeded: {report.errors}"
    for mode in MODES:
        assert any(k.startswith("pilot ") and k.endswith(f" {mode}") for k in report.succeeded), mode
    assert report.sorties >= 2
    assert report.executed_actions > 0
    assert any(f.startswith("loss ") for f in report.faults), report.faults
    assert any(f.startswith("reboot ") and f.endswith("link back") for f in report.faults), report.faults
    assert any(f.startswith(f"new IP {NEW_IP}") and f.endswith("link back") for f in report.faults), (
        report.faults
    )
    assert report.peak_sessions > 0  # the session gauge sees the handshake-era clients

    # The invariants.
    assert report.double_executions == {}
    assert report.auto_lands_by_silence == 0
    assert report.crashes == 0
    assert report.leaks == {}, f"baseline {report.baseline}, end {report.end}"
