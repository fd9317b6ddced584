"""Resource-updated notifications in both protocol eras, for any `MCPServer` of the suite.

- 2026-07-28 (stateless): clients open `subscriptions/listen`; the SDK's listen handler fans
  out whatever is published on the server's `SubscriptionBus`. We own that bus and publish
  `ResourceUpdated(uri)` on it.
- Handshake era: clients send `resources/subscribe {uri}` on their session and expect
  `notifications/resources/updated` on it. `MCPServer` does not serve `resources/subscribe`,
  so `attach` registers the handlers on its low-level server (`servers.sdk`). A subscriber is
  its connection, not the `ServerSession` a handler sees (a per-request proxy, rebuilt for
  every request: keyed by it, an unsubscribe never matched and a second subscribe doubled the
  notifications). A closing connection forgets its subscriptions.

With several replicas, pass a bus over a shared pub/sub backend for the listen streams; a
handshake-era session is pinned to one replica anyway.
"""

from __future__ import annotations

from typing import Any, Final

import structlog
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated, SubscriptionBus
from mcp_types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from servers.sdk import connection_of, lowlevel

_log = structlog.get_logger("mcp.resource_updates")
_STATE_KEY: Final = "tello_mcp.subscribed"


class ResourceUpdates:
    def __init__(self, bus: SubscriptionBus | None = None) -> None:
        self.bus: SubscriptionBus = bus or InMemorySubscriptionBus()
        self._subscribers: dict[str, dict[int, Connection]] = {}

    def attach(self, server: MCPServer[Any]) -> None:
        """Serve handshake-era `resources/subscribe`/`unsubscribe` on `server`.

        The server must have been built with `subscriptions=self.bus` for the stateless era.
        """
        low = lowlevel(server)
        low.add_request_handler("resources/subscribe", SubscribeRequestParams, self._subscribe)
        low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self._unsubscribe)

    def subscribers(self, uri: str) -> int:
        """Handshake-era connections subscribed to `uri` (listen streams are the bus's)."""
        return len(self._subscribers.get(uri, ()))

    async def publish(self, uri: str) -> None:
        """Tell every subscriber of `uri`, in either era, that it changed."""
        await self.bus.publish(ResourceUpdated(uri=uri))
        for connection in list(self._subscribers.get(uri, {}).values()):
            # Best effort and never raises: a connection that went away is dropped by its
            # own exit stack (see `_subscribe`).
            await connection.notify("notifications/resources/updated", {"uri": uri})

    async def _subscribe(self, ctx: ServerRequestContext[Any], params: SubscribeRequestParams) -> EmptyResult:
        connection = connection_of(ctx)
        uri = str(params.uri)
        subscribed: set[str] | None = connection.state.get(_STATE_KEY)
        if subscribed is None:
            subscribed = set[str]()
            connection.state[_STATE_KEY] = subscribed
            connection.exit_stack.callback(self._forget, connection)
        subscribed.add(uri)
        self._subscribers.setdefault(uri, {})[id(connection)] = connection
        return EmptyResult()

    async def _unsubscribe(
        self, ctx: ServerRequestContext[Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        connection = connection_of(ctx)
        uri = str(params.uri)
        connection.state.get(_STATE_KEY, set[str]()).discard(uri)
        self._drop(uri, connection)
        return EmptyResult()

    def _drop(self, uri: str, connection: Connection) -> None:
        connections = self._subscribers.get(uri)
        if connections is not None:
            connections.pop(id(connection), None)
            if not connections:
                del self._subscribers[uri]

    def _forget(self, connection: Connection) -> None:
        for uri in connection.state.get(_STATE_KEY, set[str]()):
            self._drop(uri, connection)
        _log.debug("resource_subscriber_gone", uris=sorted(connection.state.get(_STATE_KEY, set[str]())))
