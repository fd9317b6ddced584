"""Fetch metrics through a real MCP client against the local test site, scraped with
Prometheus's parser: fetches by outcome and by the rule that refused them, and the bytes
fetched, checked against what the site served."""

from __future__ import annotations

import httpx
import pytest
from mcp import Client

from servers.fetch import build_fetch_server
from tests.fetch.fetch_client import text_of
from tests.fetch.website import Site, settings
from tests.metrics.scrape import scrape_app

pytestmark = pytest.mark.anyio

FETCHES = "tello_mcp_fetches_total"
BYTES = "tello_mcp_fetch_response_bytes_total"


async def test_fetches_by_outcome_and_rule_and_bytes_fetched(site: Site) -> None:
    async with httpx.AsyncClient() as http:
        served = len((await http.get(site.url("/text"))).content)
    before = await scrape_app()
    async with Client(build_fetch_server(settings())) as client:
        ok = await client.call_tool("fetch", {"url": site.url("/text")})
        assert not ok.is_error, text_of(ok)
        metadata = await client.call_tool("fetch", {"url": "http://169.254.169.254/latest/meta-data/"})
        assert "Refused by rule" in text_of(metadata)
        scheme = await client.call_tool("fetch", {"url": "file:///etc/passwd"})
        assert "Refused by rule 'scheme'" in text_of(scheme)
        missing = await client.call_tool("fetch", {"url": site.url("/status/404")})
        assert missing.is_error
        assert "Refused" not in text_of(missing)
    after = await scrape_app()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta(FETCHES, outcome="ok", rule="none") == 1
    assert delta(FETCHES, outcome="refused", rule="scheme") == 1
    assert delta(FETCHES, outcome="failed", rule="none") == 1
    # The metadata address, counted under its rule's name:
    assert sum(delta(FETCHES, outcome="refused", rule=r) for r in ("link-local", "cloud-metadata")) == 1
    assert delta(BYTES) == served  # the one page fetched; refusals and failures fetched nothing
    assert "169.254.169.254" not in after.text
    assert "/etc/passwd" not in after.text
