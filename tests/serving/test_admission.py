"""Admission control over real HTTP (uvicorn on 127.0.0.1, httpx clients, the 2026-07-28 era):
reads beyond a bound are shed with 429/503 and `Retry-After`; `stop`, `emergency` and `land`
(also through `invoke_tool`) go through while every slot is held; a slot is free again once
its request ends."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from servers.admission import AdmissionSettings, is_flight_safety
from servers.http import build_app, serve
from tests.drone_server.harness import http_settings
from tests.hostile.battery import MODERN_VERSION, modern_meta

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn


class Toy:
    """A server whose `slow` read holds its slot until the test releases it."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.entered = 0
        self.holding = 2
        self.all_in = anyio.Event()
        self.server = MCPServer("toy")
        self.calls: list[str] = []

        @self.server.tool()
        async def slow() -> str:
            self.entered += 1
            if self.entered == self.holding:
                self.all_in.set()
            await self.release.wait()
            return "read"

        for name in ("stop", "land", "emergency", "get_state"):
            self.server.add_tool(self._quick(name), name=name)

    def _quick(self, name: str) -> Any:
        async def tool() -> str:
            self.calls.append(name)
            return name

        return tool


@contextlib.asynccontextmanager
async def _serve(toy: Toy, admission: AdmissionSettings) -> AsyncGenerator[str]:
    settings = http_settings(admission=admission)
    app = build_app({"/toy": toy.server}, settings=settings)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, settings)
        yield f"http://127.0.0.1:{port}/toy"
        toy.release.set()
        tg.cancel_scope.cancel()


def _call(name: str, arguments: dict[str, Any] | None = None) -> tuple[dict[str, str], bytes]:
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments or {}, "_meta": modern_meta()},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": MODERN_VERSION,
        "mcp-method": "tools/call",
        "mcp-name": name,
    }
    return headers, json.dumps(message).encode()


async def _post(http: httpx.AsyncClient, url: str, name: str) -> httpx.Response:
    headers, body = _call(name)
    return await http.post(url, headers=headers, content=body)


async def _hold(http: httpx.AsyncClient, url: str, toy: Toy, tg: anyio.abc.TaskGroup) -> None:
    """`toy.holding` `slow` reads in flight, each holding a slot (inside the tool, so admitted)."""
    for _ in range(toy.holding):
        tg.start_soon(_post, http, url, "slow")
    await toy.all_in.wait()


@pytest.mark.parametrize(
    ("admission", "status"),
    [
        pytest.param(AdmissionSettings(total=0, per_client=2), 429, id="per client"),
        pytest.param(AdmissionSettings(total=2, per_client=0), 503, id="in all"),
    ],
)
async def test_reads_beyond_a_bound_are_shed_and_safety_calls_are_not(
    admission: AdmissionSettings, status: int
) -> None:
    toy = Toy()
    async with _serve(toy, admission) as url, httpx.AsyncClient(timeout=20) as http:
        async with anyio.create_task_group() as tg:
            await _hold(http, url, toy, tg)
            shed = await _post(http, url, "get_state")
            assert shed.status_code == status, shed.text
            assert shed.headers["retry-after"] == "1"
            for name in ("stop", "land", "emergency"):
                answer = await _post(http, url, name)
                assert answer.status_code == 200, answer.text
            assert toy.calls == ["stop", "land", "emergency"]
            toy.release.set()
        assert (await _post(http, url, "get_state")).status_code == 200  # the slots are free again


def test_flight_safety_is_recognised_from_the_body() -> None:
    assert is_flight_safety(_call("stop")[1])
    assert is_flight_safety(_call("invoke_tool", {"name": "land", "arguments": {}})[1])
    assert not is_flight_safety(_call("invoke_tool", {"name": "takeoff"})[1])
    assert not is_flight_safety(_call("move")[1])
    assert not is_flight_safety(b'{"method": "tools/list", "params": {"name": "stop"}}')
    assert not is_flight_safety(b"[" + _call("stop")[1] + b"]")
    padded = _call("stop", {"pad": "x" * 5000})[1]
    assert not is_flight_safety(padded)  # too large to be one, and not parsed


def test_a_name_that_is_not_a_string_is_no_safety_call() -> None:
    """A hostile `invoke_tool` whose inner name is an object or a list must not crash the check."""
    for inner in ({"a": 1}, [1, 2], None, 5):
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "invoke_tool", "arguments": {"name": inner}},
            }
        ).encode()
        assert not is_flight_safety(body)


async def test_reads_take_turns_and_safety_calls_do_not_wait_for_one() -> None:
    """With every turn held, more reads wait outside the server (admitted, not shed) while
    `stop`, `land` and `emergency` go straight in: the loop serves a few busy requests, not all."""
    toy = Toy()
    admission = AdmissionSettings(turns=2, turn_s=60.0)
    waiting: list[httpx.Response] = []
    async with _serve(toy, admission) as url, httpx.AsyncClient(timeout=20) as http:
        async with anyio.create_task_group() as tg:
            await _hold(http, url, toy, tg)

            async def read() -> None:
                waiting.append(await _post(http, url, "slow"))

            for _ in range(3):
                tg.start_soon(read)
            for name in ("stop", "land", "emergency"):
                answer = await _post(http, url, name)
                assert answer.status_code == 200, answer.text
            assert toy.calls == ["stop", "land", "emergency"]
            assert toy.entered == 2  # the three later reads are waiting for a turn
            toy.release.set()
        assert toy.entered == 5
        assert [r.status_code for r in waiting] == [200, 200, 200]
