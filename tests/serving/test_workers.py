"""`tello-mcp serve everything fetch --workers 2`: two processes on one port, as an operator runs it.

One real server set serves the whole story (a start costs seconds on this machine): keep-alive
connections land on both workers and stay on theirs, both eras answer through a real
`mcp.Client`, a 2026-07-28 multi-round call started on one worker continues on the other (the
shared request-state key), and SIGTERM to the parent stops every process within a bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp_types import TextContent

from servers.config import ServeSettings
from servers.workers import SERVED_BY, STATE_KEYS_ENV, WORKER_ENV, refusal, worker_of
from tests.support.eras import ERAS
from tests.support.serve import START_TIMEOUT, Served, serving

pytestmark = pytest.mark.anyio

BIN = Path(sys.executable).parent
CONNECTIONS = 24
"""Concurrent keep-alive connections: all on one worker by chance has probability 2**-23."""
STOP_BOUND_S = 15.0
MODERN = "2026-07-28"


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(): v.decode() for k, _, v in pairs}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.asynccontextmanager
async def connection_to(base: str, pid: int | None = None) -> AsyncGenerator[httpx.AsyncClient]:
    """One keep-alive connection (a client limited to one), to worker `pid` if given: new
    connections are opened until the kernel hands one to that worker (bounded)."""
    for _ in range(64):
        client = httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=1))
        response = await client.get("/healthz")
        if pid is None or int(response.headers[SERVED_BY.decode()]) == pid:
            try:
                yield client
            finally:
                await client.aclose()
            return
        await client.aclose()
    raise AssertionError(f"64 connections and none reached worker {pid}")


async def _pids_on_one_connection(base: str, requests: int) -> set[int]:
    async with connection_to(base) as client:
        pids: set[int] = set()
        for _ in range(requests):
            response = await client.get("/healthz")
            assert response.status_code == 200
            pids.add(int(response.headers[SERVED_BY.decode()]))
        return pids


async def _both_workers_listening(served: Served, base: str, workers: set[int]) -> None:
    """The banner comes from worker 0; wait (bounded) until the other one answers too."""
    seen: set[int] = set()
    with anyio.fail_after(START_TIMEOUT):
        for _ in range(5000):  # a few ms each: worker 1 may start seconds after worker 0
            seen |= await _pids_on_one_connection(base, 1)
            if seen == workers:
                return
    raise AssertionError(f"only {seen} of workers {workers} answered ({served.stderr})")


async def _modern_call(client: httpx.AsyncClient, arguments: dict[str, Any], state: str | None) -> Any:
    """`tools/call simulate-research-query` in the 2026-07-28 era on this connection; the result."""
    params: dict[str, Any] = {
        "name": "simulate-research-query",
        "arguments": arguments,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    }
    if state is not None:
        params["requestState"] = state
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": MODERN,
        "mcp-method": "tools/call",
        "mcp-name": "simulate-research-query",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    response = await client.post("/everything", json=body, headers=headers)
    assert response.status_code == 200, response.text
    text = response.text.strip()
    datas = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    messages = [json.loads(d) for d in datas if d.startswith("{")] if datas else [json.loads(text)]
    [reply] = [m for m in messages if m.get("id") == 1]
    assert "error" not in reply, reply
    return reply["result"]


async def test_two_workers_share_the_port_serve_both_eras_and_stop_on_sigterm(tmp_path: Path) -> None:
    command = [str(BIN / "tello-mcp"), "serve", "everything", "fetch", "--workers", "2", "--port", "0"]
    async with serving(command, tmp_path / "stderr.log") as served:
        parent = served.process.pid
        workers = _children(parent)
        assert len(workers) == 2, workers
        assert served.banner.count("MCP endpoints") == 1
        assert "2 worker processes" in served.banner
        base = served.url("/everything").rsplit("/", 1)[0]
        await _both_workers_listening(served, base, workers)

        # Many keep-alive connections at once: each stays on one worker, and both get some.
        per_connection: list[set[int]] = []

        async def one() -> None:
            per_connection.append(await _pids_on_one_connection(base, 3))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(CONNECTIONS):
                    tg.start_soon(one)
        assert all(len(pids) == 1 for pids in per_connection), per_connection
        assert set().union(*per_connection) == workers

        # Both eras, through a real client, on both endpoints.
        for era in ERAS:
            with anyio.fail_after(60):
                async with Client(served.url("/everything"), mode=era) as client:
                    echoed = await client.call_tool("echo", {"message": f"hello {era}"})
                async with Client(served.url("/fetch"), mode=era) as client:
                    tools = {tool.name for tool in (await client.list_tools()).tools}
            texts = [block.text for block in echoed.content if isinstance(block, TextContent)]
            assert any(f"hello {era}" in text for text in texts), texts
            assert "fetch" in tools

        # One random request-state key, the same in both workers and not the parent's.
        keys = {_environ(pid).get(STATE_KEYS_ENV) for pid in workers}
        assert len(keys) == 1
        assert None not in keys
        assert STATE_KEYS_ENV not in _environ(parent)
        assert sorted(_environ(pid)[WORKER_ENV] for pid in workers) == ["0/2", "1/2"]

        # A multi-round call begun on one worker continues on the other.
        first, second = sorted(workers)
        arguments = {"topic": "drones", "ambiguous": False}
        with anyio.fail_after(60):
            async with connection_to(base, first) as to_first, connection_to(base, second) as to_second:
                round_one = await _modern_call(to_first, arguments, None)
                assert round_one.get("resultType") == "input_required", round_one
                round_two = await _modern_call(to_second, arguments, round_one["requestState"])
        assert round_two.get("resultType") == "input_required", round_two
        assert round_two["requestState"] != round_one["requestState"]

        # SIGTERM to the parent: every process gone within the bound, cleanly.
        served.process.terminate()
        with anyio.fail_after(STOP_BOUND_S):
            status = await served.process.wait()
        assert status == 0
        assert not any(_alive(pid) for pid in workers)


async def test_workers_follow_a_parent_killed_outright(tmp_path: Path) -> None:
    command = [str(BIN / "tello-mcp"), "serve", "fetch", "--workers", "2", "--port", "0"]
    async with serving(command, tmp_path / "stderr.log") as served:
        workers = _children(served.process.pid)
        assert len(workers) == 2, workers
        exits = [os.pidfd_open(pid) for pid in workers]  # readable once the process has exited
        try:
            served.process.kill()  # no signal forwarded: the workers must notice on their own
            await served.process.wait()
            with anyio.fail_after(STOP_BOUND_S):
                for fd in exits:
                    await anyio.wait_readable(fd)
        finally:
            for fd in exits:
                os.close(fd)


def test_workers_with_the_drone_are_refused() -> None:
    done = subprocess.run(
        [str(BIN / "tello-mcp"), "serve", "drone", "everything", "--sim", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers 2: drone cannot run in several processes" in done.stderr


@pytest.mark.parametrize(
    ("settings", "names", "reason"),
    [
        (ServeSettings(workers=2), ["everything", "fetch"], None),
        (ServeSettings(workers=1), ["drone", "proxy"], None),
        (ServeSettings(workers=2), ["fetch", "proxy"], "proxy cannot run in several processes"),
        (ServeSettings(workers=2, transport="stdio"), ["everything"], "streamable HTTP only"),
        (ServeSettings(workers=0), ["everything"], "at least 1"),
    ],
)
def test_refusal(settings: ServeSettings, names: list[str], reason: str | None) -> None:
    refused = refusal(settings, names)
    if reason is None:
        assert refused is None
    else:
        assert refused is not None
        assert reason in refused


def test_worker_of_reads_the_environment() -> None:
    assert worker_of({}) is None
    assert worker_of({WORKER_ENV: "1/3"}) == (1, 3)
