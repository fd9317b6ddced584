"""`GET /`: a small index of every endpoint the process serves, linking the web pages.

Without it `/` was a 404, and a person opening the server's address had no way to find the
flight deck or the MCP paths.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from servers.suite import Component

__all__ = ["index_routes"]


def index_routes(components: Sequence[Component]) -> list[BaseRoute]:
    """The index at `/`, unless a component serves `/` itself."""
    if any(isinstance(r, Route) and r.path == "/" for c in components for r in c.routes):
        return []
    rows: list[str] = []
    for c in components:
        detail = f" ({html.escape(c.detail)})" if c.detail else ""
        rows.extend(
            f'<li><a href="{html.escape(page)}">{html.escape(page)}</a>: {c.name} web page</li>'
            for page in c.pages
        )
        rows.extend(
            f"<li><code>{html.escape(path)}</code>: {c.name} MCP endpoint{detail}</li>" for path in c.mounts
        )
        rows.extend(
            f"<li><code>{html.escape(route.path)}</code>: {c.name}</li>"
            for route in c.routes
            if isinstance(route, Route)
            and "GET" in (route.methods or ())
            and route.path not in c.pages
            and "{" not in route.path
            and "/static/" not in route.path
        )
    rows += ["<li><code>/healthz</code>, <code>/readyz</code>: probes</li>"]
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tello-mcp</title></head>'
        "<body><h1>tello-mcp</h1><ul>" + "".join(rows) + "</ul></body></html>"
    )

    async def index(_: Request) -> Response:
        return HTMLResponse(body, headers={"content-security-policy": "default-src 'none'"})

    return [Route("/", index, methods=["GET"])]
