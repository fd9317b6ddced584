"""What `make run` serves (`tello-mcp serve --sim --flight-recording-dir ...`, a real process):
after a short flight through every kind of endpoint, `/metrics` carries every family the
registry defines (the README's table), and the samples say what the flight did."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from servers.metrics import families
from tests.drone_server.harness import text_of
from tests.metrics.scrape import Scrape, scrape
from tests.support.serve import serving

pytestmark = pytest.mark.anyio

TELLO_MCP = str(Path(sys.executable).parent / "tello-mcp")


async def test_every_family_is_served_after_a_short_flight(tmp_path: Path) -> None:
    flights = str(tmp_path / "flights")
    command = [TELLO_MCP, "serve", "--sim", "--port", "0", "--flight-recording-dir", flights]
    async with serving(command, tmp_path / "stderr.log") as served:
        drone_url = served.url("/drone")
        base = drone_url.removesuffix("/drone")
        with anyio.fail_after(120):
            async with Client(drone_url) as drone:
                for name, arguments in (
                    ("takeoff", {}),
                    ("move", {"direction": "forward", "distance_cm": 50}),
                    ("capture_photo", {}),
                ):
                    done = await drone.call_tool(name, arguments)
                    assert not done.is_error, text_of(done)
                refused = await drone.call_tool("move", {"direction": "up", "distance_cm": 500})
                assert "max_height_cm" in text_of(refused)
                landed = await drone.call_tool("land", {})
                assert not landed.is_error, text_of(landed)
            async with Client(served.url("/drone-code")) as code:
                ran = await code.call_tool("run_code", {"code": "(await get_battery({})).percent"})
                assert not ran.is_error, text_of(ran)
            async with Client(served.url("/fetch")) as fetch:
                blocked = await fetch.call_tool("fetch", {"url": "http://127.0.0.1/"})
                assert blocked.is_error  # loopback: refused before anything is sent
            scraped = await scrape(base)

    missing = [
        name
        for name, kind, _, _ in families()
        if (name.removesuffix("_total") if kind == "counter" else name) not in scraped.families
    ]
    assert not missing, missing
    calls = "tello_mcp_tool_calls_total"
    assert scraped.value(calls, path="/drone", tool="move", outcome="ok") == 1
    assert scraped.value(calls, path="/drone", tool="move", outcome="tool_error") == 1
    assert scraped.value(calls, path="/drone-code", tool="run_code", outcome="ok") == 1
    assert scraped.value("tello_mcp_safety_refusals_total", limit="max_height_cm", drone=_drone(scraped)) == 1
    assert scraped.value("tello_mcp_sandbox_runs_total", outcome="ok") == 1
    assert sum(v for (n, _), v in scraped.samples.items() if n == "tello_mcp_fetches_total") == 1
    drone = _drone(scraped)
    assert scraped.value("tello_mcp_drone_flying", drone=drone) == 0
    assert scraped.value("tello_mcp_drone_commands_total", drone=drone, command="takeoff", outcome="ok") == 1
    assert scraped.value("tello_mcp_drone_link_state_packets_total", drone=drone) > 10
    assert scraped.value("tello_mcp_drone_video_frames_decoded_total", drone=drone) >= 1
    assert scraped.value("tello_mcp_drone_link_status", drone=drone, status="connected") == 1


def _drone(scraped: Scrape) -> str:
    """The one drone's label (its address: the embedded simulator's ephemeral port)."""
    [labels] = scraped.labels_of("tello_mcp_drone_flying")
    return labels["drone"]
