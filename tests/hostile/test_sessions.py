"""Thousands of handshake-era sessions opened and left idle (an `initialize` each, nothing
after): the SDK's session manager caps them per endpoint (`HttpSettings.max_sessions`: 503
beyond) and closes idle ones (`session_idle_timeout`), so memory stays bounded and the
endpoint serves again once they expire."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterator
from typing import Any, Final

import anyio
import httpx
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from servers.everything import build_everything_server
from servers.everything.settings import EverythingSettings
from servers.http import build_app, serve
from tests.drone_server.harness import http_settings
from tests.hostile.suite import open_session

pytestmark = pytest.mark.anyio

CAP: Final = 50
ATTEMPTS: Final = 1000
CONCURRENCY: Final = 2
SLACK_TASKS: Final = 10
"""Tasks that may outlive the sessions a while (connections, shielded clean-ups): far fewer
than the sessions they would betray."""
PATH: Final = "/everything"
SDK_LOGGER: Final = "mcp.server.streamable_http_manager"


class _Expiries(logging.Handler):
    """Wakes the test whenever the SDK reports a session closed for idleness."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.changed = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().endswith("idle timeout"):
            self.changed.set()

    async def wait(self) -> None:
        await self.changed.wait()
        self.changed = anyio.Event()


@pytest.fixture
def expiries() -> Iterator[_Expiries]:
    logger = logging.getLogger(SDK_LOGGER)
    handler, level = _Expiries(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.asynccontextmanager
async def serving(idle_s: float) -> AsyncGenerator[tuple[httpx.AsyncClient, MCPServer[Any]]]:
    """An everything server capped at `CAP` sessions, and a client for it (`CONCURRENCY`
    connections)."""
    server = build_everything_server(EverythingSettings())
    http = http_settings(max_sessions=CAP, session_idle_timeout=idle_s)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, build_app({PATH: server}, settings=http), http)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
        ) as client:
            yield client, server
        tg.cancel_scope.cancel()


def live_sessions(server: MCPServer[Any]) -> int:
    return len(server.session_manager._server_instances)  # pyright: ignore[reportPrivateUsage]


def host_of(client: httpx.AsyncClient) -> str:
    return client.base_url.netloc.decode()


async def open_sessions(client: httpx.AsyncClient, attempts: int) -> tuple[list[str], int]:
    """`attempts` sessions opened `CONCURRENCY` at a time: the ones opened, and how many got 503."""
    opened: list[str] = []
    refused = 0

    async def worker(share: int) -> None:
        nonlocal refused
        for _ in range(share):
            try:
                session = await open_session(client, PATH, host_of(client))
            except AssertionError:
                refused += 1
            else:
                assert session is not None
                opened.append(session)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for index in range(CONCURRENCY):
                tg.start_soon(worker, attempts // CONCURRENCY + (index < attempts % CONCURRENCY))
    return opened, refused


async def ping(client: httpx.AsyncClient, session: str | None = None) -> int:
    headers = {"host": host_of(client), "accept": "application/json, text/event-stream"}
    if session is not None:
        headers |= {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    answer = await client.post(PATH, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    return answer.status_code


async def test_thousands_of_idle_sessions_stop_at_the_cap(anyio_backend: str) -> None:
    async with serving(idle_s=600.0) as (client, server):
        baseline_tasks = len(asyncio.all_tasks())
        opened, refused = await open_sessions(client, CAP)
        assert (len(opened), refused) == (CAP, 0)
        full_tasks = len(asyncio.all_tasks())

        more, refused = await open_sessions(client, ATTEMPTS)
        assert (more, refused) == ([], ATTEMPTS)
        assert live_sessions(server) == CAP
        assert len(asyncio.all_tasks()) <= full_tasks + CONCURRENCY
        assert full_tasks - baseline_tasks >= CAP  # what each session costs, and stays capped
        assert await ping(client, opened[0]) == 200  # the sessions already open are served


async def test_idle_sessions_expire_and_free_their_room(anyio_backend: str, expiries: _Expiries) -> None:
    async with serving(idle_s=1.0) as (client, server):
        baseline_tasks = len(asyncio.all_tasks())
        opened, _ = await open_sessions(client, CAP)
        assert len(opened) == CAP
        assert len(asyncio.all_tasks()) >= baseline_tasks + CAP  # a task per session, at least
        with anyio.fail_after(30):
            while live_sessions(server) > 0:
                await expiries.wait()
        assert len(asyncio.all_tasks()) <= baseline_tasks + SLACK_TASKS
        assert await ping(client, opened[0]) == 404
        again, refused = await open_sessions(client, CAP - 1)
        assert (len(again), refused) == (CAP - 1, 0)
        async with Client(f"{client.base_url}{PATH}", mode="legacy") as mcp:
            assert (await mcp.list_tools()).tools
