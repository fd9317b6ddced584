"""A drone that never answers is warned about in the log, at start-up and every 30 s, with what
to check; the battery's refusal reads as one sentence; flight-log entries carry wall-clock time.

On virtual time: the link's clock is the loop's, so 65 s of silence take milliseconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import anyio
import pytest
import structlog

from servers.drone.core import commands
from servers.drone.core.errors import NotConnected
from servers.drone.link import SILENT_FIRST_WARNING_S, SILENT_WARNING_EVERY_S, DroneLink, LinkConfig
from tello_io.clock import LoopClock
from tello_io.datagram import MemoryNetwork
from tests.link.rig import Rig

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

NOBODY = "127.0.0.9"


def _silent_link() -> DroneLink:
    config = LinkConfig(drone_host=NOBODY, bind_host="127.0.0.1", state_host="127.0.0.1", state_port=0)
    return DroneLink(config, LoopClock(), network=MemoryNetwork())


def _max_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        deepest = max(deepest, depth)
    return deepest


async def test_a_silent_drone_is_warned_about_at_start_up_and_every_30_s() -> None:
    clock = LoopClock()
    with structlog.testing.capture_logs() as logs:
        started = clock.now()
        async with _silent_link() as link:
            await clock.sleep(SILENT_FIRST_WARNING_S + 2 * SILENT_WARNING_EVERY_S + 1)
            assert link.reading().reply_age_s is None
    warnings = [e for e in logs if e["event"] == "drone_not_answering"]
    assert len(warnings) == 3
    assert [w["silent_s"] for w in warnings] == pytest.approx(
        [SILENT_FIRST_WARNING_S + k * SILENT_WARNING_EVERY_S for k in range(3)], abs=0.2
    )
    assert {w["log_level"] for w in warnings} == {"warning"}
    for warning in warnings:
        assert warning["drone"] == f"{NOBODY}:8889"
        assert warning["heard"] == "never"
        for what in ("WiFi", "--drone-host", "TELLO_MCP_DRONE_HOST", "UDP 8890", "11111", "doctor"):
            assert what in warning["hint"], what
    assert clock.now() - started >= 2 * SILENT_WARNING_EVERY_S


async def test_a_drone_that_answers_gets_no_warning(rig: Rig) -> None:
    with structlog.testing.capture_logs() as logs:
        await rig.link.clock.sleep(SILENT_FIRST_WARNING_S + SILENT_WARNING_EVERY_S + 1)
    assert not [e for e in logs if e["event"] == "drone_not_answering"]


async def test_a_drone_that_falls_silent_is_warned_about_with_its_last_reply(rig: Rig) -> None:
    with structlog.testing.capture_logs() as logs:
        rig.sim.power_off()
        await rig.link.clock.sleep(2 * SILENT_WARNING_EVERY_S + 1)
    warnings = [e for e in logs if e["event"] == "drone_not_answering"]
    assert warnings
    assert warnings[-1]["heard"].startswith("last reply ")


async def test_the_battery_refusal_of_a_silent_drone_is_one_sentence_without_nested_brackets() -> None:
    async with _silent_link() as link:
        await link.clock.sleep(5)
        with anyio.fail_after(60), pytest.raises(NotConnected) as refused:
            await link.battery()
    text = str(refused.value)
    assert text.startswith("no battery reading: ")
    assert "No state packet has arrived yet" in text
    assert _max_depth(text) <= 1, text


async def test_flight_log_entries_carry_iso_8601_wall_clock_time_beside_link_seconds(rig: Rig) -> None:
    wall = 1_796_000_000.25  # 2026-11-29T...Z
    rig.link._wall = lambda: wall  # pyright: ignore[reportPrivateUsage]
    assert (await rig.call(commands.query("battery?"))).ok
    entry = rig.link.flight_log[-1]
    assert entry.wall == wall
    assert entry.wall_iso == datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry.wall_iso)
    assert entry.at == pytest.approx(rig.link.clock.now(), abs=2.0)  # seconds on the link's clock
