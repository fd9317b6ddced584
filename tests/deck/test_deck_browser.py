"""The flight deck in a real browser: headless Chromium (Debian's, `/usr/bin/chromium`) driven
by Playwright, the page open while the simulator is flown over MCP, every check against the
simulator's ground truth. Waits are Playwright's bounded `expect` predicates, or the link's own
change events under a deadline; nothing sleeps. Screenshots go to `.cache/deck/` (gitignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.async_api import Browser, Page, expect

from tests.drone_server.harness import Served, executed, serving, text_of

pytestmark = pytest.mark.anyio

ARTIFACTS = Path(__file__).resolve().parents[2] / ".cache" / "deck"
WAIT_MS = 15_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn and Playwright's driver need real time and asyncio


async def _until(served: Served, predicate: object, within: float = 15.0) -> None:
    """Wait (bounded) for a ground-truth predicate, woken by the link's changes."""
    check = predicate  # a callable returning bool
    assert callable(check)
    with anyio.fail_after(within):
        while not check():
            await served.runtime.link.wait_changed()


async def test_the_deck_shows_the_flight_and_its_controls_act(browser: Browser) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with (
        serving() as served,
        httpx2.AsyncClient(timeout=30) as http,
        Client(streamable_http_client(served.url, http_client=http)) as agent,
    ):
        page: Page = await browser.new_page(viewport={"width": 1280, "height": 1000})
        await page.goto(f"{served.base}/deck")
        await expect(page.locator("#link-status")).to_have_text("connected", timeout=WAIT_MS)
        await expect(page.locator("#banner")).to_be_hidden()

        # The battery the simulator reports, and a flight-log row for the call with its caller.
        battery = await agent.call_tool("get_battery", {})
        assert not battery.is_error, text_of(battery)
        await expect(page.locator("#t-battery")).to_have_text(str(served.truth.battery_pct), timeout=WAIT_MS)
        row = page.locator("#log-rows tr", has_text="battery?")
        await expect(row.first).to_contain_text("127.0.0.1", timeout=WAIT_MS)
        await expect(page.locator("#agents-rows")).to_contain_text("127.0.0.1", timeout=WAIT_MS)

        # Hold: the agent's takeoff is refused naming the hold, and nothing reaches the drone.
        await page.click("#btn-hold")
        await expect(page.locator("#hold-banner")).to_contain_text("ON HOLD", timeout=WAIT_MS)
        refused = await agent.call_tool("takeoff", {})
        assert refused.is_error
        assert "an operator has put the drone on hold" in text_of(refused)
        assert "takeoff" not in executed(served.truth)
        state = await agent.call_tool("get_state", {})
        assert (state.structured_content or {})["hold"]["by"] == "127.0.0.1"
        async with httpx.AsyncClient() as plain:
            status = (await plain.get(f"{served.base}/drone-status")).json()
        assert status["hold"]["by"] == "127.0.0.1"
        await expect(page.locator("#log-rows")).to_contain_text("on hold", timeout=WAIT_MS)

        # Released, it flies; the path's last point is where ground truth puts the drone.
        await page.click("#btn-release")
        await expect(page.locator("#hold-banner")).to_be_hidden(timeout=WAIT_MS)
        took_off = await agent.call_tool("takeoff", {})
        assert not took_off.is_error, text_of(took_off)
        moved = await agent.call_tool("move", {"direction": "forward", "distance_cm": 100})
        assert not moved.is_error, text_of(moved)
        last = page.locator("#path-last")
        await expect(last).to_have_attribute("data-x", re.compile(r"^100(\.0)?$"), timeout=WAIT_MS)
        pose = served.truth.pose
        shown_x = float(await last.get_attribute("data-x") or "nan")
        shown_y = float(await last.get_attribute("data-y") or "nan")
        margin = float(await last.get_attribute("data-u") or "0") + 15.0  # the sim's drift, in cm
        assert abs(shown_x - pose.x) <= margin, (shown_x, pose)
        assert abs(shown_y - pose.y) <= margin, (shown_y, pose)
        await page.screenshot(path=str(ARTIFACTS / "deck-flying.png"), full_page=True)

        # Emergency takes two steps on the page; then the simulator's motors stop.
        await page.click("#btn-emergency")
        assert served.truth.flying
        await page.click("#btn-emergency-confirm")
        await _until(served, lambda: not served.truth.flying)
        assert "emergency" in executed(served.truth)
        await expect(page.locator("#log-rows")).to_contain_text("emergency", timeout=WAIT_MS)
        await page.screenshot(path=str(ARTIFACTS / "deck-after-emergency.png"), full_page=True)
        await page.close()  # its stream ends with it, before the server shuts down


async def test_cross_origin_and_foreign_posts_to_controls_are_refused() -> None:
    async with serving() as served, httpx.AsyncClient() as http:
        before = len(served.truth.received)
        control = f"{served.base}/admin/deck/land"
        cases = [
            ({"Origin": "http://evil.example", "Content-Type": "application/json"}, 403),
            ({"Host": "evil.example", "Content-Type": "application/json"}, 421),
            ({"Content-Type": "text/plain"}, 415),  # a CORS-simple request is no control
        ]
        for headers, status in cases:
            answer = await http.post(control, content=b"{}", headers=headers)
            assert answer.status_code == status, (headers, answer.text)
        unconfirmed = await http.post(f"{served.base}/admin/deck/emergency", json={})
        assert unconfirmed.status_code == 400
        assert "confirm" in unconfirmed.text
        for body in (b"[", b"[1]", b'"x"'):
            bad = await http.post(control, content=body, headers={"Content-Type": "application/json"})
            assert bad.status_code == 400, body
        assert [d.data for d in served.truth.received[before:] if d.data != b"command"] == []
        page = await http.get(f"{served.base}/deck/events", headers={"Host": "evil.example"})
        assert page.status_code == 421
        ok = await http.get(f"{served.base}/drone-status")
        assert ok.status_code == 200
