"""The fetch tool through a real MCP client against the local test site.

What comes back (markdown, text, JSON, pages of a long document), and every refusal: each
one names its rule, and the test site's request log shows nothing was sent where the rule
said no.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import tracemalloc

import pytest
from mcp import Client

from servers.fetch import DEFAULT_USER_AGENT, build_fetch_server
from tests.fetch.fetch_client import call, fetched, refused, text_of
from tests.fetch.website import BOMB_BYTES, HUGE_BYTES, MiB, Resolver, Site, settings
from tests.support.eras import ERAS

pytestmark = pytest.mark.anyio


async def test_tool_is_listed_like_the_reference() -> None:
    async with Client(build_fetch_server(settings())) as client:
        tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == ["fetch"]
    schema = tools[0].input_schema
    assert schema["required"] == ["url"]
    props = schema["properties"]
    assert props["max_length"]["default"] == 5000
    assert props["start_index"]["default"] == 0
    assert props["raw"]["default"] is False
    assert tools[0].output_schema is None
    assert tools[0].annotations is not None
    assert tools[0].annotations.read_only_hint is True
    assert tools[0].annotations.open_world_hint is True


@pytest.mark.parametrize("mode", ERAS)
async def test_article_becomes_markdown_without_boilerplate(site: Site, mode: str) -> None:
    url = site.url("/page/article")
    result = await call(settings(), url, mode=mode, max_length=20_000)
    text = text_of(result)
    assert not result.is_error, text
    assert result.structured_content is None
    assert text.startswith(f"Contents of {url}:\n# City council approves riverside bike corridor")
    assert "## What changes for drivers" in text
    assert "- Speed limit on Harbor Drive drops from 50 to 40 km/h." in text
    assert "> — Councillor Priya Raman" in text
    for boilerplate in (
        "Accept all",
        "Most read",
        "Comments (214)",
        "Careers",
        "Storm closes ferry",
        "Subscribe for",
    ):
        assert boilerplate not in text, boilerplate


async def test_docs_page_keeps_code_blocks_and_tables(site: Site) -> None:
    text = await fetched(settings(), site.url("/page/docs"), max_length=20_000)
    assert "```python\nfrom flowkit import Client, policies\n\nclient = Client(" in text
    assert "```shell\n$ flowkit run --retry fixed" in text
    assert "| `max_attempts` | int | 3 | Attempts including the first one |" in text
    assert "Edit on GitHub" not in text
    assert "Circuit breakers" not in text


async def test_question_and_answers_all_come_through(site: Site) -> None:
    text = await fetched(settings(), site.url("/page/qa"), max_length=20_000)
    assert "What am I doing wrong?" in text
    assert "prefer a `TaskGroup`" in text
    assert "Keep a reference to every task you create." in text
    assert "Hot Network Questions" not in text


async def test_gzip_and_deflate_bodies_are_decoded(site: Site) -> None:
    for encoding in ("gzip", "deflate"):
        text = await fetched(settings(), site.url(f"/compressed/{encoding}"))
        assert "## 1. Turn on WAL mode, and mean it" in text


async def test_plain_text_comes_back_as_it_is(site: Site) -> None:
    text = await fetched(settings(), site.url("/text"), max_length=200)
    assert text.startswith("Content type text/plain cannot be simplified to markdown")
    assert "line 00000 of the plain text document\nline 00001" in text


async def test_json_comes_back_verbatim(site: Site) -> None:
    text = await fetched(settings(), site.url("/data.json"))
    prefix, _, rest = text.partition("\n")
    assert "application/json cannot be simplified" in prefix
    body = rest.split("\n", 1)[1]
    assert json.loads(body) == {"name": "tello", "tags": ["drone", "mcp"], "battery": 87}


async def test_raw_mode_returns_the_html_source(site: Site) -> None:
    text = await fetched(settings(), site.url("/page/article"), raw=True, max_length=50_000)
    assert text.startswith(f"Contents of {site.url('/page/article')}:\n<!DOCTYPE html>")
    assert '<nav class="main-nav"' in text


async def test_pagination_walks_the_whole_document(site: Site) -> None:
    url = site.url("/text")
    whole = await fetched(settings(), url, max_length=100_000)
    document = whole.split(":\n", 2)[2]
    pieces: list[str] = []
    start = 0
    for _ in range(30):
        text = await fetched(settings(), url, max_length=4000, start_index=start)
        body = text.split(":\n", 2)[2]
        hint = "\n\n<error>Content truncated. Call the fetch tool with a start_index of "
        if hint not in body:
            pieces.append(body)
            break
        body, _, tail = body.partition(hint)
        pieces.append(body)
        start = int(tail.split(" ", 1)[0])
        assert start == sum(len(p) for p in pieces)
    else:
        pytest.fail("pagination never ended")
    assert len(pieces) == -(-len(document) // 4000)
    assert "".join(pieces) == document
    past_end = await fetched(settings(), url, start_index=len(document) + 10)
    assert past_end.endswith("<error>No more content available.</error>")


async def test_max_length_default_comes_from_settings(site: Site) -> None:
    text = await fetched(settings(default_max_length=300), site.url("/text"))
    assert "start_index of 300 " in text


async def test_binary_content_is_not_returned(site: Site) -> None:
    result = await call(settings(), site.url("/image.png"))
    assert result.is_error
    assert "image/png, not text" in text_of(result)


async def test_http_error_status_is_an_error(site: Site) -> None:
    result = await call(settings(), site.url("/status/404"))
    assert result.is_error
    assert "answered HTTP 404" in text_of(result)


async def test_host_name_is_sent_while_the_checked_address_is_dialled(site: Site, dials: list[str]) -> None:
    resolver = Resolver()
    text = await fetched(settings(resolver), site.url("/echo", host="www.site.test"))
    echoed = json.loads(text.split("\n", 2)[2])
    assert echoed == {"host": f"www.site.test:{site.port}", "user_agent": DEFAULT_USER_AGENT}
    assert set(dials) == {"127.0.0.1"}
    assert resolver.asked == ["www.site.test", "www.site.test"]  # robots.txt hop, page hop


async def test_each_hop_dials_what_it_resolved_once_no_rebinding_window(site: Site, dials: list[str]) -> None:
    """A rebinding resolver: 127.0.0.1 (allowlisted) at check time, a private address after."""
    answers = iter([("127.0.0.1",)])

    class Rebinding(Resolver):
        async def __call__(self, host: str, port: int) -> list:  # type: ignore[override]
            self.asked.append(host)
            import ipaddress

            return [ipaddress.ip_address(a) for a in next(answers, ("10.0.0.9",))]

    resolver = Rebinding()
    text = await fetched(settings(resolver, robots_txt=False), site.url("/echo", host="rebind.test"))
    assert f"rebind.test:{site.port}" in text
    assert resolver.asked == ["rebind.test"]
    assert dials == ["127.0.0.1"]
    # The next resolution of the same name answers the private address, and is refused.
    await refused(settings(resolver, robots_txt=False), site.url("/echo", host="rebind.test"), "private")
    assert dials == ["127.0.0.1"]


async def test_user_agent_is_configurable_and_robots_rules_follow_it(site: Site) -> None:
    agent = "GreedyBot/2.0 (+https://example.org/bot)"
    await refused(settings(user_agent=agent), site.url("/page/article"), "robots.txt")
    text = await fetched(settings(user_agent=agent, robots_txt=False), site.url("/echo"))
    assert json.loads(text.split("\n", 2)[2])["user_agent"] == agent


async def test_robots_txt_disallow_is_obeyed(site: Site) -> None:
    before = len(site.requests)
    text = await refused(settings(), site.url("/private/plans"), "robots.txt")
    assert "disallows" in text
    assert site.paths()[before:] == ["/robots.txt"]
    assert "robots.txt should have kept you out" in await fetched(
        settings(robots_txt=False), site.url("/private/plans")
    )


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("forbidden-robots.test", False), ("broken-robots.test", False), ("missing-robots.test", True)],
)
async def test_robots_txt_status_codes(site: Site, host: str, allowed: bool) -> None:
    url = site.url("/page/blog", host=host)
    if allowed:
        assert "SQLite" in await fetched(settings(), url)
    else:
        text = await refused(settings(), url, "robots.txt")
        assert "answered HTTP" in text


async def test_robots_txt_fetch_obeys_the_address_rules_too(site: Site, dials: list[str]) -> None:
    await refused(settings(), site.url("/page/blog", host="sneaky-robots.test"), "private")
    assert set(dials) == {"127.0.0.1"}


async def test_robots_txt_is_checked_again_for_a_redirect_to_another_site(site: Site) -> None:
    before = len(site.requests)
    target = site.url("/private/plans", host="www.site.test")
    await refused(settings(), site.url("/redirect") + "?url=" + target, "robots.txt")
    assert [(host.split(":")[0], path) for host, path, _ in site.requests[before:]] == [
        ("127.0.0.1", "/robots.txt"),
        ("127.0.0.1", "/redirect"),
        ("www.site.test", "/robots.txt"),
    ]


async def test_redirect_chain_is_followed(site: Site) -> None:
    text = await fetched(settings(), site.url("/chain/4"))
    assert text.startswith(f"Contents of {site.url('/chain/0')}:\n# Arrived")


async def test_redirect_limit(site: Site) -> None:
    before = len(site.requests)
    text = await refused(settings(max_redirects=3), site.url("/chain/9"), "redirect-limit")
    assert "more than 3 times" in text
    assert site.paths()[before:] == ["/robots.txt", "/chain/9", "/chain/8", "/chain/7", "/chain/6"]


@pytest.mark.parametrize(
    ("location", "rule"),
    [
        ("http://10.0.0.7/admin", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "cloud-metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud-metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud-metadata"),
        ("http://0251.0376.0251.0376/", "cloud-metadata"),
        ("http://127.0.0.2/", "loopback"),
        ("http://0x7f.2/", "loopback"),
        ("http://2130706434/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.2]/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://internal.test/", "private"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "scheme"),
    ],
)
async def test_redirect_to_a_forbidden_place_is_refused(
    site: Site, dials: list[str], location: str, rule: str
) -> None:
    before = len(site.requests)
    url = site.url("/redirect") + "?url=" + location.replace("&", "%26")
    await refused(settings(), url, rule)
    assert site.paths()[before:] == ["/robots.txt", "/redirect"]
    assert set(dials) == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("internal.test", "private"),
        ("loopback-alias.test", "loopback"),
        ("metadata-alias.test", "cloud-metadata"),
        ("mixed.test", "private"),
        ("v6-mapped.test", "private"),
        ("cgnat.test", "private"),
        ("metadata.google.internal", "cloud-metadata"),
        ("localhost", "loopback"),
        ("api.localhost", "loopback"),
    ],
)
async def test_host_name_resolving_to_a_forbidden_address_is_refused(
    site: Site, dials: list[str], host: str, rule: str
) -> None:
    before = len(site.requests)
    text = await refused(settings(), site.url("/echo", host=host), rule)
    assert host in text
    assert dials == []
    assert len(site.requests) == before


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://2130706433/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "cloud-metadata"),
        ("http://0xa9fea9fe/", "cloud-metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://[fd12::1]/", "private"),
        ("https://192.0.2.1/", "non-global"),
        ("http://240.0.0.1/", "reserved"),
        ("file:///etc/passwd", "scheme"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://1.2.3.256/", "invalid-url"),
    ],
)
async def test_address_literals_are_refused_without_lookup_or_connection(
    dials: list[str], url: str, rule: str
) -> None:
    resolver = Resolver()
    await refused(settings(resolver, allow=()), url, rule)
    assert resolver.asked == []
    assert dials == []


async def test_allowlist_is_what_lets_the_tests_reach_loopback(site: Site, dials: list[str]) -> None:
    await refused(settings(allow=()), site.url("/echo"), "loopback")
    assert dials == []


async def test_unknown_host_is_a_clear_error(dials: list[str]) -> None:
    result = await call(settings(), "http://nowhere.test/")
    assert result.is_error
    assert "could not resolve nowhere.test" in text_of(result)
    assert dials == []


async def test_huge_body_is_cut_off_at_the_byte_cap(site: Site) -> None:
    started = time.perf_counter()
    text = await refused(settings(max_response_bytes=1024 * 1024), site.url("/huge"), "response-size")
    assert "more than 1048576 bytes" in text
    assert time.perf_counter() - started < 5, "the fetcher read far past the cap"
    assert HUGE_BYTES > 1024 * 1024


async def test_declared_huge_body_is_refused_before_download(site: Site) -> None:
    text = await refused(settings(), site.url("/huge-declared"), "response-size")
    assert "announces" in text


async def test_gzip_bomb_is_stopped_at_the_decompressed_cap(site: Site) -> None:
    """Inflation is bounded per chunk: peak memory stays near the cap, far below the bomb's size."""
    started = time.perf_counter()
    tracemalloc.start()
    try:
        text = await refused(settings(max_decompressed_bytes=MiB), site.url("/bomb"), "decompressed-size")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than 1048576 bytes" in text
    assert peak < 16 * MiB < BOMB_BYTES, f"peak {peak} bytes while inflating"
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("path", ["/stall/body", "/stall/headers"])
async def test_slow_responses_hit_the_time_cap(site: Site, path: str) -> None:
    started = time.perf_counter()
    text = await refused(settings(total_timeout=0.5), site.url(path), "total-time")
    assert "0.5s" in text
    assert time.perf_counter() - started < 3


async def test_slow_connect_hits_the_connect_time_cap() -> None:
    """A loopback listener whose accept queue is full: the kernel drops our SYN, connect hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            config = settings(connect_timeout=0.3, robots_txt=False)
            text = await refused(config, f"http://127.0.0.1:{port}/", "connect-time")
            assert "longer than 0.3s" in text
        finally:
            for filler in fillers:
                filler.close()


async def test_defaults_are_safe_without_any_settings() -> None:
    server = build_fetch_server()
    for url, rule in [
        ("http://127.0.0.1:1/", "loopback"),
        ("http://localhost:1/", "loopback"),
        ("http://[::1]:1/", "loopback"),
        ("http://169.254.169.254/", "cloud-metadata"),
    ]:
        await refused(server, url, rule)


async def test_invalid_arguments_are_tool_errors() -> None:
    server = build_fetch_server(settings())
    async with Client(server) as client:
        bad: list[dict[str, object]] = [
            {"url": "http://site.test/", "max_length": 0},
            {"url": "http://site.test/", "start_index": -1},
            {"max_length": 10},
        ]
        for arguments in bad:
            result = await client.call_tool("fetch", arguments)
            assert result.is_error, arguments


async def test_unreachable_site_is_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` now: the connection is refused (on loopback, immediately).
    for robots_txt in (True, False):
        result = await call(settings(robots_txt=robots_txt), f"http://127.0.0.1:{port}/")
        text = text_of(result)
        assert result.is_error
        assert "ConnectError" in text
        assert ("robots.txt is read before every page" in text) is robots_txt
