"""The flight deck as an MCP App (`io.modelcontextprotocol/ui`): the live deck inside a chat.

`get_state` carries `_meta.ui.resourceUri` naming `DECK_APP_URI`, a `ui://` resource served as
`text/html;profile=mcp-app`. A host that renders MCP Apps (Claude, ChatGPT, VS Code, Goose, ...)
shows it beside the `get_state` result, in a sandboxed iframe under a CSP built from the
resource's `_meta.ui.csp`, which declares no domain at all: the page can reach nothing but its
host. It speaks only the Apps postMessage protocol (`ui/initialize`, the `get_state` result the
host hands it as `ui/notifications/tool-result`, then `tools/call` through the host):

* `deck_snapshot` (`visibility: ["app"]`) feeds the live view with the web deck's snapshot
  (state, link, flight log, hold, path, agents, envelope). The protocol has no push from a
  server to a view, so the page asks about five times a second while it is shown.
* Stop, Land, Emergency and Look call the very tools agents call (`stop`, `land`, `emergency`,
  `capture_photo`), so the host applies its own approval to each, and `emergency` asks the user
  wherever the client can ask.

Hold and release stay on the web deck: they are operator controls (`drone:admin`, loopback only
with auth off), and a tool that releases the hold would be one every agent could call.

Graceful degradation: a client that did not negotiate Apps gets the same complete `get_state`
(text and structured content), and the app-only tool is left out of its `tools/list`. The tool
modes' catalogs, which are the model's, leave it out for every client
(`tool_modes.catalog.for_the_model`).
"""

from __future__ import annotations

from typing import Any, Final

from mcp.server.apps import APP_MIME_TYPE, Apps, ResourceCsp, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from servers.deck.hub import Deck
from servers.deck.routes import static_text
from tool_modes.catalog import model_may_see

__all__ = [
    "APP_MIME_TYPE",
    "DECK_APP_URI",
    "SNAPSHOT_TOOL",
    "app_html",
    "deck_app",
    "hide_app_only_tools",
    "opens_the_deck",
]

DECK_APP_URI: Final = "ui://drone/flight-deck.html"
SNAPSHOT_TOOL: Final = "deck_snapshot"

STRICT_CSP: Final = ResourceCsp(
    connect_domains=[], resource_domains=[], frame_domains=[], base_uri_domains=[]
)
"""Nothing from anywhere: the page is one self-contained document that only posts to its host."""

_READ: Final = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)


def opens_the_deck() -> dict[str, Any]:
    """The `_meta` a model-visible tool carries to be rendered with the deck (`get_state`)."""
    return {"ui": {"resourceUri": DECK_APP_URI}}


def app_html() -> str:
    """The app as one document: `static/app.html` with its CSS and JavaScript inlined (a host
    renders the resource's text as it is; there is no origin to fetch files from)."""
    script = static_text("app.js")
    if "</script" in script.lower():
        raise ValueError("app.js must not contain '</script': it is inlined into app.html")
    return (
        static_text("app.html")
        .replace("<!--app.css-->", "<style>\n" + static_text("app.css") + "</style>", 1)
        .replace("<!--app.js-->", "<script>\n" + script + "</script>", 1)
    )


def _summary(snapshot: dict[str, Any]) -> str:
    state: dict[str, Any] = snapshot["state"]
    telemetry: dict[str, Any] = state.get("telemetry") or {}
    hold = snapshot.get("hold")
    return (
        f"flight deck: link {snapshot['link']['status']}, {state['flight']}, "
        f"battery {telemetry.get('battery_pct', '?')} %, "
        f"{'on hold by ' + str(hold['by']) if hold else 'no hold'}, {len(snapshot['log'])} log rows"
    )


def deck_app(deck: Deck) -> Apps:
    """The Apps extension for a drone server: the deck resource and the app-only snapshot tool."""
    apps = Apps()

    @apps.tool(
        resource_uri=DECK_APP_URI,
        visibility=["app"],
        name=SNAPSHOT_TOOL,
        title="Flight deck snapshot (app only)",
        description=(
            "For the flight deck app only: one snapshot of the drone (link, state, flight log, "
            "hold, path, agents, envelope). Agents use get_state."
        ),
        annotations=_READ,
        structured_output=False,
    )
    async def deck_snapshot() -> CallToolResult:  # pyright: ignore[reportUnusedFunction]
        snapshot = deck.snapshot()
        snapshot.pop("recordings_url", None)  # a URL the app could not reach anyway
        return CallToolResult(
            content=[TextContent(type="text", text=_summary(snapshot))], structured_content=snapshot
        )

    apps.add_html_resource(
        DECK_APP_URI,
        app_html(),
        name="flight-deck",
        title="Flight deck",
        description="The live flight deck (link, telemetry, path, flight log, hold): Stop, Land, Emergency",
        csp=STRICT_CSP,
        prefers_border=True,
    )
    return apps


async def hide_app_only_tools(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware: a client that did not negotiate MCP Apps has no app to feed, so its
    `tools/list` leaves out the tools whose `_meta.ui.visibility` excludes the model (an Apps
    host gets them all and keeps them from its model itself, as the extension requires)."""
    result = await call_next(ctx)
    if ctx.method != "tools/list" or not isinstance(result, dict) or client_supports_apps(ctx):
        return result
    tools: list[dict[str, Any]] = result.get("tools", [])
    return {**result, "tools": [t for t in tools if model_may_see(t.get("_meta"))]}
