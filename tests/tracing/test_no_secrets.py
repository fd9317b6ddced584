"""No secret in any span: not the bearer token, not what the user answered an elicitation,
not tool arguments (the emergency's confirm, a matrix text, a fetched URL's query), not a
script or what it threw. Every attribute, event, status and resource of every span the
process exported is scanned, the SDK's and the client's included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitRequestParams, ElicitResult

from servers.auth.settings import AccessSettings
from servers.fetch import build_fetch_server
from tests.drone_server.harness import http_settings, serving, text_of
from tests.fetch.website import running_site, settings
from tests.tracing.conftest import Traces
from tests.tracing.receiver import Received
from tests.tracing.support import Parent

pytestmark = pytest.mark.anyio

TOKEN: Final = "tok-5f0c1e9a7b3d4c2e8f6a"
ANSWER: Final = "answer-mark-91d2"
MATRIX: Final = "argmark7"
SCRIPT: Final = "script-mark-4be1"
QUERY: Final = "query-mark-77aa"
MARKS: Final = (TOKEN, ANSWER, MATRIX, SCRIPT, QUERY)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():  # pyright: ignore[reportUnknownVariableType]
            yield str(key)  # pyright: ignore[reportUnknownArgumentType]
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:  # pyright: ignore[reportUnknownVariableType]
            yield from strings(item)
    else:
        yield str(value)


def everything_in(span: Received) -> list[str]:
    out = [span.name, span.status_message, *strings(span.attributes), *strings(span.resource)]
    for name, attributes in span.events:
        out.extend([name, *strings(attributes)])
    return out


def assert_no_secret(spans: list[Received]) -> None:
    assert spans
    for span in spans:
        for text in everything_in(span):
            for mark in MARKS:
                assert mark not in text, f"{mark!r} in span {span.name!r}: {text!r}"
            lowered = text.lower()
            assert "authorization" not in lowered, (span.name, text)
            assert "bearer" not in lowered, (span.name, text)
        assert not any(key.endswith(("arguments", "confirm")) for key in span.attributes), span.attributes


async def accept(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    return ElicitResult(action="accept", content={"confirm": True, "note": ANSWER})


async def test_no_token_answer_argument_or_script_in_any_span(traces: Traces) -> None:
    parent = Parent.new()
    headers = {"Authorization": f"Bearer {TOKEN}", "traceparent": parent.traceparent}
    http = http_settings(access=AccessSettings(token=TOKEN))
    async with serving(http=http, land_first=False) as served, httpx2.AsyncClient(headers=headers) as raw:
        async with Client(
            streamable_http_client(served.url, http_client=raw), mode="legacy", elicitation_callback=accept
        ) as drone:
            with anyio.fail_after(60):
                assert not (await drone.call_tool("takeoff", {})).is_error
                shown = await drone.call_tool("show_matrix", {"mode": "scroll", "text": MATRIX})
                assert not shown.is_error, text_of(shown)
                stopped = await drone.call_tool("emergency", {"confirm": True})
                assert not stopped.is_error, text_of(stopped)  # asked, accepted: sent
        assert not served.truth.flying
        async with Client(
            streamable_http_client(f"{served.base}/drone-code", http_client=raw), mode="legacy"
        ) as code:
            with anyio.fail_after(60):
                ran = await code.call_tool("run_code", {"code": f"await get_battery({{}}); '{SCRIPT}'"})
                assert not ran.is_error, text_of(ran)
                threw = await code.call_tool("run_code", {"code": f"throw new Error('{SCRIPT}')"})
                assert threw.is_error
                assert SCRIPT in text_of(threw)  # the caller sees it; the trace does not
    spans = traces.collect()
    assert {"tools/call emergency", "sandbox.run", "drone.command"} <= {s.name for s in spans}
    sent = [s.attributes.get("drone.command") for s in spans if s.name == "drone.command"]
    assert "emergency" in sent
    assert "EXT mled" in sent  # the matrix command, by its verb only
    assert_no_secret(spans)


async def test_no_fetched_query_in_any_span(traces: Traces) -> None:
    async with running_site() as site, Client(build_fetch_server(settings())) as client:
        with anyio.fail_after(30):
            page = await client.call_tool("fetch", {"url": site.url(f"/page/docs?token={QUERY}")})
            refused = await client.call_tool(
                "fetch", {"url": site.url(f"/echo?token={QUERY}", host="internal.test")}
            )
        assert not page.is_error, text_of(page)
        assert refused.is_error
    spans = traces.collect()
    assert len([s for s in spans if s.name == "fetch"]) == 2
    assert_no_secret(spans)
