"""The two protocol eras every endpoint serves, as `mcp.Client(mode=...)` names them."""

from __future__ import annotations

from typing import Any, Final

ERAS: Final = ("legacy", "2026-07-28")
"""The handshake era (initialize + session, 2025-11-25) and the stateless 2026-07-28 era."""

# ---- the same, as raw HTTP (tests that check status codes and headers, not a client) ----

ACCEPT: Final = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
"""The headers of a streamable-HTTP POST."""

LEGACY_INIT: Final[dict[str, Any]] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
"""A handshake-era `initialize` request body."""
