"""The deck's HTTP routes: the page, its event stream, the last camera frame, the controls.

* `GET /deck` (and its `/deck/static/...` files) is the page shell: no data in it, so it is
  served without a token even with access control on (the page asks for one and keeps it in
  sessionStorage); it still gets the Host and Origin checks of every route (`RouteGuard`).
* `GET /deck/events` (server-sent events) and `GET /deck/frame.jpg` need `drone:read` with
  access control on, and follow the Host allow-list either way.
* `POST /admin/deck/<control>` (`hold`, `release`, `stop`, `land`, `emergency`, `look`) sit
  under `/admin/` on purpose: with access control on, the gate asks for the admin scope
  (`drone:admin`) as for every admin route; with it off they are served to loopback clients
  only. They are JSON POSTs (the guard refuses anything else with 415, and foreign Origins and
  Hosts with 403/421: no CSRF, no DNS rebinding). Each runs in-process on the runtime, never
  through the MCP endpoints, and is logged with the operator's identity (structlog, and the
  flight log through the link's own records).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Final

import structlog
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from servers.auth.identity import current_client
from servers.deck.hub import Deck
from servers.drone.core.errors import DroneError

__all__ = ["CONTROL_PREFIX", "DECK_PATH", "PUBLIC_PATHS", "deck_routes"]

DECK_PATH: Final = "/deck"
EVENTS_PATH: Final = "/deck/events"
FRAME_PATH: Final = "/deck/frame.jpg"
CONTROL_PREFIX: Final = "/admin/deck/"
READ_SCOPE: Final = "drone:read"
_STATIC: Final = {"deck.css": "text/css", "deck.js": "text/javascript"}
PUBLIC_PATHS: Final = (DECK_PATH, *(f"{DECK_PATH}/static/{name}" for name in _STATIC))
_LOOPBACK: Final = ("127.", "::1", "localhost")
_log = structlog.get_logger("deck")

# No inline script, nothing from elsewhere: the page runs only its own files.
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def static_text(name: str) -> str:
    return (resources.files("servers.deck") / "static" / name).read_text(encoding="utf-8")


def _page_headers() -> dict[str, str]:
    return {"content-security-policy": _CSP, "x-content-type-options": "nosniff", "cache-control": "no-store"}


def _may_read(request: Request) -> bool:
    """With access control on the token must grant `drone:read`; off, the guard's rules suffice."""
    user = request.scope.get("user")
    if isinstance(user, AuthenticatedUser):
        return READ_SCOPE in user.scopes
    return True


def _refused_read() -> Response:
    return JSONResponse(
        {"error": "insufficient_scope", "error_description": f"the deck needs the {READ_SCOPE} scope"},
        status_code=403,
    )


def deck_routes(deck: Deck) -> list[BaseRoute]:
    runtime = deck.runtime

    async def page(_: Request) -> Response:
        return Response(static_text("deck.html"), media_type="text/html", headers=_page_headers())

    def static(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(_: Request) -> Response:
            return Response(static_text(name), media_type=_STATIC[name], headers=_page_headers())

        return serve

    async def events(request: Request) -> Response:
        if not _may_read(request):
            return _refused_read()
        if deck.full():
            return JSONResponse(
                {"error": f"the deck already has {deck.max_viewers} viewers (deck_max_viewers)"},
                status_code=503,
            )
        return StreamingResponse(
            deck.stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def frame(request: Request) -> Response:
        if not _may_read(request):
            return _refused_read()
        if deck.camera.jpeg is None:
            return JSONResponse({"error": "no frame captured yet: press look"}, status_code=404)
        return Response(deck.camera.jpeg, media_type="image/jpeg", headers={"cache-control": "no-store"})

    async def control(request: Request) -> Response:
        name: str = request.path_params["name"]
        peer = request.client.host if request.client else ""
        authenticated = isinstance(request.scope.get("user"), AuthenticatedUser)
        if not authenticated and not peer.startswith(_LOOPBACK):
            return JSONResponse(
                {"error": "deck controls are only served to loopback clients"}, status_code=403
            )
        try:
            body: object = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        fields: dict[str, Any] = body  # pyright: ignore[reportUnknownVariableType]
        operator = current_client() or peer or "unknown"
        if name == "emergency" and fields.get("confirm") is not True:
            return JSONResponse(
                {"error": 'emergency stops the motors (the drone falls): send {"confirm": true}'},
                status_code=400,
            )
        _log.warning("deck_control", control=name, operator=operator)
        pilot, link = runtime.pilot, runtime.link
        try:
            match name:
                case "hold":
                    runtime.hold.set(operator, link)
                    result: dict[str, Any] = {"hold": runtime.hold.state and runtime.hold.state.as_dict()}
                case "release":
                    runtime.hold.release(operator, link)
                    result = {"hold": None}
                case "stop":
                    result = (await pilot.stop()).model_dump(mode="json", exclude={"state"})
                case "land":
                    result = (await pilot.land()).model_dump(mode="json", exclude={"state"})
                case "emergency":
                    result = (await pilot.emergency()).model_dump(mode="json", exclude={"state"})
                case "look":
                    jpeg, photo = await runtime.photos.capture()
                    deck.camera.jpeg, deck.camera.at = jpeg, time.time() - photo.frame_age_s
                    deck.camera.seq += 1
                    result = photo.model_dump(mode="json", exclude={"freshness"})
                case _:
                    return JSONResponse({"error": f"no control {name!r}"}, status_code=404)
        except DroneError as exc:
            _log.warning("deck_control_failed", control=name, operator=operator, error=str(exc))
            deck.publish()
            return JSONResponse({"ok": False, "control": name, "error": str(exc)}, status_code=409)
        deck.publish()
        return JSONResponse({"ok": True, "control": name, "operator": operator, **result})

    return [
        Route(DECK_PATH, page, methods=["GET"]),
        *(Route(f"{DECK_PATH}/static/{n}", static(n), methods=["GET"]) for n in _STATIC),
        Route(EVENTS_PATH, events, methods=["GET"]),
        Route(FRAME_PATH, frame, methods=["GET"]),
        Route(CONTROL_PREFIX + "{name}", control, methods=["POST"]),
    ]
