"""Scopes per tool and resource, declared by a server as data and enforced on every call.

A server declares a `ScopePolicy` (`declare_scopes(server, policy)`, next to where it registers
its tools; `servers/drone/scopes.py` is the drone's). A server that declares none needs no
scopes: any authenticated caller may use it.

Enforcement sits in `servers.validation.ReadableArgumentsServer.call_tool`/`read_resource`,
the layer every tool call of the suite passes through: a client's own `tools/call`, and the
inner calls of the tool modes (`invoke_tool`, a `run_code` script), which
`tool_modes.catalog.ServerCatalog` makes through the inner server's own handler with the
outer request's context. So a mode cannot call a tool its caller's token does not allow.

The granted scopes are the SDK's: `get_access_token()`, which its `AuthContextMiddleware` sets
per HTTP request. A server mounted in an app with access control on is marked
(`require_token`): a call that reaches it without a token is refused, so if a future SDK ever
lost the request's context on the way to a tool, calls would fail closed, never open. An
unmarked server (stdio, in-process, access control off) requires nothing.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Generator, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

import structlog
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST

from servers.auth.identity import current_client
from servers.auth.ratelimit import current_limiter

__all__ = [
    "ENFORCES",
    "ScopePolicy",
    "ToolAccess",
    "authorize_resource",
    "authorize_tool",
    "declare_scopes",
    "declared_scopes",
    "missing_scopes",
    "policy_of",
    "refuse_mode_tool",
    "require_token",
]

_log = structlog.get_logger("auth.scopes")

_refusals: ContextVar[dict[str, str] | None] = ContextVar("tello_mcp_refusal", default=None)


@contextlib.contextmanager
def noting_refusals() -> Generator[dict[str, str]]:
    """For the block, a dict that `authorize_tool` fills with `outcome` ("refused_auth",
    "rate_limited") when it refuses a call: how `/metrics` tells those tool errors apart. A dict,
    not a value, so a handler running in a copy of this context still reaches it."""
    box: dict[str, str] = {}
    token = _refusals.set(box)
    try:
        yield box
    finally:
        _refusals.reset(token)


def _note(outcome: str) -> None:
    box = _refusals.get()
    if box is not None:
        box["outcome"] = outcome


Refund = Callable[[], None]


@dataclass(frozen=True, slots=True)
class ToolAccess:
    """What calling one tool takes: every scope in `scopes`; `rate_limited` counts the call
    against the caller's flight-action limit."""

    scopes: frozenset[str] = frozenset()
    rate_limited: bool = False

    @classmethod
    def of(cls, *scopes: str, rate_limited: bool = False) -> ToolAccess:
        return cls(frozenset(scopes), rate_limited)


OPEN: Final = ToolAccess()


@dataclass(frozen=True, slots=True)
class ScopePolicy:
    """A server's tools and resources with the access each takes.

    `default` applies to a tool the map does not name, so a tool added without an entry fails
    closed; `resources` maps a URI prefix to the scopes reading it takes (longest prefix wins;
    unmatched URIs are open).
    """

    tools: Mapping[str, ToolAccess]
    resources: Mapping[str, frozenset[str]] = field(default_factory=dict[str, frozenset[str]])
    default: ToolAccess = OPEN
    modes: frozenset[str] = frozenset()
    """Scopes the tool-mode facade tools over this server (`get_tool`, `invoke_tool`,
    `run_code`) take themselves, on top of each inner tool's own: searching and scripting cost
    the server work, so a token that may use none of its tools may not make it do that work."""

    def tool(self, name: str) -> ToolAccess:
        return self.tools.get(name, self.default)

    def resource(self, uri: str) -> frozenset[str]:
        matches = [prefix for prefix in self.resources if uri.startswith(prefix)]
        return self.resources[max(matches, key=len)] if matches else frozenset()

    def scopes(self) -> list[str]:
        """Every scope the policy mentions, sorted (the metadata's `scopes_supported`)."""
        named: set[str] = set(self.default.scopes)
        for access in self.tools.values():
            named |= access.scopes
        for scopes in self.resources.values():
            named |= scopes
        return sorted(named | self.modes)


_POLICIES: weakref.WeakKeyDictionary[MCPServer[object], ScopePolicy] = weakref.WeakKeyDictionary()


ENFORCES: Final = "enforces_scopes"
"""Class attribute of the servers whose `call_tool`/`read_resource` enforce a declared policy
(`servers.validation.ReadableArgumentsServer`)."""


def declare_scopes(server: MCPServer[object], policy: ScopePolicy) -> None:
    """`server`'s tools and resources take the access `policy` says. TypeError for a server
    class that would not enforce it: a declared policy is never silently ignored."""
    if getattr(type(server), ENFORCES, False) is not True:
        raise TypeError(
            f"{type(server).__name__} does not enforce scopes: build it from "
            "servers.validation.ReadableArgumentsServer"
        )
    _POLICIES[server] = policy


_TOKEN_REQUIRED: weakref.WeakSet[MCPServer[object]] = weakref.WeakSet()


def require_token(server: MCPServer[object]) -> None:
    """Every call to `server` must carry an access token from now on (it is served with access
    control on): one without is refused, whatever the scopes it would need."""
    _TOKEN_REQUIRED.add(server)


def policy_of(server: MCPServer[object]) -> ScopePolicy | None:
    return _POLICIES.get(server)


def _refuse_without_token(server: MCPServer[object], what: str, *, refused: str) -> None:
    if server in _TOKEN_REQUIRED and get_access_token() is None:
        _log.warning("refused_without_token", what=what)
        raise ToolError(f"{what}: no access token reached this call, and access control is on; {refused}")


def declared_scopes(servers: Iterable[MCPServer[object]]) -> list[str]:
    """Every scope the policies of `servers` mention, sorted."""
    named: set[str] = set()
    for server in servers:
        policy = policy_of(server)
        if policy is not None:
            named.update(policy.scopes())
    return sorted(named)


def missing_scopes(required: Iterable[str]) -> list[str]:
    """The scopes of `required` the caller's token lacks ([] with no token: access control off)."""
    token = get_access_token()
    if token is None:
        return []
    return sorted(set(required) - set(token.scopes))


def _granted() -> str:
    token = get_access_token()
    return ", ".join(sorted(token.scopes)) if token is not None and token.scopes else "none"


def authorize_tool(server: MCPServer[object], name: str, *, refused: str) -> Refund | None:
    """Refuse (`ToolError` naming the scope and the tool, ending with `refused`) a call the
    caller's token does not allow or its rate limit does not leave room for; otherwise count
    it and return how to take the count back (for a call refused later, before it did anything)."""
    _refuse_without_token(server, name, refused=refused)
    policy = policy_of(server)
    if policy is None:
        return None
    access = policy.tool(name)
    missing = missing_scopes(access.scopes)
    if missing:
        _log.info("tool_refused", tool=name, reason="scope", missing=missing)
        _note("refused_auth")
        needs = " and ".join(missing)
        raise ToolError(
            f"{name} needs the {needs} scope{'s' if len(missing) > 1 else ''}, which this client's token "
            f"does not grant (it grants: {_granted()}); {refused}"
        )
    limiter = current_limiter()
    client = current_client()
    if not access.rate_limited or limiter is None or client is None:
        return None
    wait_s = limiter.acquire(client)
    if wait_s is not None:
        retry_s = max(1, math.ceil(wait_s))
        _log.info("tool_refused", tool=name, reason="rate_limit", retry_after_s=retry_s)
        _note("rate_limited")
        raise ToolError(
            f"{name}: rate limit reached ({limiter.actions} flight actions per {limiter.window_s:g} s "
            f"per client); retry in {retry_s} s; {refused}"
        )
    return lambda: limiter.refund(client)


def refuse_mode_tool(inner: MCPServer[object], tool: str) -> str | None:
    """Why the caller may not use the mode tool `tool` over `inner` (None: it may): the
    scopes `inner`'s policy gives its mode tools (`ScopePolicy.modes`) that the token lacks."""
    policy = policy_of(inner)
    missing = missing_scopes(policy.modes) if policy is not None else []
    if not missing:
        return None
    _log.info("tool_refused", tool=tool, reason="scope", missing=missing)
    needs = " and ".join(missing)
    return (
        f"{tool} needs the {needs} scope{'s' if len(missing) > 1 else ''}, which this client's token "
        f"does not grant (it grants: {_granted()}); nothing was searched or run"
    )


def authorize_resource(server: MCPServer[object], uri: str) -> None:
    """Refuse (`MCPError`) reading `uri` without the scopes the server's policy asks for it."""
    if server in _TOKEN_REQUIRED and get_access_token() is None:
        _log.warning("refused_without_token", what=uri)
        raise MCPError(
            code=INVALID_REQUEST,
            message=f"reading {uri}: no access token reached this call, and access control is on",
        )
    policy = policy_of(server)
    if policy is None:
        return
    missing = missing_scopes(policy.resource(uri))
    if missing:
        _log.info("resource_refused", uri=uri, missing=missing)
        raise MCPError(
            code=INVALID_REQUEST,
            message=f"reading {uri} needs the {' and '.join(missing)} scope, which this client's token "
            f"does not grant (it grants: {_granted()})",
        )
