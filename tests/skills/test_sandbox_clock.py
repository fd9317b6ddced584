"""The clock hold that lets code-mode examples run on virtual time: JavaScript computing in the
sandbox's worker process takes no virtual time, and the drone's own waits still pass."""

from __future__ import annotations

import anyio
import pytest

from tests.skills.snippets import mode_drone, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

BUSY = "let x = 0; for (let i = 0; i < 2e6; i++) x += i % 7; const s = await get_state({}); [x, s.flight]"


async def test_computing_takes_no_virtual_time_and_flying_does() -> None:
    async with mode_drone("code", "2026-07-28") as drone:
        clock = drone.runtime.clock
        with anyio.fail_after(120):
            before = clock.now()
            busy = await drone.call("run_code", {"code": BUSY})
            computed = clock.now() - before
            before = clock.now()
            flight = await drone.call("run_code", {"code": "await takeoff({}); await land({}); 1"})
            flown = clock.now() - before
        assert not drone.hold.expired
        assert not drone.truth.flying
    assert not busy.is_error, text_of(busy)
    assert not flight.is_error, text_of(flight)
    assert busy.structured_content is not None
    assert busy.structured_content["result"][1] == "landed"
    assert computed == 0.0, f"the sandbox's computing moved virtual time by {computed} s"
    assert flown > 5.0, f"a takeoff and landing took only {flown} virtual s"  # ~5.5 s + ~3 s
