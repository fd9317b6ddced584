"""The flight deck as an MCP App (`servers/deck/app_resource.py`), through real MCP clients.

On virtual time, in both protocol eras: the `ui://` resource is listed and read as
`text/html;profile=mcp-app` with a CSP that declares no domain, `get_state` names it in
`_meta.ui.resourceUri`, the app-only `deck_snapshot` is listed (with `visibility: ["app"]`) to a
client that negotiated Apps only and never to a tool mode's model, and it feeds the app state,
flight log and hold. In Chromium (Debian's, through Playwright, real HTTP): a minimal host page
(`app_host.html`) renders the resource in a sandboxed iframe, speaks the Apps postMessage
protocol to it and relays its `tools/call` to the real drone server; the app shows the battery
the simulator reports and live flight state, and its Stop reaches the simulator. Waits are
Playwright's bounded `expect` predicates or the link's own change events; nothing sleeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.extension import ClientExtension, advertise
from mcp.server.apps import EXTENSION_ID
from mcp_types import CallToolResult, TextResourceContents, Tool
from playwright.async_api import Browser, expect

from servers.deck.app_resource import APP_MIME_TYPE, DECK_APP_URI, SNAPSHOT_TOOL
from tests.drone_server.harness import TOOL_NAMES, Served, executed, flying, serving, structured, text_of
from tests.support.eras import ERAS
from tool_modes.catalog import ServerCatalog
from tool_modes.modes import build_mode_server
from tool_modes.search import MAX_MATCHES

pytestmark = pytest.mark.anyio

HOST_PAGE = Path(__file__).with_name("app_host.html")
WAIT_MS = 15_000
STRICT = {"connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": []}


def apps() -> list[ClientExtension]:
    """What a host that renders MCP Apps declares (the extension's capability negotiation)."""
    return [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})]


def ui_of(tool: Tool) -> dict[str, Any]:
    ui: dict[str, Any] = (tool.meta or {}).get("ui", {})
    return ui


# ---- the resource, the tool metadata and who sees the app-only tool (virtual time) ----


@pytest.mark.virtual_time
@pytest.mark.parametrize("era", ERAS)
async def test_the_deck_resource_is_served_as_an_mcp_app_and_get_state_names_it(era: str) -> None:
    async with flying() as drone, Client(drone.server, mode=era, extensions=apps()) as host:
        tools = {t.name: t for t in (await host.list_tools()).tools}
        assert ui_of(tools["get_state"]) == {"resourceUri": DECK_APP_URI}
        listed = {r.uri: r for r in (await host.list_resources()).resources}
        assert DECK_APP_URI.startswith("ui://")
        resource = listed[DECK_APP_URI]
        assert resource.mime_type == "text/html;profile=mcp-app"
        assert resource.meta == {"ui": {"csp": STRICT, "prefersBorder": True}}
        for tool in tools.values():  # every resourceUri a tool names is a resource that exists
            uri = ui_of(tool).get("resourceUri")
            assert uri is None or uri in listed, (tool.name, uri)

        read = await host.read_resource(DECK_APP_URI)
        [content] = read.contents
        assert isinstance(content, TextResourceContents)
        assert content.mime_type == "text/html;profile=mcp-app"
        assert content.meta == {"ui": {"csp": STRICT, "prefersBorder": True}}
        html = content.text
        assert html.lower().startswith("<!doctype html>")
        assert "<script>" in html
        assert "<style>" in html
        assert "<!--app." not in html
        # No address of any kind inside: the host (or a gateway rewriting ui:// URIs) decides
        # where the app lives, and the page talks to nothing but its host.
        banned = ("ui://", "http:", "https:", "src=", "href=", "fetch(", "XMLHttpRequest", "WebSocket")
        for word in (*banned, "EventSource", "/deck", "/drone", "sendBeacon"):
            assert word not in html, word
        for tool in ("deck_snapshot", "stop", "land", "emergency", "capture_photo", "ui/initialize"):
            assert f'"{tool}"' in html, tool


@pytest.mark.virtual_time
@pytest.mark.parametrize("era", ERAS)
async def test_the_app_only_tool_is_hidden_from_clients_without_apps_and_from_every_model(era: str) -> None:
    async with (
        flying() as drone,
        Client(drone.server, mode=era) as plain,
        Client(drone.server, mode=era, extensions=apps()) as host,
        Client(build_mode_server(drone.server, "search"), mode=era, extensions=apps()) as searcher,
    ):
        assert {t.name for t in (await plain.list_tools()).tools} == TOOL_NAMES
        listed = {t.name: t for t in (await host.list_tools()).tools}
        assert set(listed) == TOOL_NAMES | {SNAPSHOT_TOOL}
        assert ui_of(listed[SNAPSHOT_TOOL]) == {"resourceUri": DECK_APP_URI, "visibility": ["app"]}
        annotations = listed[SNAPSHOT_TOOL].annotations
        assert annotations is not None
        assert annotations.read_only_hint is True
        # Every other tool keeps the default visibility (model and app): the app's controls
        # are the tools agents call.
        assert all("visibility" not in ui_of(t) for name, t in listed.items() if name != SNAPSHOT_TOOL)

        # A tool mode's catalog is what its model sees: no app-only tool, whoever connects.
        assert SNAPSHOT_TOOL not in {t.name for t in await ServerCatalog(drone.server).list_tools()}
        query = {"query": "deck snapshot flight log hold app", "limit": MAX_MATCHES}
        found = await searcher.call_tool("get_tool", query)
        assert not found.is_error, text_of(found)
        assert SNAPSHOT_TOOL not in text_of(found)
        assert all(SNAPSHOT_TOOL not in (t.description or "") for t in (await searcher.list_tools()).tools)

        # Text results stay complete without Apps: get_state is the same for both clients.
        without, with_apps = await plain.call_tool("get_state", {}), await host.call_tool("get_state", {})
        assert json.loads(text_of(without)) == structured(without)
        assert structured(without).keys() == structured(with_apps).keys()
        assert structured(without)["telemetry"]["battery_pct"] == drone.truth.battery_pct


@pytest.mark.virtual_time
async def test_the_snapshot_feeds_the_app_state_flight_log_and_hold() -> None:
    async with flying() as drone, Client(drone.server, extensions=apps()) as host:
        took_off = await host.call_tool("takeoff", {})
        assert not took_off.is_error, text_of(took_off)
        drone.runtime.hold.set("operator-ana", drone.runtime.link)
        result = await host.call_tool(SNAPSHOT_TOOL, {})
        snapshot = structured(result)
        assert snapshot["state"]["flight"] == "flying"
        assert snapshot["state"]["telemetry"]["battery_pct"] == drone.truth.battery_pct
        assert snapshot["link"]["status"] == "connected"
        assert snapshot["hold"]["by"] == "operator-ana"
        commands = [row["command"] for row in snapshot["log"]]
        assert "takeoff" in commands
        assert "hold (operator)" in commands
        assert snapshot["envelope"]["max_height_cm"] == drone.runtime.pilot.envelope.max_height_cm
        assert "recordings_url" not in snapshot  # no address the sandboxed app could not reach
        assert text_of(result).startswith("flight deck: link connected, flying, battery ")
        assert "on hold by operator-ana" in text_of(result)


# ---- the app in Chromium, inside a minimal host ----


async def _until(served: Served, check: Callable[[], bool], within: float = 15.0) -> None:
    """Wait (bounded) for a ground-truth predicate, woken by the link's changes."""
    with anyio.fail_after(within):
        while not check():
            await served.runtime.link.wait_changed()


def _wire(result: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


@pytest.mark.parametrize("prefix", ["", "drone_"], ids=["direct", "gateway-prefixed"])
async def test_the_app_renders_in_a_sandboxed_iframe_and_its_stop_reaches_the_drone(
    browser: Browser, tmp_path: Path, prefix: str
) -> None:
    approvals: list[str] = []
    async with (
        serving() as served,
        Client(served.url, extensions=apps()) as host,  # the chat host's connection
        Client(served.url) as agent,  # another agent flying the same drone
    ):
        # What a host does when its model calls get_state: find the UI, read it, call the tool.
        tools = (await host.list_tools()).tools
        get_state = next(t for t in tools if t.name == "get_state")
        [content] = (await host.read_resource(ui_of(get_state)["resourceUri"])).contents
        assert isinstance(content, TextResourceContents)
        state = await host.call_tool("get_state", {})
        assert not state.is_error, text_of(state)

        async def relay(method: str, params: dict[str, Any]) -> dict[str, Any]:
            if method == "tools/call":
                result: CallToolResult = await host.call_tool(params["name"], params.get("arguments") or {})
                return _wire(result)
            assert method == "resources/read", method
            return _wire(await host.read_resource(params["uri"]))

        async def approve(name: str, arguments: dict[str, Any]) -> bool:
            approvals.append(name)
            return True

        page = await browser.new_page(viewport={"width": 820, "height": 900})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        await page.expose_function("hostRelay", relay)
        await page.expose_function("hostApprove", approve)
        await page.set_content(HOST_PAGE.read_text(encoding="utf-8"))
        await page.evaluate(
            "(app) => window.openApp(app)",
            {
                "html": content.text,
                "csp": ((content.meta or {}).get("ui") or {}).get("csp"),
                "tools": [_wire(t) for t in tools],
                "toolName": "get_state",
                "toolArguments": {},
                "toolResult": _wire(state),
                "prefix": prefix,
            },
        )
        app = page.frame_locator("#view")
        await expect(app.locator("#link-status")).to_have_text("connected", timeout=WAIT_MS)
        await expect(app.locator("#t-battery")).to_have_text(str(served.truth.battery_pct), timeout=WAIT_MS)
        methods: list[str] = await page.evaluate("window.hostLog.methods")
        assert methods[:2] == ["ui/initialize", "ui/notifications/initialized"], methods  # handshake first

        # Live: an agent's takeoff shows in the app (through deck_snapshot, not the first result).
        took_off = await agent.call_tool("takeoff", {})
        assert not took_off.is_error, text_of(took_off)
        await expect(app.locator("#t-flight")).to_have_text("flying", timeout=WAIT_MS)
        await expect(app.locator("#log-rows")).to_contain_text("takeoff", timeout=WAIT_MS)
        await expect(app.locator("#path-last")).to_have_attribute("data-x", re.compile(r"^0(\.0)?$"))

        # Stop in the app is the drone's own `stop` tool, approved by the host, sent to the drone.
        assert "stop" not in executed(served.truth)
        await app.locator("#btn-stop").click()
        await _until(served, lambda: "stop" in executed(served.truth))
        stopped = re.compile(r"Stop \(hover\): ok")
        await expect(app.locator("#control-result")).to_have_text(stopped, timeout=WAIT_MS)
        assert approvals == ["stop"]  # the read-only snapshot needed no approval; stop did
        calls: list[str] = await page.evaluate("window.hostLog.calls")
        assert SNAPSHOT_TOOL in calls
        assert "stop" in calls
        assert set(calls) <= {SNAPSHOT_TOOL, "stop"}, calls
        assert requests == [], requests  # the app fetched nothing: everything went through the host

        shot = tmp_path / f"mcp-app-{prefix or 'direct'}.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        await page.close()
