"""Host any number of MCP servers over streamable HTTP in one Starlette app and one uvicorn.

Every server in the suite (`/drone`, `/drone-search`, `/everything`, ...) is mounted here, so
the rules live in one place:

* Both protocol eras are served on each path. The SDK routes a request by its
  `MCP-Protocol-Version` header: no header or a handshake-era version goes to the
  initialize/session transport, a 2026-07-28 version to the sessionless per-request one.
  `stateless`/`json_response` only shape the handshake era (the modern era is always
  sessionless; `json_response` also turns its SSE responses, and with them progress
  notifications, off).
* DNS-rebinding protection is the SDK's own `TransportSecuritySettings`. It matches a `Host`
  or `Origin` exactly, or with a trailing `:*` for any port, and nothing else: no `*.suffix`,
  no global `*`. A disallowed Host gets 421, a disallowed Origin 403; a request without an
  Origin passes. The SDK can only switch both checks off together, which is what `"*"` means
  here. See `HttpSettings`.
* `/healthz` (the process serves HTTP) and `/readyz` (the app's lifespans are entered and the
  `ready` check passes) sit outside the MCP transport and its Host check, because kubelet
  probes send the pod IP as Host.
* Every other route (an operator's `/admin/...`, `/drone-status`) gets the same Host and
  Origin checks from `servers.security.RouteGuard`, and a state-changing request there must be
  `application/json` (415 otherwise), so a web page can neither forge one (CSRF) nor reach one
  through a rebound DNS name.
* Limits against hostile clients, all in `HttpSettings`: request bodies are capped (413 before
  the body is read) and must arrive within a deadline (408), as must request headers (the
  connection is closed); handshake-era sessions are capped per endpoint (503 beyond) and
  closed when idle, which are the SDK session manager's own knobs.
* Access control (`HttpSettings.access`, off by default; see `servers.auth`): with a JWKS or a
  static token configured, every route but the probes and the RFC 9728 metadata documents
  needs a bearer token (401 with `WWW-Authenticate` otherwise), `/admin/...` routes the admin
  scope (403), and each tool the scopes its server declares. The client identity (token
  subject, or remote address) is bound into every log line of a request, and flight actions
  are rate-limited per client when `access.rate_limit_actions` is set.
* Each mount's session manager, and with it that server's own `lifespan=`, is entered in the
  app lifespan, after `lifespan_extra` and inside it. State shared by several mounts (one drone
  link behind `/drone` and `/drone-search`) belongs in `lifespan_extra`, which outlives them.

`serve()` runs uvicorn inside the caller's anyio task group (asyncio backend only) and drives
the app lifespan itself, so start-up errors propagate as exceptions, cancellation shuts down
gracefully, and no signal handlers are installed: signals are the caller's business.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import math
import socket
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import anyio
import structlog
import uvicorn
from anyio.abc import TaskStatus
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import ListenHandler
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servers.admission import Admission, AdmissionSettings
from servers.auth.gate import AccessGate, metadata_routes
from servers.auth.scopes import declared_scopes, require_token
from servers.auth.settings import AccessSettings
from servers.auth.tokens import verifier_for
from servers.metrics import METRICS_PATH, RequestMetrics, ToolCallMetrics, metrics_endpoint, register_sessions
from servers.sdk import has_tool
from servers.security import BodyLimit, RouteGuard, header_deadline_h11
from servers.tracing import continue_http_traces

__all__ = [
    "ANY",
    "CLUSTER_HOST",
    "LOCAL_HOSTS",
    "LOCAL_ORIGINS",
    "Endpoint",
    "HttpSettings",
    "ListenError",
    "NotFoundLog",
    "ReadyCheck",
    "build_app",
    "serve",
]

_log = structlog.get_logger("mcp.http")

ANY: Final = "*"
"""As the only allowed host: accept every Host and Origin (SDK protection off)."""

LOCAL_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
LOCAL_ORIGINS: Final = ("http://127.0.0.1", "http://localhost", "http://[::1]")
CLUSTER_HOST: Final = "0.0.0.0"

HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"

ReadyCheck = Callable[[], bool | Awaitable[bool]]
"""Readiness: return False, or raise with a reason, while the process should get no traffic."""

LifespanExtra = Callable[[Starlette], AbstractAsyncContextManager[None]]


def _split_port(authority: str) -> tuple[str, str | None]:
    """`host[:port]` into (host, port or None), with bracketed IPv6 literals."""
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            raise ValueError(f"unterminated IPv6 literal in {authority!r}")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"junk after IPv6 literal in {authority!r}")
        return host, rest[1:]
    if authority.count(":") > 1:
        raise ValueError(f"IPv6 literal must be bracketed: {authority!r}")
    host, sep, port = authority.partition(":")
    return host, port if sep else None


def _expand(entry: str, *, prefix: str = "") -> tuple[str, ...]:
    """One allowed-host/origin entry as the SDK's exact-or-`:*` patterns.

    A bare name means any port, including none (a Host header on port 80 carries no port, and
    the SDK's `name:*` does not match it), so it becomes both `name` and `name:*`.
    """
    host, port = _split_port(entry[len(prefix) :])
    if not host or "*" in host:
        raise ValueError(
            f"{entry!r}: the MCP SDK matches a host exactly or with a ':*' port wildcard only; "
            f"use {ANY!r} alone to accept any host"
        )
    base = prefix + host
    if port is None or port == "*":
        return (base, f"{base}:*")
    if not port.isdigit():
        raise ValueError(f"{entry!r}: port must be a number or '*'")
    return (f"{base}:{port}",)


def _expand_origin(entry: str) -> tuple[str, ...]:
    scheme, sep, _ = entry.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise ValueError(f"{entry!r}: an origin is scheme://host[:port] with scheme http or https")
    if entry.endswith("/"):
        raise ValueError(f"{entry!r}: an origin has no path, not even '/'")
    return _expand(entry, prefix=f"{scheme}://")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Where to listen and which Host/Origin headers the MCP endpoints accept.

    The default is a local run: listen on 127.0.0.1, accept only loopback names (any port)
    and loopback browser origins, DNS-rebinding protection on.

    `allowed_hosts` entries are `name` (any port, or none), `name:port`, or `name:*`;
    IPv6 as `[::1]`. `allowed_origins` entries are `http(s)://name[:port|:*]`. These are the
    only forms the SDK can match; anything else (`*.svc.cluster.local`, `*:8000`) is rejected
    here rather than silently never matching. `allowed_hosts=("*",)` turns the SDK check off
    for Host *and* Origin - the SDK has no way to drop one and keep the other.

    In a cluster the Host is whatever the caller dialled: agentgateway sends its static
    target `host:port` (e.g. `drone-mcp.drone.svc.cluster.local:8000`), kagent the host of the
    RemoteMCPServer URL, `kubectl port-forward` `localhost:PORT`. `HttpSettings.cluster()`
    with those names keeps protection on; with no names it accepts any Host.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    allowed_hosts: tuple[str, ...] = LOCAL_HOSTS
    allowed_origins: tuple[str, ...] = LOCAL_ORIGINS
    stateless: bool = False
    """Handshake era without sessions: no GET stream, no server-to-client requests (so no
    elicitation over legacy HTTP), but any replica can answer any request."""
    json_response: bool = False
    """Plain JSON instead of SSE: no progress or other notifications during a request."""
    shutdown_timeout: float = 5.0
    """Seconds open HTTP connections (e.g. legacy GET streams) get to finish on shutdown."""
    ready_timeout: float = 2.0
    """Seconds the `ready` check may take before /readyz answers 503."""
    access_log: bool = False
    max_body_bytes: int = 1024 * 1024
    """Largest request body accepted; a larger one gets 413 before it is read (see `BodyLimit`)."""
    header_timeout: float = 10.0
    """Seconds a client may take to send a request's headers before the connection is closed."""
    body_timeout: float = 30.0
    """Seconds a client may take to send a request's body before it gets 408."""
    max_sessions: int = 1000
    """Handshake-era sessions open at once per endpoint; one more gets 503 until one ends."""
    session_idle_timeout: float = 600.0
    """Seconds a handshake-era session may go without a request in flight (or an open GET
    stream) before it is closed; the client then has to initialize again."""
    access: AccessSettings = field(default_factory=AccessSettings)
    """Who may call (tokens, scopes, rate limit): off by default (see `servers.auth`)."""
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    """MCP requests in flight per client and in all (429/503 beyond; `stop`, `emergency` and
    `land` never shed): see `servers.admission`."""
    _patterns: tuple[tuple[str, ...], tuple[str, ...]] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.max_body_bytes <= 0 or self.max_sessions <= 0:
            raise ValueError("max_body_bytes and max_sessions must be positive")
        for name in ("header_timeout", "body_timeout", "session_idle_timeout", "shutdown_timeout"):
            value: float = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if isinstance(self.allowed_hosts, str) or isinstance(self.allowed_origins, str):
            raise TypeError("allowed_hosts/allowed_origins are tuples of strings, not a string")
        hosts, origins = tuple(self.allowed_hosts), tuple(self.allowed_origins)
        object.__setattr__(self, "allowed_hosts", hosts)
        object.__setattr__(self, "allowed_origins", origins)
        if ANY in hosts:
            if len(hosts) > 1:
                raise ValueError(f"{ANY!r} accepts every host; list it alone")
            object.__setattr__(self, "_patterns", None)
            return
        if ANY in origins:
            raise ValueError(
                f"allowed_origins={ANY!r} needs allowed_hosts=({ANY!r},): the SDK checks Origin "
                "whenever it checks Host"
            )
        if not hosts:
            raise ValueError("allowed_hosts is empty: every MCP request would get 421")
        expanded_hosts = tuple(dict.fromkeys(p for h in hosts for p in _expand(h)))
        expanded_origins = tuple(dict.fromkeys(p for o in origins for p in _expand_origin(o)))
        object.__setattr__(self, "_patterns", (expanded_hosts, expanded_origins))

    @classmethod
    def cluster(
        cls,
        hosts: Iterable[str] = (ANY,),
        *,
        port: int = 8000,
        origins: Iterable[str] = (),
        stateless: bool = False,
        json_response: bool = False,
    ) -> HttpSettings:
        """Listen on all interfaces; accept `hosts` (plus loopback, for port-forwards).

        With the default `("*",)` any Host and Origin is accepted: the setting that works behind
        any gateway or Service name, relying on the network boundary instead of the Host check.
        """
        host_list = tuple(hosts)
        if host_list == (ANY,):
            return cls(
                host=CLUSTER_HOST,
                port=port,
                allowed_hosts=(ANY,),
                allowed_origins=(),
                stateless=stateless,
                json_response=json_response,
            )
        return cls(
            host=CLUSTER_HOST,
            port=port,
            allowed_hosts=(*LOCAL_HOSTS, *host_list),
            allowed_origins=(*LOCAL_ORIGINS, *origins),
            stateless=stateless,
            json_response=json_response,
        )

    @property
    def dns_rebinding_protection(self) -> bool:
        return self._patterns is not None

    @property
    def patterns(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(hosts, origins) in the SDK's exact-or-`:*` forms, or None with protection off."""
        return self._patterns

    def transport_security(self) -> TransportSecuritySettings:
        """The SDK settings these allow-lists translate to."""
        if self._patterns is None:
            return TransportSecuritySettings(enable_dns_rebinding_protection=False)
        hosts, origins = self._patterns
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=list(hosts), allowed_origins=list(origins)
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A server plus per-mount overrides of the app-wide `HttpSettings` choices."""

    server: MCPServer[Any]
    stateless: bool | None = None
    json_response: bool | None = None


_SHOWN_PATH_CHARS: Final = 200
"""A logged 404 path is cut to this many characters: a scanner's path is not worth a log line's size."""


class NotFoundLog:
    """Every 404, whoever answers it (the router, the SDK, a route), in the log with its path.

    A client pointed at the wrong path (an Inspector that appends `/mcp`, a typo) otherwise
    fails with nothing on the server's side to say why; the line names the MCP paths served."""

    def __init__(self, app: ASGIApp, *, mounts: Iterable[str]) -> None:
        self.app = app
        self.mounts = ", ".join(mounts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def logged(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 404:
                path: str = scope["path"]
                _log.info(
                    "http_not_found",
                    method=scope["method"],
                    path=path if len(path) <= _SHOWN_PATH_CHARS else path[:_SHOWN_PATH_CHARS] + "...",
                    mcp_endpoints=self.mounts,
                )
            await send(message)

        await self.app(scope, receive, logged)


_Phase = Literal["starting", "running", "stopping"]


@dataclass(slots=True)
class _Lifecycle:
    phase: _Phase = "starting"


def _check_mount_path(path: str) -> None:
    if not path.startswith("/") or path == "/" or path.endswith("/"):
        raise ValueError(f"mount path must look like '/name', got {path!r}")
    if path in (HEALTH_PATH, READY_PATH, METRICS_PATH):
        raise ValueError(f"{path!r} is reserved for probes")


async def _run_ready(ready: ReadyCheck) -> bool:
    outcome = ready()
    if inspect.isawaitable(outcome):
        return await outcome
    return outcome


def build_app(
    mounts: Mapping[str, MCPServer[Any] | Endpoint],
    *,
    settings: HttpSettings,
    ready: ReadyCheck | None = None,
    lifespan_extra: LifespanExtra | None = None,
    extra_routes: Iterable[BaseRoute] = (),
    public_paths: Iterable[str] = (),
) -> Starlette:
    """One Starlette app serving each server at its path, plus `/healthz` and `/readyz`
    (and `extra_routes`, e.g. an operator's admin endpoint).

    Call once per set of server instances: the SDK gives every `streamable_http_app()` call a
    session manager that can run only once, so a second app for the same servers, or a second
    start of this app, fails. Mounting one instance at two paths works, but enters its
    `lifespan=` once per path.
    """
    if not mounts:
        raise ValueError("nothing to mount")
    security = settings.transport_security()
    verifier = verifier_for(settings.access)  # a missing JWKS or token file fails here, at build time
    routes: list[BaseRoute] = []
    managers: list[Callable[[], AbstractAsyncContextManager[None]]] = []
    listeners: list[ListenHandler] = []
    for path, target in mounts.items():
        _check_mount_path(path)
        endpoint = target if isinstance(target, Endpoint) else Endpoint(target)
        stateless = settings.stateless if endpoint.stateless is None else endpoint.stateless
        json_response = settings.json_response if endpoint.json_response is None else endpoint.json_response
        sub_app = endpoint.server.streamable_http_app(
            streamable_http_path=path,
            stateless_http=stateless,
            json_response=json_response,
            transport_security=security,
            max_request_body_size=settings.max_body_bytes,
            max_sessions=settings.max_sessions,
            session_idle_timeout=settings.session_idle_timeout,
        )
        if sub_app.user_middleware:
            raise ValueError(f"{path}: servers with SDK auth middleware cannot be mounted here")
        routes.extend(sub_app.routes)
        continue_http_traces(endpoint.server)  # the SDK continues `_meta` context, not the header
        manager = endpoint.server.session_manager
        managers.append(manager.run)
        register_sessions(path, manager)
        if not any(isinstance(m, ToolCallMetrics) for m in endpoint.server.middleware):
            known = functools.partial(has_tool, endpoint.server)
            endpoint.server.middleware.append(ToolCallMetrics(path, known))
        listen = manager.app.get_request_handler("subscriptions/listen")
        if listen is not None and isinstance(listen.handler, ListenHandler):
            listeners.append(listen.handler)

    lifecycle = _Lifecycle()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        if lifecycle.phase != "running":
            return JSONResponse({"ready": False, "reason": lifecycle.phase}, status_code=503)
        if ready is None:
            return JSONResponse({"ready": True})
        reason: str | None = None
        try:
            with anyio.fail_after(settings.ready_timeout):
                ok = await _run_ready(ready)
        except TimeoutError:
            reason = f"ready check took longer than {settings.ready_timeout:g}s"
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            if ok:
                return JSONResponse({"ready": True})
            reason = "ready check returned false"
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if lifespan_extra is not None:
                await stack.enter_async_context(lifespan_extra(app))
            for run in managers:
                await stack.enter_async_context(run())
            lifecycle.phase = "running"
            _log.info("mcp_endpoints_up", paths=list(mounts))
            try:
                yield
            finally:
                lifecycle.phase = "stopping"

    def begin_shutdown() -> None:
        """Fail readiness and end `subscriptions/listen` streams, which would never end by themselves."""
        lifecycle.phase = "stopping"
        for handler in listeners:
            handler.close()

    probes: list[BaseRoute] = [
        Route(HEALTH_PATH, healthz, methods=["GET"]),
        Route(READY_PATH, readyz, methods=["GET"]),
        Route(METRICS_PATH, metrics_endpoint, methods=["GET"]),
    ]
    servers = [t.server if isinstance(t, Endpoint) else t for t in mounts.values()]
    if settings.access.mode != "off":
        for server in servers:
            require_token(server)  # fail closed: a call that arrives without its token is refused
    metadata = metadata_routes(settings.access, list(mounts), declared_scopes(servers))
    public = [HEALTH_PATH, READY_PATH, METRICS_PATH, *(r.path for r in metadata if isinstance(r, Route))]
    guards = [
        Middleware(NotFoundLog, mounts=list(mounts)),
        Middleware(RequestMetrics, mounts=list(mounts)),
        # Outermost first: a request from the wrong Host or Origin is refused before its body is read.
        # The metadata documents are public and read-only: open to any Host and (CORS) Origin.
        Middleware(RouteGuard, patterns=settings.patterns, exempt=public, mounts=mounts),
        Middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout),
        Middleware(
            AccessGate,
            settings=settings.access,
            verifier=verifier,
            open_paths=[*public, *public_paths],  # public_paths: no token, but the Host checks
            mounts=list(mounts),
        ),
        Middleware(Admission, settings=settings.admission, mounts=mounts),
    ]
    app = Starlette(routes=[*probes, *metadata, *extra_routes, *routes], lifespan=lifespan, middleware=guards)
    app.state.begin_shutdown = begin_shutdown
    app.state.probe_routes = probes[:2]  # what the `--metrics-port` listener serves beside /metrics
    return app


class _Uvicorn(uvicorn.Server):
    """uvicorn without signal handlers, reporting when its sockets accept connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = anyio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


class ListenError(OSError):
    """The HTTP server cannot listen where it was told to; the message names the address and
    the settings that move it (`--host`/`--port`, `TELLO_MCP_HOST`/`TELLO_MCP_PORT`)."""


_PORT: Final = "TELLO_MCP_PORT"


def _listen_error(host: str, port: int, exc: OSError) -> ListenError:
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        why = f"{where} is already in use (another tello-mcp serve?): pick a free port with --port or {_PORT}"
    elif exc.errno == errno.EACCES:
        why = f"{where}: permission denied (ports below 1024 need privileges): use --port or {_PORT}"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"{where}: {host} is not an address of this machine: use --host or TELLO_MCP_HOST"
    else:
        why = f"cannot listen on {where} ({exc.strerror or exc}): see --host/--port, TELLO_MCP_HOST/{_PORT}"
    error = ListenError(why)
    error.errno = exc.errno
    return error


def _bind(host: str, port: int, *, reuse_port: bool | None = None) -> socket.socket:
    """The listening socket, created with `IPPROTO_TCP` explicitly.

    asyncio sets `TCP_NODELAY` only on accepted sockets whose `proto` is `IPPROTO_TCP`, and an
    accepted socket inherits the listener's `proto`: with the default 0, every response that
    leaves in several writes waits out the client's delayed ACK (~40 ms) on a reused
    keep-alive connection (what gateways use).

    `reuse_port` sets `SO_REUSEPORT`, so that worker processes each bind the same port and the
    kernel spreads connections over them (`servers/workers.py`); by default only in a worker,
    which `TELLO_MCP_WORKER` in the environment marks. Off otherwise: a second server started
    on a port in use must fail, not share it.
    """
    import os  # local: the one use, in the one function workers change

    if reuse_port is None:
        reuse_port = "TELLO_MCP_WORKER" in os.environ
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host.strip("[]"), port))
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        raise _listen_error(host, port, exc) from None
    except BaseException:
        sock.close()
        raise
    return sock


async def serve(
    app: Starlette,
    settings: HttpSettings,
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until cancelled; `task_status.started(port)` once requests are accepted.

    Binds first (port 0 picks a free port), enters the app lifespan, then lets uvicorn accept
    connections. On cancellation it calls `app.state.begin_shutdown()` if there is one
    (`build_app` sets it: /readyz turns 503, `subscriptions/listen` streams end gracefully),
    uvicorn stops accepting and gives open connections `settings.shutdown_timeout` seconds,
    and only then is the lifespan left, so servers' lifespans see their last requests through.
    Logs go through structlog; nothing is printed.
    """
    sock = _bind(settings.host, settings.port)
    with sock:
        port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=settings.access_log,
            http=header_deadline_h11(settings.header_timeout),
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_timeout)),
        )
        server = _Uvicorn(config)
        done = anyio.Event()

        async def run_uvicorn() -> None:
            # Shielded so cancelling the caller turns into uvicorn's own graceful shutdown
            # (should_exit below) rather than an abort halfway through a response.
            try:
                with anyio.CancelScope(shield=True):
                    await server.serve(sockets=[sock])
            except SystemExit as exc:  # uvicorn's way of saying "could not start"
                raise RuntimeError(f"uvicorn exited during start-up (code {exc.code})") from None
            finally:
                done.set()

        async with app.router.lifespan_context(app), anyio.create_task_group() as tg:
            tg.start_soon(run_uvicorn)
            try:
                with anyio.CancelScope() as waiting:
                    tg.start_soon(_cancel_when_set, done, waiting)
                    await server.listening.wait()
                if server.listening.is_set():
                    _log.info("http_listening", host=settings.host, port=port)
                    task_status.started(port)
                    await done.wait()
            finally:
                begin_shutdown = getattr(app.state, "begin_shutdown", None)
                if callable(begin_shutdown):
                    begin_shutdown()
                server.should_exit = True
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(settings.shutdown_timeout + 2.0):
                        await done.wait()
                    if not done.is_set():
                        server.force_exit = True
                        await done.wait()


async def _cancel_when_set(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
