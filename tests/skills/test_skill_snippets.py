"""Every checked example of every mode's skill text runs, as written, on that mode's path over
the simulator (virtual time; the sandbox of the code modes computes in no virtual time, see
`sandbox_clock.py`), and is judged by what the drone really did (`sim.truth`)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.skills.snippets import CODE_MODES, ModeDrone, Snippet, inject, mode_drone, runs, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

RUNS = runs()
IDS = [f"{s.mode}-{s.index}" + (f"-{fault.split(':')[0]}" if fault else "") for s, fault in RUNS]
ERA_OF = ("2026-07-28", "legacy")
"""Runs alternate between the two protocol eras (each block in one of them)."""

FLIGHT_S = 180.0
"""Virtual seconds one example may fly (the longest, a square with takeoff and landing, takes
about 30). In real time a run takes well under a second; the clock hold is bounded by
`sandbox_clock.MAX_HOLD_S`."""


async def _run_calls(drone: ModeDrone, snippet: Snippet) -> None:
    for step, call in enumerate(snippet.calls, 1):
        arguments: dict[str, Any] = call.get("arguments", {})
        where = f"step {step}: {call['tool']} {arguments}"
        result = await drone.call(call["tool"], arguments)
        expected = call.get("expect_error")
        if call.get("outcome") == "any":
            continue  # either way: the calls after it read the state and decide
        if expected is None:
            assert not result.is_error, f"{where}: {text_of(result)}"
        else:
            assert result.is_error, f"{where}: succeeded, expected an error with {expected!r}"
            assert expected in text_of(result), f"{where}: {text_of(result)}"


async def _run_code(drone: ModeDrone, snippet: Snippet) -> None:
    result = await drone.call("run_code", {"code": snippet.body})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    value: object = result.structured_content["result"]
    if not isinstance(value, dict):
        return
    # What the script says it saw must be what was so.
    reported: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
    truth = drone.truth
    if "flying" in reported:
        assert reported["flying"] is truth.flying, reported
    if "battery" in reported:
        assert abs(reported["battery"] - truth.battery_pct) <= 1, (reported, truth.battery_pct)
    if "go" in reported:  # a healthy simulator with a full battery: preflight must say go
        assert truth.battery_pct >= 20
        assert reported["go"] is True, reported


@pytest.mark.parametrize(("snippet", "fault"), RUNS, ids=IDS)
async def test_example_flies_as_judged_by_ground_truth(snippet: Snippet, fault: str | None) -> None:
    era = ERA_OF[RUNS.index((snippet, fault)) % 2]
    async with mode_drone(snippet.mode, era) as drone:  # pyright: ignore[reportArgumentType]
        if fault is not None:
            inject(drone, fault)
        with anyio.fail_after(FLIGHT_S):
            if snippet.kind == "json tool-calls":
                await _run_calls(drone, snippet)
            else:
                assert snippet.mode in CODE_MODES
                await _run_code(drone, snippet)
        flown = drone.flown()
        landed = not drone.truth.flying
        assert not drone.hold.expired, "the sandbox held the clock longer than MAX_HOLD_S"
    assert flown in snippet.flies, f"the drone flew {list(flown)}; expected one of {snippet.flies}"
    assert landed, "every example ends on the ground, as the skill teaches"
    if fault is not None:
        assert drone.injected == [fault], "the fault never hit: the example did not meet it"
        target = fault.partition(":")[2]
        twice = [c for c in flown if c.startswith(target)]
        assert len(twice) <= 1, f"{target!r} ran {len(twice)} times: a lost reply was repeated"
