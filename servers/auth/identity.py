"""Who is calling: the client identity of the request being served, for logs and the flight log.

The identity is the token's subject (`sub`) with access control on, or the remote address with
it off. `servers.auth.gate.AccessGate` sets it for each HTTP request and binds it into
structlog's context variables as `client`, so every log line of a call carries it. The SDK
hands each message's handler a copy of the HTTP request's context, so `current_client()` holds
inside tools, resources and the calls a `run_code` script or `invoke_tool` makes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from contextvars import ContextVar
from typing import Final

import structlog
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.types import Scope

__all__ = [
    "LOG_KEY",
    "bound_client",
    "bound_tool",
    "client_of",
    "current_client",
    "current_path",
    "current_tool",
]

LOG_KEY: Final = "client"
"""The structlog key the identity is logged under."""

_client: ContextVar[str | None] = ContextVar("tello_mcp_client", default=None)
_path: ContextVar[str | None] = ContextVar("tello_mcp_path", default=None)
_tool: ContextVar[str | None] = ContextVar("tello_mcp_tool", default=None)


def current_client() -> str | None:
    """The calling client's identity, or None outside an HTTP request (stdio, in-process)."""
    return _client.get()


def current_path() -> str | None:
    """The mounted path the calling request came in on (`/drone-search`: the tool mode it
    uses), or None outside an HTTP request."""
    return _path.get()


def client_of(scope: Scope) -> str:
    """The identity of an ASGI request: the authenticated token's subject (its client id when it
    has none), else the remote address."""
    user = scope.get("user")
    if isinstance(user, AuthenticatedUser):
        token = user.access_token
        return token.subject or token.client_id
    peer = scope.get("client")
    if peer:
        return str(peer[0])
    return "unknown"


@contextlib.contextmanager
def bound_client(client: str, path: str | None = None) -> Generator[None]:
    """`client` as `current_client()` (and `path` as `current_path()`) and in every log line,
    for the block."""
    token = _client.set(client)
    path_token = _path.set(path)
    bound = {LOG_KEY: client, **({"path": path} if path is not None else {})}
    try:
        with structlog.contextvars.bound_contextvars(**bound):
            yield
    finally:
        _path.reset(path_token)
        _client.reset(token)


def current_tool() -> str | None:
    """The tool being run (set by the server's tool wrapper), or None outside one."""
    return _tool.get()


@contextlib.contextmanager
def bound_tool(name: str) -> Generator[None]:
    """`name` as `current_tool()` for the block: what the flight log names a command's tool by."""
    token = _tool.set(name)
    try:
        yield
    finally:
        _tool.reset(token)
