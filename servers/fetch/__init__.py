"""The website fetcher: an MCP `fetch` tool that is safe by default (see the README's safety table).

Names are loaded on first use, so a conversion worker (`servers.fetch.workers`), which imports
only the conversion modules, does not pay for the MCP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from servers.fetch.errors import (
        AddressRefused,
        FetchError,
        FetchFailed,
        LimitExceeded,
        Refused,
        RobotsRefused,
        Rule,
    )
    from servers.fetch.server import build_fetch_server
    from servers.fetch.settings import DEFAULT_USER_AGENT, FetchSettings, Resolver, system_resolver

_HOMES: Final = {
    "AddressRefused": "errors",
    "FetchError": "errors",
    "FetchFailed": "errors",
    "LimitExceeded": "errors",
    "Refused": "errors",
    "RobotsRefused": "errors",
    "Rule": "errors",
    "build_fetch_server": "server",
    "DEFAULT_USER_AGENT": "settings",
    "FetchSettings": "settings",
    "Resolver": "settings",
    "system_resolver": "settings",
}

__all__ = [
    "DEFAULT_USER_AGENT",
    "AddressRefused",
    "FetchError",
    "FetchFailed",
    "FetchSettings",
    "LimitExceeded",
    "Refused",
    "Resolver",
    "RobotsRefused",
    "Rule",
    "build_fetch_server",
    "system_resolver",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
