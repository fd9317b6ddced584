"""`AccessGate`: the ASGI layer in front of every route of the app but the probes.

Built from the SDK's own pieces, as `MCPServer.streamable_http_app` wires them for one server,
but for an app hosting several servers and an operator's routes:

* Starlette's `AuthenticationMiddleware` with the SDK's `BearerAuthBackend` over our
  `TokenVerifier` (`servers.auth.tokens`), then the SDK's `AuthContextMiddleware`, which makes
  the token available to tools as `get_access_token()` (scopes are checked per tool there:
  `servers.auth.scopes`).
* The SDK's `RequireAuthMiddleware` on every path: 401 without a valid token, with
  `WWW-Authenticate: Bearer ..., resource_metadata="<the path's RFC 9728 metadata URL>"` (JWT
  mode), and 403 `insufficient_scope` on `/admin/...` without the admin scope.
* The client identity (`servers.auth.identity`) and the flight-action rate limiter
  (`servers.auth.ratelimit`) set for the request, in every mode, auth off included.

`/healthz`, `/readyz` and the metadata documents stay open. The metadata routes
(`metadata_routes`) serve `/.well-known/oauth-protected-resource` for the server as a whole
and `/.well-known/oauth-protected-resource/<path>` for each MCP path (RFC 9728 section 3.1),
with the SDK's handler and CORS wrapper.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Final

from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.routes import cors_middleware
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl, ValidationError
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from servers.auth.identity import bound_client, client_of
from servers.auth.ratelimit import RateLimiter, limiter_var
from servers.auth.settings import AccessSettings

__all__ = ["ADMIN_PREFIX", "METADATA_PATH", "AccessGate", "metadata_routes"]

METADATA_PATH: Final = "/.well-known/oauth-protected-resource"
ADMIN_PREFIX: Final = "/admin/"

_AUTHORITY = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def base_url(settings: AccessSettings, conn: HTTPConnection | Scope) -> str:
    """This server's public base URL: the configured one, or the request's scheme and Host."""
    if settings.resource_url:
        return settings.resource_url.rstrip("/")
    scope = conn.scope if isinstance(conn, HTTPConnection) else conn
    host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
    if not _AUTHORITY.match(host):  # never reflect junk from a Host header into a header
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    return f"{scope.get('scheme', 'http')}://{host}"


def _mount_of(path: str, mounts: Collection[str]) -> str:
    return next((m for m in mounts if path == m or path.startswith(m + "/")), "")


class AccessGate:
    """See the module docstring. `verifier` None: access control off (identity and rate limit
    still apply)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: AccessSettings,
        verifier: TokenVerifier | None,
        open_paths: Collection[str],
        mounts: Collection[str],
    ) -> None:
        self.app = app
        self.settings = settings
        self.open_paths = frozenset(open_paths)
        self.mounts = tuple(mounts)
        self.limiter = (
            RateLimiter(settings.rate_limit_actions, settings.rate_limit_window_s)
            if settings.rate_limit_actions
            else None
        )
        self._authenticated: ASGIApp | None = None
        if verifier is not None:
            self._authenticated = AuthenticationMiddleware(
                AuthContextMiddleware(self._require), backend=BearerAuthBackend(verifier)
            )

    def _is_open(self, path: str) -> bool:
        return path in self.open_paths or path == METADATA_PATH or path.startswith(METADATA_PATH + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_open(scope["path"]):
            await self.app(scope, receive, send)
        elif self._authenticated is None:
            await self._identified(scope, receive, send)
        else:
            await self._authenticated(scope, receive, send)

    def metadata_url(self, scope: Scope) -> AnyHttpUrl | None:
        """The RFC 9728 metadata URL for the request's path (JWT mode only: the static token
        has no authorization server to point to)."""
        if self.settings.mode != "jwt":
            return None
        try:
            return AnyHttpUrl(
                base_url(self.settings, scope) + METADATA_PATH + _mount_of(scope["path"], self.mounts)
            )
        except ValidationError:
            return None

    async def _require(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        scopes = [self.settings.admin_scope] if path.startswith(ADMIN_PREFIX) else []
        await RequireAuthMiddleware(self._identified, scopes, self.metadata_url(scope))(scope, receive, send)

    async def _identified(self, scope: Scope, receive: Receive, send: Send) -> None:
        reset = limiter_var.set(self.limiter)
        try:
            with bound_client(client_of(scope), scope.get("path")):
                await self.app(scope, receive, send)
        finally:
            limiter_var.reset(reset)


def metadata_routes(
    settings: AccessSettings, mounts: Sequence[str], scopes: Sequence[str]
) -> list[BaseRoute]:
    """RFC 9728 protected-resource metadata for the server and each MCP path (JWT mode)."""
    if settings.mode != "jwt":
        return []

    def route(mount: str) -> Route:
        async def metadata(request: Request) -> Response:
            # Validated from strings so the model's own URL rules apply (no "/" added to a bare host).
            document = ProtectedResourceMetadata.model_validate(
                {
                    "resource": base_url(settings, request) + mount,
                    "authorization_servers": [settings.issuer],
                    "scopes_supported": list(scopes) or None,
                    "resource_name": f"tello-mcp {mount}" if mount else "tello-mcp",
                }
            )
            return await ProtectedResourceMetadataHandler(document).handle(request)

        return Route(
            METADATA_PATH + mount,
            endpoint=cors_middleware(metadata, ["GET", "OPTIONS"]),
            methods=["GET", "OPTIONS"],
        )

    return [route(""), *(route(m) for m in mounts)]
