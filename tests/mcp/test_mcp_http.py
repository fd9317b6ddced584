"""`servers.http`: two demo servers on one uvicorn, both protocol eras per path, probes, Host checks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent
from starlette.applications import Starlette

from servers.http import ANY, Endpoint, HttpSettings, build_app, serve
from tests.mcp.demo import GATEWAY_AUTHORITY, PATHS, DemoState, Served, build_demo, running
from tests.support.eras import ACCEPT, ERAS, LEGACY_INIT

pytestmark = pytest.mark.anyio

MODERN_LIST = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/list",
    "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    },
}
MODERN_HEADERS = {**ACCEPT, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}


def text_of(content: list[Any]) -> str:
    assert content
    assert isinstance(content[0], TextContent)
    return content[0].text


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", ERAS)
async def test_each_path_serves_each_era(served: Served, path: str, mode: str) -> None:
    with anyio.fail_after(10):
        async with Client(served.url(path), mode=mode) as client:
            assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")

            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(listed) == {"move", "refuse", "count", "hold"}
            move = listed["move"]
            distance = move.input_schema["properties"]["distance_cm"]
            assert (distance["minimum"], distance["maximum"]) == (20, 500)
            assert move.input_schema["properties"]["direction"]["enum"] == ["up", "down"]
            assert move.output_schema is not None
            assert move.output_schema["required"] == [
                "distance_cm",
                "direction",
            ]
            assert move.annotations is not None
            assert move.annotations.idempotent_hint is False

            moved = await client.call_tool("move", {"distance_cm": 40, "direction": "down"})
            assert not moved.is_error
            assert moved.structured_content == {"distance_cm": 40, "direction": "down"}


@pytest.mark.parametrize("mode", ERAS)
async def test_tool_failures_are_results_for_the_model(served: Served, mode: str) -> None:
    with anyio.fail_after(10):
        async with Client(served.url(), mode=mode) as client:
            too_far = await client.call_tool("move", {"distance_cm": 501})
            assert too_far.is_error
            assert too_far.structured_content is None
            assert "distance_cm" in text_of(too_far.content)
            assert "less than or equal to 500" in text_of(too_far.content)

            sideways = await client.call_tool("move", {"distance_cm": 50, "direction": "sideways"})
            assert sideways.is_error
            assert "direction" in text_of(sideways.content)

            refused = await client.call_tool("refuse", {"reason": "battery low"})
            assert refused.is_error
            assert text_of(refused.content) == "Error executing tool refuse: refused: battery low"

            unknown = await client.call_tool("no_such_tool", {})
            assert unknown.is_error
            assert text_of(unknown.content) == "Unknown tool: no_such_tool"


@pytest.mark.parametrize("mode", ERAS)
async def test_resources_prompts_and_progress(served: Served, mode: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    with anyio.fail_after(10):
        async with Client(served.url(PATHS[1]), mode=mode) as client:
            resource = await client.read_resource("demo://state")
            assert [c.model_dump(mode="json", exclude_none=True) for c in resource.contents] == [
                {"uri": "demo://state", "mime_type": "application/json", "text": '{"ok": true}'}
            ]
            prompt = await client.get_prompt("greet", {"who": "pilot"})
            assert text_of([prompt.messages[0].content]) == "Hello, pilot!"

            counted = await client.call_tool("count", {"steps": 3}, progress_callback=on_progress)
            assert counted.structured_content == {"result": 3}
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_auto_mode_picks_the_stateless_era(served: Served) -> None:
    with anyio.fail_after(10):
        async with Client(served.url(), mode="auto") as client:
            assert client.protocol_version == "2026-07-28"


@pytest.mark.parametrize("mode", ERAS)
async def test_in_memory_client_sees_the_same_server(mode: str) -> None:
    server = build_demo("memory", DemoState())
    with anyio.fail_after(10):
        async with Client(server, mode=mode) as client:
            refused = await client.call_tool("refuse", {"reason": "x"})
            too_short = await client.call_tool("move", {"distance_cm": 19})
    assert refused.is_error
    assert too_short.is_error
    assert "greater than or equal to 20" in text_of(too_short.content)


async def test_probes(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url(""), headers={"Host": "10.42.0.7:8000"}) as http:
        health = await http.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})

        ready = await http.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})

        served.ready[0] = False
        not_ready = await http.get("/readyz")
        assert (not_ready.status_code, not_ready.json()) == (
            503,
            {"ready": False, "reason": "ready check returned false"},
        )
        assert (await http.get("/healthz")).status_code == 200


async def test_readiness_reason_comes_from_the_exception() -> None:
    def ready() -> bool:
        raise ConnectionError("no state packet for 3.0 s")

    state = DemoState()
    settings = HttpSettings(port=0)
    app = build_app({"/x": build_demo("x", state)}, settings=settings, ready=ready)
    with anyio.fail_after(10):
        async with running(app, settings) as port, httpx.AsyncClient() as http:
            answer = await http.get(f"http://127.0.0.1:{port}/readyz")
            assert answer.status_code == 503
            assert answer.json() == {"ready": False, "reason": "ConnectionError: no state packet for 3.0 s"}


async def test_disallowed_host_and_origin_are_refused_by_the_sdk(served: Served) -> None:
    async with httpx.AsyncClient() as http:
        for body, headers in ((LEGACY_INIT, ACCEPT), (MODERN_LIST, MODERN_HEADERS)):
            bad_host = await http.post(
                served.url(), json=body, headers={**headers, "Host": "evil.example:8080"}
            )
            assert (bad_host.status_code, bad_host.text) == (421, "Invalid Host header")

            bad_origin = await http.post(
                served.url(), json=body, headers={**headers, "Origin": "http://evil.example"}
            )
            assert (bad_origin.status_code, bad_origin.text) == (403, "Invalid Origin header")

            inspector_ui = await http.post(
                served.url(), json=body, headers={**headers, "Origin": "http://localhost:6274"}
            )
            assert inspector_ui.status_code == 200


@pytest.mark.parametrize("mode", ERAS)
async def test_gateway_host_is_accepted(served: Served, mode: str) -> None:
    with anyio.fail_after(10):
        async with (
            httpx2.AsyncClient(headers={"Host": GATEWAY_AUTHORITY}) as http,
            Client(streamable_http_client(served.url(), http_client=http), mode=mode) as client,
        ):
            moved = await client.call_tool("move", {"distance_cm": 100})
    assert moved.structured_content == {"distance_cm": 100, "direction": "up"}


async def test_any_host_turns_the_sdk_check_off() -> None:
    settings = HttpSettings(port=0, allowed_hosts=(ANY,))
    app = build_app({"/x": build_demo("x", DemoState())}, settings=settings)
    with anyio.fail_after(10):
        async with running(app, settings) as port, httpx.AsyncClient() as http:
            answer = await http.post(
                f"http://127.0.0.1:{port}/x", json=LEGACY_INIT, headers={**ACCEPT, "Host": "whatever:1"}
            )
            assert answer.status_code == 200


async def test_shutdown_lets_the_request_in_flight_finish(capfd: pytest.CaptureFixture[str]) -> None:
    state = DemoState()

    def extra(_: Starlette) -> contextlib.AbstractAsyncContextManager[None]:
        return _recorded(state.events, "extra")

    settings = HttpSettings(port=0, shutdown_timeout=5.0)
    app = build_app({"/x": build_demo("x", state)}, settings=settings, lifespan_extra=extra)
    results: list[str] = []

    async def call_hold(url: str) -> None:
        async with Client(url, mode="2026-07-28") as client:
            await client.list_tools()  # so the result check needs no second request
            results.append(text_of((await client.call_tool("hold", {})).content))

    with anyio.fail_after(15):
        async with anyio.create_task_group() as outer, anyio.create_task_group() as server_group:
            port = await server_group.start(serve, app, settings)
            outer.start_soon(call_hold, f"http://127.0.0.1:{port}/x")
            await state.hold_entered.wait()
            server_group.cancel_scope.cancel()
            state.release.set()

    assert results == ["released"]
    assert state.events == ["extra up", "x up", "x down", "extra down"]
    assert capfd.readouterr().out == ""


@contextlib.asynccontextmanager
async def _recorded(order: list[str], name: str) -> AsyncGenerator[None]:
    order.append(f"{name} up")
    try:
        yield
    finally:
        order.append(f"{name} down")


def test_settings_translate_to_sdk_patterns() -> None:
    local = HttpSettings().transport_security()
    assert local.enable_dns_rebinding_protection
    assert "localhost" in local.allowed_hosts
    assert "localhost:*" in local.allowed_hosts
    assert "http://localhost:*" in local.allowed_origins

    pinned = HttpSettings(allowed_hosts=("gw:8080", "[::1]"), allowed_origins=("https://ui.example:*",))
    security = pinned.transport_security()
    assert security.allowed_hosts == ["gw:8080", "[::1]", "[::1]:*"]
    assert security.allowed_origins == ["https://ui.example", "https://ui.example:*"]

    cluster = HttpSettings.cluster()
    assert cluster.host == "0.0.0.0"
    assert not cluster.dns_rebinding_protection
    assert not cluster.transport_security().enable_dns_rebinding_protection

    named = HttpSettings.cluster(["drone-mcp.drone.svc.cluster.local"])
    assert named.dns_rebinding_protection
    assert "drone-mcp.drone.svc.cluster.local:*" in named.transport_security().allowed_hosts


@pytest.mark.parametrize(
    ("hosts", "origins", "match"),
    [
        (("*.svc.cluster.local",), (), "port wildcard only"),
        (("*:8000",), (), "port wildcard only"),
        (("*", "localhost"), (), "list it alone"),
        (("localhost",), ("*",), "needs allowed_hosts"),
        (("::1",), (), "bracketed"),
        (("gw:http",), (), "port must be a number"),
        ((), (), "empty"),
        (("localhost",), ("localhost:3000",), "scheme://host"),
        (("localhost",), ("http://localhost/",), "no path"),
    ],
)
def test_settings_reject_what_the_sdk_cannot_match(
    hosts: tuple[str, ...], origins: tuple[str, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        HttpSettings(allowed_hosts=hosts, allowed_origins=origins)


def test_build_app_rejects_bad_mounts() -> None:
    settings = HttpSettings()
    with pytest.raises(ValueError, match="reserved"):
        build_app({"/healthz": build_demo("h", DemoState())}, settings=settings)
    with pytest.raises(ValueError, match="look like"):
        build_app({"drone": build_demo("d", DemoState())}, settings=settings)


async def test_mcp_error_for_missing_prompt_argument(served: Served) -> None:
    with anyio.fail_after(10):
        async with Client(served.url(), mode="legacy") as client:
            with pytest.raises(MCPError, match="Missing required arguments"):
                await client.get_prompt("greet", {})


async def test_endpoint_overrides_session_handling_per_mount() -> None:
    state = DemoState()
    settings = HttpSettings(port=0)
    app = build_app(
        {"/sessions": build_demo("a", state), "/stateless": Endpoint(build_demo("b", state), stateless=True)},
        settings=settings,
    )
    with anyio.fail_after(10):
        async with running(app, settings) as port, httpx.AsyncClient() as http:
            base = f"http://127.0.0.1:{port}"
            with_session = await http.post(f"{base}/sessions", json=LEGACY_INIT, headers=ACCEPT)
            without = await http.post(f"{base}/stateless", json=LEGACY_INIT, headers=ACCEPT)
            assert with_session.status_code == without.status_code == 200
            assert "mcp-session-id" in with_session.headers
            assert "mcp-session-id" not in without.headers


async def test_shutdown_ends_listen_streams_gracefully() -> None:
    settings = HttpSettings(port=0, shutdown_timeout=30.0)  # a stream left open would outlast fail_after
    app = build_app({"/x": build_demo("x", DemoState())}, settings=settings)
    listening = anyio.Event()
    ended: list[str] = []

    async def listen(url: str) -> None:
        async with Client(url, mode="2026-07-28") as client, client.listen(tools_list_changed=True) as sub:
            listening.set()
            async for _ in sub:
                pass
            ended.append("graceful")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as outer, anyio.create_task_group() as server_group:
            port = await server_group.start(serve, app, settings)
            outer.start_soon(listen, f"http://127.0.0.1:{port}/x")
            await listening.wait()
            server_group.cancel_scope.cancel()
    assert ended == ["graceful"]
