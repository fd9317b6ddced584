"""The two protocol eras every endpoint serves, as `mcp.Client(mode=...)` names them."""

from __future__ import annotations

from typing import Final

ERAS: Final = ("legacy", "2026-07-28")
"""The handshake era (initialize + session, 2025-11-25) and the stateless 2026-07-28 era."""
