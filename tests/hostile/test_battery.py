"""Every hostile request of `battery.CASES` against every MCP endpoint of the suite, in both
protocol eras, over real HTTP: each gets the answer the case states, the drone receives nothing
but the link's keepalives, and the drone server still answers `get_state` normally."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx
import pytest
from mcp import Client

from tests.drone_server.harness import assert_nothing_sent, freshness_of, mark, structured
from tests.hostile.battery import (
    ANY_BODY,
    CASES,
    ENDPOINTS,
    ERAS,
    MAX_BODY_BYTES,
    RESULT,
    TOOL_ERROR,
    Case,
    Expect,
    render,
)
from tests.hostile.suite import Suite, messages, open_session, serving_suite

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def suite(anyio_backend: str) -> AsyncGenerator[Suite]:
    async with serving_suite(max_body_bytes=MAX_BODY_BYTES) as served:
        yield served


@pytest.fixture(scope="module")
async def http(suite: Suite) -> AsyncGenerator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=suite.base, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
async def sessions(suite: Suite, http: httpx.AsyncClient) -> dict[str, str | None]:
    """One handshake-era session per endpoint (None where the endpoint is stateless)."""
    return {endpoint: await open_session(http, endpoint, suite.host) for endpoint in ENDPOINTS}


@pytest.fixture(scope="module")
async def pilots(suite: Suite) -> AsyncGenerator[dict[str, Client]]:
    """A well-behaved client per era on `/drone`, to show the server still serves."""
    async with (
        Client(f"{suite.base}/drone", mode="legacy") as legacy,
        Client(f"{suite.base}/drone", mode="2026-07-28") as modern,
    ):
        yield {"legacy": legacy, "2026-07-28": modern}


def judge(case: Case, expect: Expect, response: httpx.Response) -> str | None:
    """What is wrong with `response`, or None."""
    if response.status_code not in expect.statuses():
        return f"status {response.status_code} (want {expect.status}): {response.text[:200]!r}"
    if expect.outcome == ANY_BODY:
        return None
    received = messages(response)
    if len(received) != 1:
        return f"want one JSON-RPC message, got {received!r:.200}"
    message: dict[str, Any] = received[0]
    if isinstance(expect.outcome, int):
        code = message.get("error", {}).get("code")
        return (
            None if code == expect.outcome else f"error code {code} (want {expect.outcome}): {message!r:.200}"
        )
    result = message.get("result")
    if not isinstance(result, dict):
        return f"want a result: {message!r:.200}"
    if expect.outcome == TOOL_ERROR and result.get("isError") is not True:
        return f"want isError: {result!r:.200}"
    assert expect.outcome in (RESULT, TOOL_ERROR), case
    return None


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_hostile_request(
    case: Case,
    suite: Suite,
    http: httpx.AsyncClient,
    sessions: dict[str, str | None],
    pilots: dict[str, Client],
) -> None:
    wrong: list[str] = []
    for era in ERAS:
        for endpoint in ENDPOINTS:
            other = next(s for e, s in sessions.items() if e != endpoint and s is not None)
            request = render(
                case, endpoint, era, host=suite.host, session=sessions[endpoint], other_session=other
            )
            since = mark(suite.truth)
            response = await http.request(
                request.method, endpoint, headers=request.headers, content=request.content
            )
            problem = judge(case, case.expect(era, stateless=sessions[endpoint] is None), response)
            if problem is not None:
                wrong.append(f"{era} {endpoint}: {problem}")
            assert_nothing_sent(suite.truth, since)
            state = structured(await pilots[era].call_tool("get_state", {}))
            assert freshness_of(state)["link"] == "connected", state
    assert not wrong, "\n".join(wrong)
    assert not suite.runtime.link.is_flying()
