"""A fetch's span: the host, whether robots.txt was read, each redirect followed, and the rule
that refused it or the status and size it got. Through a real MCP client, in memory, against
the fetcher tests' local site."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import anyio
import pytest
from mcp import Client

from servers.fetch import build_fetch_server
from tests.fetch.website import Site, running_site, settings
from tests.tracing.conftest import Traces
from tests.tracing.receiver import children
from tests.tracing.support import the

pytestmark = pytest.mark.anyio

ERROR = 2  # opentelemetry.proto Status.STATUS_CODE_ERROR


@pytest.fixture
async def site() -> AsyncGenerator[Site]:
    async with running_site() as running:
        yield running


async def test_a_redirect_chain_is_on_the_fetch_span(traces: Traces, site: Site) -> None:
    async with Client(build_fetch_server(settings())) as client:
        with anyio.fail_after(30):
            page = await client.call_tool("fetch", {"url": site.url("/chain/3")})
    assert not page.is_error
    followed = [path for path in site.paths() if path.startswith("/chain/")]
    assert followed == ["/chain/3", "/chain/2", "/chain/1", "/chain/0"]  # ground truth: 3 redirects
    spans = traces.collect()
    fetch = the(spans, "fetch")
    assert children(spans, the(spans, "tools/call fetch")) == [fetch]
    assert fetch.attributes == {
        "fetch.robots_txt": True,
        "server.address": "127.0.0.1",
        "url.scheme": "http",
        "fetch.outcome": "ok",
        "fetch.redirects": 3,
        "http.response.status_code": 200,
        "fetch.bytes": fetch.attributes["fetch.bytes"],
    }
    assert fetch.attributes["fetch.bytes"] > 0
    assert [name for name, _ in fetch.events] == ["redirect"] * 3
    assert [e["fetch.hop"] for _, e in fetch.events] == [1, 2, 3]
    assert {e["server.address"] for _, e in fetch.events} == {"127.0.0.1"}


async def test_a_refusal_names_its_rule_on_the_span(traces: Traces, site: Site) -> None:
    async with Client(build_fetch_server(settings())) as client:
        with anyio.fail_after(30):
            refused = await client.call_tool("fetch", {"url": site.url("/echo", host="internal.test")})
    assert refused.is_error
    assert site.paths() == []  # refused before anything was sent
    fetch = the(traces.collect(), "fetch")
    assert fetch.attributes["fetch.outcome"] == "refused"
    assert fetch.attributes["fetch.rule"] == "private"
    assert fetch.attributes["error.type"] == "AddressRefused"
    assert fetch.attributes["server.address"] == "internal.test"
    assert fetch.status_code == ERROR
    assert fetch.status_message == "AddressRefused"
