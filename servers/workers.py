"""`tello-mcp serve everything fetch --workers N`: N processes sharing one port.

The stateless demo servers are CPU-bound in Python, so one process uses one core. With
`--workers N` the parent reserves the port (bound with `SO_REUSEPORT`, never listening), then
starts N copies of the same `tello-mcp serve` command with `--workers 1`, that port, and
`TELLO_MCP_WORKER=i/N` in their environment: each binds the port with `SO_REUSEPORT`
(`servers.http._bind`) and runs its own uvicorn through the usual `serve`, and the kernel
spreads incoming connections over their listening sockets. Worker 0 prints the banner.

The parent only supervises: it forwards SIGTERM/SIGINT to every worker (which shut down
gracefully as a single process does), kills what is left after a grace period, and exits when
they have all exited; if one worker ends on its own, it stops the others and exits with that
worker's status, so that the orchestrator restarts the whole set. Workers run in their own
process group so that a terminal's Ctrl-C reaches them once, through the parent, and on Linux
each asks for SIGTERM should the parent die without forwarding anything (`follow_parent`).

What is per process: whatever is held in memory. A handshake-era session would be, and a
client's requests may come over several connections that the kernel hands to different workers
(the SDK's own client opens a GET stream and POSTs on another connection), so workers serve the
handshake era sessionless (`servers.cli._serve_http`): no server-to-client requests, no
subscriptions over it; the 2026-07-28 era has no sessions to begin with. The everything
server's 2026-07-28 multi-round calls carry sealed `requestState` that any worker must be able
to open: unless `request_state_keys` is configured, the parent draws one random key and hands
it to every worker through `TELLO_MCP_REQUEST_STATE_KEYS`.

The drone and the proxy are refused: one drone link (one upstream) per process.
"""

from __future__ import annotations

import ctypes
import math
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any, Final

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servers.config import ServeSettings
from servers.http import _bind  # pyright: ignore[reportPrivateUsage]

WORKER_ENV: Final = "TELLO_MCP_WORKER"
"""`index/count` in a worker's environment; `servers.http._bind` sets `SO_REUSEPORT` when present."""
PARENT_ENV: Final = "TELLO_MCP_WORKER_PARENT"
"""The parent's pid in a worker's environment (`follow_parent`)."""
PR_SET_PDEATHSIG: Final = 1
STATE_KEYS_ENV: Final = "TELLO_MCP_REQUEST_STATE_KEYS"
STATELESS: Final = ("everything", "fetch")
"""Servers that keep nothing a later request needs in the process (beyond handshake-era sessions)."""
SERVED_BY: Final = b"x-served-by"

_log = structlog.get_logger("tello_mcp.workers")


def refusal(common: ServeSettings, names: Sequence[str]) -> str | None:
    """Why `--workers` cannot be honoured for these servers, or None."""
    if common.workers < 1:
        return f"--workers must be at least 1, got {common.workers}"
    if common.workers == 1:
        return None
    if common.transport != "http":
        return "--workers serves streamable HTTP only; stdio is one process by nature"
    stateful = [n for n in names if n not in STATELESS]
    if stateful:
        return (
            f"--workers {common.workers}: {', '.join(stateful)} cannot run in several processes "
            "(one drone link, or one upstream, per process); name only the stateless servers "
            f"({', '.join(STATELESS)}) or use --workers 1"
        )
    return None


def follow_parent(environ: Mapping[str, str] | None = None) -> None:
    """In a worker on Linux: get SIGTERM when the parent dies (`PR_SET_PDEATHSIG`), so that a
    parent killed outright (SIGKILL, the OOM killer) does not leave workers holding the port."""
    raw = (os.environ if environ is None else environ).get(PARENT_ENV)
    if raw is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(raw):  # it died before the line above: nobody will send the signal
        os.kill(os.getpid(), signal.SIGTERM)


def worker_of(environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """(index, count) in a worker process, None otherwise."""
    raw = (os.environ if environ is None else environ).get(WORKER_ENV)
    if raw is None:
        return None
    index, _, count = raw.partition("/")
    return int(index), int(count)


class ServedBy:
    """Adds `X-Served-By: <pid>` to every HTTP response: which worker answered (worker mode only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (SERVED_BY, str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = self.header

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_header)


def run_workers(argv: Sequence[str], common: ServeSettings, servers: Mapping[str, Any]) -> int:
    """Supervise `common.workers` copies of `tello-mcp <argv>` on one port until they exit."""
    count = common.workers
    reservation = _bind(common.host, common.port, reuse_port=True)  # bound, never listening
    port: int = reservation.getsockname()[1]
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    everything = servers.get("everything")
    if everything is not None and not getattr(everything, "request_state_keys", ()):
        env[STATE_KEYS_ENV] = secrets.token_urlsafe(32)
    command = [sys.executable, "-m", "servers.cli", *argv, "--port", str(port), "--workers", "1"]
    # A worker drains for up to shutdown_timeout, then uvicorn gives connections as long again
    # (`servers.cli._drain`); the kill comes only after both and some slack.
    grace = 2 * math.ceil(common.shutdown_timeout) + 5
    alive: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop_all(signum: int) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            signal.alarm(grace)
        for process in alive.values():
            process.send_signal(signum)

    def forward(signum: int, _frame: FrameType | None) -> None:
        _log.info("workers_signal", signal=signal.Signals(signum).name, workers=len(alive))
        stop_all(signum)

    def kill_rest(_signum: int, _frame: FrameType | None) -> None:
        _log.warning("workers_killed", after_s=grace, workers=len(alive))
        for process in alive.values():
            process.kill()

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, kill_rest)
    status = 0
    try:
        with reservation:
            for index in range(count):
                process = subprocess.Popen(
                    command, env={**env, WORKER_ENV: f"{index}/{count}"}, process_group=0
                )
                alive[process.pid] = process
            _log.info("workers_started", port=port, pids=sorted(alive))
            if stopping:  # a signal arrived while starting: the late ones missed it
                for process in alive.values():
                    process.terminate()
            while alive:
                pid, raw = os.wait()
                process = alive.pop(pid, None)
                if process is None:
                    continue
                process.returncode = code = os.waitstatus_to_exitcode(raw)
                _log.info("worker_exited", pid=pid, status=code)
                if not stopping:  # ended on its own: take the others down, report its status
                    status = code or 1
                    stop_all(signal.SIGTERM)
                elif code not in (0, -signal.SIGTERM, -signal.SIGINT) and status == 0:
                    status = 1
    finally:
        signal.alarm(0)
        for process in alive.values():
            process.kill()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status
