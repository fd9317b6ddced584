"""Which scope each drone tool and resource takes, as data (enforced by `servers.auth.scopes`).

| scope | tools |
|---|---|
| `drone:read` | get_state, get_battery, get_sensor, capture_photo, deck_snapshot; the `drone://` resources |
| `drone:fly` | takeoff, land, move, rotate, flip, go_to, stop, set_speed, set_led, show_matrix |
| `drone:emergency` | emergency |
| `drone:admin` | the operator's `/admin/...` routes (`servers.auth.AccessSettings.admin_scope`) |

Flight actions that move the drone (takeoff, move, rotate, flip, go_to) count against the
per-client rate limit; land, stop and emergency never do: a client at its limit can always
bring the drone down. A drone tool registered without an entry here takes `drone:fly` and
counts against the limit (fail closed); a test checks that every tool has one.

The mode tools (get_tool, invoke_tool, run_code) take `drone:read` themselves
(`ScopePolicy.modes`); each inner call a mode makes still takes its own tool's scope.
"""

from __future__ import annotations

from typing import Final

from servers.auth.scopes import ScopePolicy, ToolAccess

READ: Final = "drone:read"
FLY: Final = "drone:fly"
EMERGENCY: Final = "drone:emergency"
ADMIN: Final = "drone:admin"

_READ = ToolAccess.of(READ)
_FLY = ToolAccess.of(FLY)
_FLIGHT_ACTION = ToolAccess.of(FLY, rate_limited=True)

DRONE_SCOPES: Final = ScopePolicy(
    tools={
        "get_state": _READ,
        "get_battery": _READ,
        "get_sensor": _READ,
        "capture_photo": _READ,
        "deck_snapshot": _READ,  # app-only (servers/deck/app_resource.py): the deck app's live view
        "takeoff": _FLIGHT_ACTION,
        "move": _FLIGHT_ACTION,
        "rotate": _FLIGHT_ACTION,
        "flip": _FLIGHT_ACTION,
        "go_to": _FLIGHT_ACTION,
        "land": _FLY,
        "stop": _FLY,
        "set_speed": _FLY,
        "set_led": _FLY,
        "show_matrix": _FLY,
        "emergency": ToolAccess.of(EMERGENCY),
    },
    resources={"drone://": frozenset({READ})},
    default=_FLIGHT_ACTION,
    modes=frozenset({READ}),
)
