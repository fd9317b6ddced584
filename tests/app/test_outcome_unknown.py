"""A flight action whose reply never comes is never re-sent, and reports what the telemetry
proves with the state (here: it did not start) — also when the client asked for progress."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from mcp import Client
from mcp.types import TextContent

from servers.drone.runtime import DroneRuntime
from servers.drone.server import build_drone_server
from tests.support.virtual import virtual_runtime


@pytest.fixture
async def runtime(anyio_backend: object) -> AsyncIterator[DroneRuntime]:
    async with virtual_runtime() as rt:
        yield rt


async def until_ready(runtime: DroneRuntime) -> None:
    with anyio.fail_after(10):
        while not runtime.connected():
            await runtime.link.wait_changed()


@pytest.mark.anyio
@pytest.mark.virtual_time
@pytest.mark.parametrize("with_progress", [False, True], ids=["plain", "progress"])
async def test_unanswered_move_is_outcome_unknown_and_sent_once(
    runtime: DroneRuntime, with_progress: bool
) -> None:
    sim = runtime.sim
    assert sim is not None
    server, _ = build_drone_server(runtime)
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(server) as client:
        await until_ready(runtime)
        takeoff = await client.call_tool("takeoff", {})
        assert not takeoff.is_error, takeoff.content
        sim.faults.loss = 1.0  # every datagram from now on is lost, both ways
        with anyio.fail_after(30):
            result = await client.call_tool(
                "move",
                {"direction": "forward", "distance_cm": 20},
                progress_callback=on_progress if with_progress else None,
            )
    assert result.is_error
    [content] = result.content
    assert isinstance(content, TextContent)
    # Every datagram was lost both ways, while state kept flowing: the drone never heard the
    # move and the telemetry proves it (ground truth below: it never ran).
    assert "did not start" in content.text
    assert "NOT re-sent" in content.text
    assert not any(r.text == "forward 20" for r in sim.truth.executed)
    assert '"freshness"' in content.text  # the current state comes with it
    sent = [d.data.decode() for d in sim.truth.received if d.data.startswith(b"forward")]
    assert sent == ["forward 20"]  # one datagram, never a retry
    if with_progress:
        assert seen, "a long action reports progress while it runs"
        assert seen == sorted(seen)
