"""Issue 9 through the real link: 22 flight actions over bad WiFi, judged by ground truth.

An agent flies a plan of short and long moves, rotations and `go`s through `DroneLink` (in some
cases while a second client reads the battery now and then: its reads go out beside the moves). It acts on
what the link tells it, as the skill says: "did not start" -> send the action again;
"executed" or "unknown" -> go on (a careful agent would look first; the test only needs not to
double an action); nothing sent (not connected, busy) -> wait for the link and try again.

Per fault, the simulator's ground truth (never the link's own account) must show:
- no auto-land and no SDK-mode exit: the drone heard from us often enough, whatever was pending;
- no plan step executed twice, although "did not start" verdicts are acted on;
- every "executed" verdict backed by the drone running that action inside the call, and every
  "did not start" verdict by the drone never running it before the agent sent it again;
- verdicts replace most "outcome unknown" results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from drone_sim import EventKind, Faults, Outcome
from servers.drone.core import commands
from servers.drone.core.commands import Command
from servers.drone.core.errors import CommandRejected, LinkBusy, NotConnected, OutcomeUnknown
from servers.drone.core.protocol import LinkStatus, ProtocolConfig
from tests.link.rig import Call, Rig, make_rig, verify_calls
from tests.support.flight_plan import FLIGHT_PLAN

pytestmark = pytest.mark.virtual_time

MAX_ATTEMPTS = 6
QUARANTINE_S = ProtocolConfig().quarantine_s


@dataclass(frozen=True)
class Weather:
    loss: float = 0.0
    dup: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    bursts: bool = False
    """3 s of total loss (commands, replies and state) every 12 s."""
    reader: bool = False
    """Another client reads the battery every 3 s (off where it would hide a silent link:
    its reads keep the drone alive as well as the keepalive does)."""


CASES = {
    "clean": Weather(),
    "loss-10": Weather(loss=0.1),
    "loss-30": Weather(loss=0.3),
    "loss-50": Weather(loss=0.5),
    "dup-30": Weather(dup=0.3, loss=0.1, reader=True),
    "jitter": Weather(delay_s=0.05, jitter_s=0.4, loss=0.1, reader=True),
    "bursts": Weather(bursts=True),
}
README_ROWS = {
    "clean": "none",
    "loss-10": "10 % loss each way",
    "loss-30": "30 % loss",
    "loss-50": "50 % loss",
    "dup-30": "10 % loss, 30 % duplicated replies",
    "jitter": "10 % loss, 50 ± 400 ms reply jitter",
    "bursts": "3 s blackouts (state too) every 12 s",
}
COLUMNS = ("calls", "ok", "executed", "did_not_start", "unknown")


def readme_row(label: str) -> dict[str, int]:
    """The README's verdict-count row for a case (the table in "The drone link's guarantees")."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == label and len(cells) == 1 + len(COLUMNS):
            return dict(zip(COLUMNS, map(int, cells[1:]), strict=True))
    raise AssertionError(f"no README row {label!r}")


async def _bursts(rig: Rig) -> None:
    faults = rig.sim.faults
    while True:
        await rig.elapse(9.0)
        faults.loss, faults.state_dropout = 1.0, True
        await rig.elapse(3.0)
        faults.loss, faults.state_dropout = 0.0, False


async def _reader(rig: Rig) -> None:
    """Another client asking for the battery every 3 s, moves or not."""
    while True:
        await rig.elapse(3.0)
        await rig.call(commands.query("battery?"))


async def _fly(rig: Rig, command: Command) -> list[Call]:
    """One plan step, the way the skill tells an agent to act on each outcome."""
    attempts: list[Call] = []
    while len(attempts) < MAX_ATTEMPTS:
        call = await rig.call(command)
        attempts.append(call)
        match call.error:
            case None | CommandRejected():
                break
            case OutcomeUnknown(verdict="did_not_start"):
                continue
            case OutcomeUnknown():
                break
            case NotConnected() | LinkBusy():
                await rig.connected(timeout_s=30.0)
            case _:
                raise AssertionError(f"{call}: unexpected {call.error!r}")
    return attempts


async def _take_off(rig: Rig) -> None:
    for _ in range(MAX_ATTEMPTS):
        if rig.sim.truth.flying:
            return
        call = await rig.call(commands.simple("takeoff"))
        if isinstance(call.error, NotConnected | LinkBusy):
            await rig.connected(timeout_s=30.0)
        elif isinstance(call.error, OutcomeUnknown) and call.error.verdict != "did_not_start":
            await rig.until(lambda: not rig.sim.truth.flight_state.busy, 15.0, "takeoff to end")
    assert rig.sim.truth.flying, "could not take off"


def _ran(rig: Rig, text: str) -> list[float]:
    """When the drone began executing `text` (refusals excluded)."""
    return [r.t for r in rig.sim.truth.executed if r.text == text and r.outcome is not Outcome.REJECTED]


def _judge(rig: Rig, steps: Sequence[list[Call]]) -> Counter[str]:
    """Check every verdict against ground truth; count the outcomes of all flight calls."""
    problems: list[str] = []
    counts: Counter[str] = Counter()
    for attempts in steps:
        text = attempts[0].command.text
        ran = _ran(rig, text)
        if len(ran) > 1:
            problems.append(f"{text!r} ran {len(ran)} times: {ran}")
        for i, call in enumerate(attempts):
            match call.error:
                case None:
                    counts["ok"] += 1
                case OutcomeUnknown(verdict="executed"):
                    counts["executed"] += 1
                    if not any(call.t0 <= t <= call.t1 for t in ran):
                        problems.append(f"{call}: 'executed', but the drone did not run it then")
                case OutcomeUnknown(verdict="did_not_start"):
                    counts["did_not_start"] += 1
                    # Not before the agent's next attempt either: a late start would double it.
                    until = attempts[i + 1].t0 if i + 1 < len(attempts) else call.t1 + QUARANTINE_S
                    if any(call.t0 <= t <= until for t in ran):
                        problems.append(f"{call}: 'did not start', but the drone ran it")
                case OutcomeUnknown():
                    counts["unknown"] += 1
                case NotConnected() | LinkBusy():
                    counts["nothing_sent"] += 1
                case _:
                    counts["rejected"] += 1
    assert not problems, "\n".join(problems)
    return counts


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES)
async def test_bad_wifi_never_lands_the_drone_and_verdicts_match_ground_truth(case: str) -> None:
    weather = CASES[case]
    faults = Faults(
        seed=9, loss=weather.loss, dup=weather.dup, delay_s=weather.delay_s, jitter_s=weather.jitter_s
    )
    async with make_rig(faults=faults) as rig:
        await _take_off(rig)
        steps: list[list[Call]] = []
        async with anyio.create_task_group() as tg:
            if weather.reader:
                tg.start_soon(_reader, rig)
            if weather.bursts:
                tg.start_soon(_bursts, rig)
            steps.extend([await _fly(rig, command) for command in FLIGHT_PLAN])
            tg.cancel_scope.cancel()
        rig.faults_off()
        truth = rig.sim.truth
        assert truth.events_of(EventKind.AUTO_LAND) == [], "the drone landed itself: it heard nothing"
        assert truth.events_of(EventKind.SDK_EXITED) == []
        assert truth.flying
        counts = _judge(rig, steps)
        settled = counts["ok"] + counts["executed"] + counts["did_not_start"]
        assert counts["unknown"] <= settled / 4, counts
        if weather.loss >= 0.3:
            assert counts["executed"] + counts["did_not_start"] > counts["unknown"], counts
        # The run is deterministic (virtual time, seeded faults): the README's table is this run.
        counts["calls"] = sum(len(attempts) for attempts in steps)
        assert {c: counts[c] for c in COLUMNS} == readme_row(README_ROWS[case])
        # Every caller command, the battery reads beside the moves included, against truth.
        verify_calls(rig.sim, [c for c in rig.calls if c.command.verb != "land"])
        await rig.connected()
        assert rig.link.status() is LinkStatus.CONNECTED
