"""Who flies: every client that called one of the drone's tools, by the path it came in on.

The flight log holds only what reached the drone; an agent that reads `get_state` once a
second and never flies is still in the room. The drone tools' wrapper (`servers.drone.tools`)
notes every call here, whatever its outcome; the flight deck lists them. Bounded: the
`LIMIT` most recently seen (client, path) pairs are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

LIMIT: Final = 64


@dataclass(slots=True)
class Caller:
    client: str
    path: str | None
    calls: int
    last_tool: str
    last_at: float
    """Wall-clock time (Unix seconds) of the last call."""


class Callers:
    """The clients seen calling drone tools, newest first when listed."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._seen: OrderedDict[tuple[str, str | None], Caller] = OrderedDict()

    def saw(self, client: str, path: str | None, tool: str, at: float) -> None:
        key = (client, path)
        caller = self._seen.get(key)
        if caller is None:
            caller = self._seen[key] = Caller(client, path, 0, tool, at)
        caller.calls += 1
        caller.last_tool, caller.last_at = tool, at
        self._seen.move_to_end(key)
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)

    def listed(self) -> list[dict[str, Any]]:
        return [
            {
                "client": c.client,
                "path": c.path,
                "calls": c.calls,
                "last_call": c.last_tool,
                "last_at": c.last_at,
            }
            for c in reversed(self._seen.values())
        ]
