"""The suite's own routes (`/admin/drone-address`, `/drone-status`) against a web page in the
operator's browser: a cross-origin "simple" request (CSRF) and a DNS-rebound Host are refused
and change nothing; only JSON may change state; the probes stay open to any Host."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx
import pytest
from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servers.drone.app import ADMIN_ADDRESS_PATH, STATUS_PATH
from servers.http import ANY, HttpSettings, build_app
from tests.drone_server.harness import assert_nothing_sent, mark
from tests.hostile.suite import Suite, serving_suite

pytestmark = pytest.mark.anyio

EVIL: dict[str, str] = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
BODY = b'{"host": "127.0.0.9"}'


@pytest.fixture(scope="module")
async def suite(anyio_backend: str) -> AsyncGenerator[Suite]:
    async with serving_suite() as served:
        yield served


@pytest.fixture
async def http(suite: Suite) -> AsyncGenerator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=suite.base, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(EVIL, 403, id="cross-origin simple request (CSRF)"),
        pytest.param({"Host": "evil.example", "Content-Type": "text/plain"}, 421, id="DNS-rebound Host"),
        pytest.param(
            {"Host": "evil.example:8000", "Content-Type": "application/json"}, 421, id="rebound, JSON"
        ),
        pytest.param({"Origin": "null", "Content-Type": "application/json"}, 403, id="sandboxed page, JSON"),
        pytest.param({"Content-Type": "text/plain"}, 415, id="text/plain from loopback"),
        pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, 415, id="form post"),
        pytest.param({}, 415, id="no Content-Type"),
    ],
)
async def test_re_pointing_the_drone_is_refused(
    suite: Suite, http: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    before, since = suite.runtime.link.drone_address, mark(suite.truth)
    answer = await http.post(ADMIN_ADDRESS_PATH, headers=headers, content=BODY)
    assert answer.status_code == status, answer.text
    assert suite.runtime.link.drone_address == before
    assert (await http.get(ADMIN_ADDRESS_PATH)).json()["drone"] == before
    assert_nothing_sent(suite.truth, since)


async def test_the_operator_can_still_re_point_it(suite: Suite, http: httpx.AsyncClient) -> None:
    """Same request as JSON from a loopback page (or curl): accepted."""
    current = suite.runtime.link.drone_address
    host, port = current.rsplit(":", 1)
    answer = await http.post(
        ADMIN_ADDRESS_PATH,
        headers={"Origin": f"http://localhost:{suite.port}"},
        json={"host": host, "port": int(port)},
    )
    assert (answer.status_code, answer.json()["drone"]) == (200, current)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Host": "evil.example"}, 421), ({"Origin": "http://evil.example"}, 403), ({}, 200)],
    ids=["rebound Host", "foreign Origin", "loopback"],
)
@pytest.mark.parametrize("path", [STATUS_PATH, ADMIN_ADDRESS_PATH])
async def test_reading_operator_routes_needs_an_allowed_host_and_origin(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], status: int
) -> None:
    assert (await http.get(path, headers=headers)).status_code == status


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_answer_any_host(http: httpx.AsyncClient, path: str) -> None:
    """kubelet probes with the pod IP as Host, and a probe carries no Origin to check."""
    answer = await http.get(path, headers={"Host": "10.42.0.7:8000"})
    assert answer.status_code == 200, answer.text


async def test_with_host_checks_off_writes_still_need_json() -> None:
    """`allowed_hosts=*` (behind a gateway) turns the Host and Origin checks off, as for the MCP
    endpoints; the JSON-only rule for writes stays, since it costs legitimate clients nothing."""
    seen: list[object] = []

    async def admin(request: Request) -> Response:
        seen.append(await request.json())
        return JSONResponse({"ok": True})

    app = build_app(
        {"/toy": MCPServer("toy")},
        settings=HttpSettings(allowed_hosts=(ANY,), allowed_origins=()),
        extra_routes=[Route("/admin/x", admin, methods=["POST"])],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.internal") as client:
        refused = await client.post("/admin/x", headers=EVIL, content=BODY)
        allowed = await client.post(
            "/admin/x", headers={"Host": "drone-mcp:8000"}, json={"host": "127.0.0.9"}
        )
    assert (refused.status_code, allowed.status_code) == (415, 200)
    assert seen == [{"host": "127.0.0.9"}]
