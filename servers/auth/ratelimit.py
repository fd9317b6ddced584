"""A per-client sliding-window limit on flight actions: at most N started per window.

Memory is bounded: one deque of at most N timestamps per client, and at most `max_clients`
clients (beyond that, clients with nothing in the window are forgotten first, then the least
recently seen). The limiter in force for a request is a context variable, set by
`servers.auth.gate.AccessGate` beside the client identity.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Final

__all__ = ["RateLimiter", "current_limiter", "limiter_var"]

MAX_CLIENTS: Final = 10_000


class RateLimiter:
    """At most `actions` per `window_s` seconds per client."""

    def __init__(
        self,
        actions: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if actions <= 0 or not (math.isfinite(window_s) and window_s > 0):
            raise ValueError("a rate limit is a positive number of actions per a positive window")
        self.actions = actions
        self.window_s = window_s
        self.clock = clock
        self.max_clients = max_clients
        self._starts: OrderedDict[str, deque[float]] = OrderedDict()

    def acquire(self, client: str) -> float | None:
        """Record an action by `client` and return None, or return the seconds until it may act
        again (nothing recorded)."""
        now = self.clock()
        starts = self._starts.get(client)
        if starts is None:
            self._make_room(now)
            starts = self._starts[client] = deque(maxlen=self.actions)
        else:
            self._starts.move_to_end(client)
        while starts and starts[0] <= now - self.window_s:
            starts.popleft()
        if len(starts) >= self.actions:
            return starts[0] + self.window_s - now
        starts.append(now)
        return None

    def refund(self, client: str) -> None:
        """Take back `client`'s latest action (it was refused before anything was done)."""
        starts = self._starts.get(client)
        if starts:
            starts.pop()

    def _make_room(self, now: float) -> None:
        """Room for one more client: forget idle ones, then the least recently seen."""
        if len(self._starts) < self.max_clients:
            return
        for client in [c for c, s in self._starts.items() if not s or s[-1] <= now - self.window_s]:
            del self._starts[client]
        while len(self._starts) >= self.max_clients:
            self._starts.popitem(last=False)

    @property
    def clients(self) -> int:
        return len(self._starts)


limiter_var: ContextVar[RateLimiter | None] = ContextVar("tello_mcp_rate_limiter", default=None)


def current_limiter() -> RateLimiter | None:
    """The flight-action limiter of the request being served (None: no limit)."""
    return limiter_var.get()
