"""The deck's Recordings panel in a real browser (Debian's Chromium driven by Playwright, as
test_deck_browser.py): the flight flown over MCP appears while it is recorded, and once landed
it downloads, byte for byte the recorder's file, reading back where ground truth put the
drone; with access control on the page's token carries the download; with recording off
the panel says how to turn it on. Waits are Playwright's bounded `expect`; nothing sleeps."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from mcp import Client
from playwright.async_api import Browser, Page, expect

from servers.auth.settings import AccessSettings
from servers.drone.recorder import Recording, read_recording
from tests.drone_server.harness import Served, http_drone_settings, http_settings, serving, text_of

pytestmark = pytest.mark.anyio

ARTIFACTS = Path(__file__).resolve().parents[2] / ".cache" / "deck"
WAIT_MS = 15_000
TOKEN = "deck-recordings-token-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn and Playwright's driver need real time and asyncio


async def _recording_closed(served: Served) -> None:
    recorder = served.runtime.recorder
    assert recorder is not None
    with anyio.fail_after(30):
        while recorder.recording is not None:
            await served.runtime.link.wait_changed()


async def _download(page: Page, name: str, into: Path) -> bytes:
    async with page.expect_download(timeout=WAIT_MS) as started:
        await page.locator(f'#recordings-rows tr[data-name="{name}"] a.download').click()
    download = await started.value
    assert download.suggested_filename == name
    await download.save_as(into)
    return await anyio.Path(into).read_bytes()


async def test_the_panel_lists_the_flight_and_downloads_it(browser: Browser, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    recordings = tmp_path / "flights"
    async with serving(http_drone_settings(flight_recording_dir=str(recordings))) as served:
        page = await browser.new_page(viewport={"width": 1280, "height": 1400})
        await page.goto(f"{served.base}/deck")
        status = page.locator("#recordings-status")
        await expect(status).to_have_text("no flights recorded yet", timeout=WAIT_MS)

        async with Client(served.url) as agent:
            for name, args in (("takeoff", {}), ("move", {"direction": "forward", "distance_cm": 100})):
                result = await agent.call_tool(name, args)
                assert not result.is_error, text_of(result)
            rows = page.locator("#recordings-rows tr")
            await expect(rows).to_have_count(1, timeout=WAIT_MS)
            await expect(rows.first).to_contain_text("recording…", timeout=WAIT_MS)
            pose = served.truth.pose
            landed = await agent.call_tool("land", {})
            assert not landed.is_error, text_of(landed)
        await _recording_closed(served)

        [name] = os.listdir(recordings)
        row = page.locator(f'#recordings-rows tr[data-name="{name}"]')
        await expect(row).to_contain_text(" s", timeout=WAIT_MS)
        await expect(row).not_to_contain_text("recording…")
        await expect(status).to_have_text("1 recorded")
        await page.locator("#recordings").screenshot(path=str(ARTIFACTS / "deck-recordings.png"))
        saved = tmp_path / "saved.mcap"
        content = await _download(page, name, saved)
        assert content == await anyio.Path(recordings / name).read_bytes()
        await page.close()

    messages = read_recording(saved)
    log = [m.data["command"] for m in messages if m.topic == "/drone/flight_log"]
    assert [c for c in log if c in ("takeoff", "forward 100", "land")] == ["takeoff", "forward 100", "land"]
    last = [m.data["pose"]["position"] for m in messages if m.topic == "/drone/pose"][-1]
    assert abs(last["x"] * 100 - pose.x) <= 15, (last, pose)  # the sim's drift, in cm
    assert abs(last["y"] * 100 - pose.y) <= 15, (last, pose)


async def test_with_access_control_on_the_pages_token_carries_the_download(
    browser: Browser, tmp_path: Path
) -> None:
    recordings = tmp_path / "flights"
    recordings.mkdir()
    name = "flight-20260101T000000Z.mcap"  # a flight of an earlier run
    recording = Recording(recordings / name, now=0.0)
    for i in range(50):
        recording.write("/drone/state", i / 10, {"t_s": i / 10, "height_cm": 80})
    recording.close()
    access = AccessSettings(token=TOKEN, static_scopes=("drone:read",))
    settings = http_drone_settings(flight_recording_dir=str(recordings))
    async with serving(settings, http=http_settings(access=access)) as served:
        page = await browser.new_page()
        await page.goto(f"{served.base}/deck")
        status = page.locator("#recordings-status")
        await expect(page.locator("#link-age")).to_have_text("deck 401", timeout=WAIT_MS)  # no token
        await expect(status).to_have_text("the list comes with the deck's stream")
        await expect(page.locator("#recordings-rows tr")).to_have_count(0)
        await page.fill("#token", TOKEN)
        await page.click("#token-form button")
        await expect(status).to_have_text("1 recorded", timeout=WAIT_MS)
        await expect(page.locator(f'#recordings-rows tr[data-name="{name}"]')).to_contain_text("4.9 s")
        content = await _download(page, name, tmp_path / "saved.mcap")
        assert content == await anyio.Path(recordings / name).read_bytes()
        await page.close()


async def test_with_recording_off_the_panel_says_how_to_turn_it_on(browser: Browser) -> None:
    async with serving() as served:
        page = await browser.new_page()
        await page.goto(f"{served.base}/deck")
        await expect(page.locator("#recordings-status")).to_contain_text(
            "--flight-recording-dir", timeout=WAIT_MS
        )
        await page.close()
