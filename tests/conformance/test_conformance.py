"""The official MCP conformance suite against every path of `tello-mcp serve --sim`, in both
revisions, plus the skills extension's scenarios on every drone path. The rules (what each
path must pass, the expected failures and their reasons) are in `tests.support.conformance`;
`make conformance` prints the same runs as a score table.

The suite (pinned) and a Node 22 binary are `npm install`ed into the cache on first use
(`make install` does it up front). One server serves the whole module; each run takes 1-7 s.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.conformance import (
    DRONE_PATHS,
    EXPECTED_FAILURES,
    FIXTURE_PATH,
    NOT_APPLICABLE,
    PATHS,
    PROTOCOL,
    REVISIONS,
    SKILLS,
    Check,
    Run,
    Suite,
    ensure_suite,
    problems,
    run_revision,
    run_skills,
    serving,
)


@pytest.fixture(scope="module")
def suite() -> Suite:
    return ensure_suite()


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serving() as url:
        yield url


@pytest.mark.parametrize("revision", REVISIONS)
@pytest.mark.parametrize("path", PATHS)
def test_path_passes_its_scenarios(suite: Suite, base: str, path: str, revision: str) -> None:
    run = run_revision(suite, base, path, revision)
    assert not problems(run), "\n".join(problems(run))


@pytest.mark.parametrize("path", DRONE_PATHS)
def test_drone_path_passes_every_skills_check(suite: Suite, base: str, path: str) -> None:
    run = run_skills(suite, base, path)
    assert {c.scenario for c in run.checks} >= set(SKILLS)
    assert not problems(run), "\n".join(problems(run))


# ---- the judge itself, on made-up results (no Node, no server) ----


def _run(path: str, revision: str, *checks: tuple[str, str, str]) -> Run:
    return Run(path, revision, [Check(scenario, id, status, "why") for scenario, id, status in checks])


def _protocol_passes(revision: str) -> list[tuple[str, str, str]]:
    return [(scenario, "ok", "SUCCESS") for scenario in PROTOCOL[revision]]


def test_a_failed_protocol_check_fails_any_path() -> None:
    run = _run("/drone", "2026-07-28", *_protocol_passes("2026-07-28"), ("caching", "ttl", "FAILURE"))
    assert problems(run) == ["caching:ttl: why"]


def test_fixture_scenarios_are_judged_on_the_fixture_path_only() -> None:
    fixture = ("tools-call-image", "tools-call-image", "FAILURE")
    assert problems(_run("/fetch", "2025-11-25", *_protocol_passes("2025-11-25"), fixture)) == []
    assert problems(_run(FIXTURE_PATH, "2025-11-25", fixture)) == ["tools-call-image:tools-call-image: why"]


def test_checks_that_call_a_fixture_are_not_judged_elsewhere() -> None:
    (key,) = [k for k in NOT_APPLICABLE if k.endswith("undeclared-capability")]
    scenario, check = key.split(":")
    assert (
        problems(_run("/drone", "2026-07-28", *_protocol_passes("2026-07-28"), (scenario, check, "FAILURE")))
        == []
    )
    assert problems(_run(FIXTURE_PATH, "2025-11-25", (scenario, check, "FAILURE"))) == [f"{key}: why"]


def test_a_protocol_scenario_that_did_not_run_fails() -> None:
    run = _run("/drone", "2025-11-25", *_protocol_passes("2025-11-25")[1:])
    assert problems(run) == [f"{PROTOCOL['2025-11-25'][0]}: did not run"]


def test_expected_failures_must_fail_and_nothing_else_may() -> None:
    (path, revision), expected = next(iter(EXPECTED_FAILURES.items()))
    keys = [key.split(":", 1) for key in expected]
    failing = [(scenario, check, "FAILURE") for scenario, check in keys]
    assert problems(_run(path, revision, *failing)) == []
    fixed = failing[0]
    stale = problems(_run(path, revision, *failing[1:], (fixed[0], fixed[1], "SUCCESS")))
    assert len(stale) == 1
    assert stale[0].startswith(f"{fixed[0]}:{fixed[1]}: expected to fail")


def test_a_skipped_skills_check_fails() -> None:
    passing = [(scenario, "ok", "SUCCESS") for scenario in SKILLS]
    assert problems(_run("/drone", "skills", *passing)) == []
    skipped = problems(_run("/drone", "skills", *passing, (SKILLS[0], "flag", "SKIPPED")))
    assert skipped == [f"{SKILLS[0]}:flag SKIPPED: why"]
