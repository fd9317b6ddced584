"""The fetcher served over streamable HTTP by `servers.http`, in both protocol eras."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from servers.fetch import build_fetch_server
from servers.http import HttpSettings, build_app, serve
from tests.fetch.fetch_client import text_of
from tests.fetch.website import Site, settings
from tests.support.eras import ERAS

pytestmark = pytest.mark.anyio


async def test_fetch_round_trip_over_http_in_both_eras(site: Site) -> None:
    http = HttpSettings(port=0)
    app = build_app({"/fetch": build_fetch_server(settings())}, settings=http)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, http)
        try:
            for era in ERAS:
                with anyio.fail_after(20):
                    async with Client(f"http://127.0.0.1:{port}/fetch", mode=era) as client:
                        tools = await client.list_tools()
                        assert [t.name for t in tools.tools] == ["fetch"]
                        page = await client.call_tool(
                            "fetch", {"url": site.url("/page/docs"), "max_length": 20_000}
                        )
                        assert not page.is_error, text_of(page)
                        assert "| `max_attempts` | int | 3 |" in text_of(page)
                        bad = await client.call_tool(
                            "fetch", {"url": site.url("/echo", host="internal.test")}
                        )
                        assert bad.is_error
                        assert "Refused by rule 'private'" in text_of(bad)
        finally:
            tg.cancel_scope.cancel()
