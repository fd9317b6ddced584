"""The deck's browser tests share one way to start Debian's Chromium through Playwright."""

from __future__ import annotations

import shutil
from collections.abc import AsyncGenerator
from typing import Final

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM: Final = "/usr/bin/chromium"
"""Debian's Chromium (`make install` installs it as root); Playwright downloads nothing."""


@pytest.fixture
async def browser() -> AsyncGenerator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium (as root)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            await b.close()
