"""Shutdown: the server stops when asked, and lands a flying drone first (README: "Shutdown
lands a flying drone first (bounded wait), then closes the sockets")."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client

from drone_sim import FlightState, Outcome
from tests.drone_server.harness import TIME_SCALE, flying, serving, structured

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
LAND_S = 3.5
"""Simulated seconds a landing from hover height takes, plus a little."""
SHUTDOWN_BOUND = LAND_S / TIME_SCALE + 5.0
"""Real seconds a shutdown with one landing may take over HTTP: the landing, closing sockets and
uvicorn's own stop, with room for a loaded machine (the bound catches a hang, not slowness)."""


@pytest.mark.virtual_time
async def test_leaving_the_runtime_lands_the_simulated_drone() -> None:
    async with flying(land_first=False) as drone:
        sim = drone.sim
        async with Client(drone.server) as client:
            with anyio.fail_after(10):
                took_off = structured(await client.call_tool("takeoff", {}))
        assert took_off["state"]["flight"] == "flying"
        started = anyio.current_time()  # virtual seconds: the landing, not the machine's load
    took = anyio.current_time() - started
    assert sim.truth.executed[-1].text == "land"
    assert sim.truth.executed[-1].outcome is Outcome.DONE
    assert sim.truth.flight_state is FlightState.LANDED
    assert took < LAND_S + 0.5, f"shutdown took {took:.1f} simulated s"


async def test_cancelled_http_server_lands_the_simulated_drone() -> None:
    async with serving(land_first=False) as served:
        sim = served.sim
        async with Client(served.url, mode="2026-07-28") as client:
            with anyio.fail_after(10):
                structured(await client.call_tool("takeoff", {}))
        assert sim.truth.flying
        started = time.perf_counter()
    took = time.perf_counter() - started  # leaving `serving` cancels serve()
    assert [r.text for r in sim.truth.executed if r.text == "land"] == ["land"]
    assert sim.truth.flight_state is FlightState.LANDED
    assert took < SHUTDOWN_BOUND, f"shutdown took {took:.1f} s"


APP_CANCELLED = textwrap.dedent(
    """
    import anyio
    from servers.drone.app import build_drone_app
    from servers.drone.config import DroneSettings
    from servers.drone.runtime import DroneRuntime
    from servers.http import HttpSettings, serve
    from servers.logs import configure_logging

    async def main() -> None:
        configure_logging("json", "warning")  # stderr: stdout is for this test
        http = HttpSettings(port=0, shutdown_timeout=1.0)
        app = build_drone_app(DroneRuntime(DroneSettings(sim=True, time_scale=10)), http)
        async with anyio.create_task_group() as tg:
            await tg.start(serve, app, http)
            print("serving", flush=True)
            tg.cancel_scope.cancel()
        print("stopped", flush=True)

    anyio.run(main)
    """
)


async def test_drone_app_stops_when_serve_is_cancelled() -> None:
    """Regression: cancelling serve(build_drone_app(...)) used to spin forever (DroneRuntime left
    through an AsyncExitStack made the CancelledError its own __context__). Run in a child
    process: that failure was a synchronous loop no cancel scope could interrupt."""
    process = await anyio.open_process(
        [sys.executable, "-c", APP_CANCELLED], cwd=REPO, stdin=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(30):
            assert await lines.receive_until(b"\n", 4096) == b"serving"
        with anyio.move_on_after(10):
            await process.wait()
        assert process.returncode == 0, "still running 10 s after cancellation"
        assert await lines.receive_until(b"\n", 4096) == b"stopped"
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.move_on_after(10):
            await process.wait()
        await process.aclose()
