"""The website fetcher: an MCP `fetch` tool that is safe by default (see the README's safety table)."""

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
