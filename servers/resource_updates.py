"""Resource-updated notifications in both protocol eras, for any `MCPServer`.

- 2026-07-28 (stateless): clients open `subscriptions/listen`; the SDK's listen handler fans
  out whatever is published on the server's `SubscriptionBus`. We own that bus and publish
  `ResourceUpdated(uri)` on it.
- Handshake era: clients send `resources/subscribe {uri}` on their session and expect
  `notifications/resources/updated` on it. `MCPServer` does not serve `resources/subscribe`,
  so `attach` registers the handlers on its low-level server and keeps the sessions: strongly
  (the request context that carries one is gone right after the subscribe request), dropped
  on unsubscribe or as soon as a notification to it fails.
"""

from __future__ import annotations

from typing import Any

import structlog
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated
from mcp.types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

_log = structlog.get_logger("mcp.resource_updates")


class ResourceUpdates:
    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self._sessions: dict[str, set[ServerSession]] = {}

    def attach(self, server: MCPServer[Any]) -> None:
        """Serve handshake-era `resources/subscribe`/`unsubscribe` on `server`.

        The server must have been built with `subscriptions=self.bus` for the stateless era.
        """
        # MCPServer has no public hook for these two methods; the low-level server does.
        low = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]
        low.add_request_handler("resources/subscribe", SubscribeRequestParams, self._subscribe)
        low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self._unsubscribe)

    async def _subscribe(self, ctx: ServerRequestContext[Any], params: SubscribeRequestParams) -> EmptyResult:
        self._sessions.setdefault(str(params.uri), set()).add(ctx.session)
        return EmptyResult()

    async def _unsubscribe(
        self, ctx: ServerRequestContext[Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        sessions = self._sessions.get(str(params.uri))
        if sessions is not None:
            sessions.discard(ctx.session)
        return EmptyResult()

    def subscribers(self, uri: str) -> int:
        """Handshake-era sessions subscribed to `uri` (listen streams are the bus's)."""
        return len(self._sessions.get(uri, ()))

    async def publish(self, uri: str) -> None:
        """Tell every subscriber of `uri`, in either era, that it changed."""
        await self.bus.publish(ResourceUpdated(uri=uri))
        for session in list(self._sessions.get(uri, ())):
            try:
                await session.send_resource_updated(uri)
            except Exception as exc:  # a session that went away: forget it, keep the others
                self._sessions[uri].discard(session)
                _log.info("resource_subscriber_dropped", uri=uri, error=str(exc))
