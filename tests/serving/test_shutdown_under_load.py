"""SIGTERM to `tello-mcp serve --sim` with 32 callers mid-call: a graceful, bounded shutdown.

One real process serves everything (the drone on the embedded simulator in its four modes, the
everything server, the fetcher, allowed to read 127.0.0.1 here). 32 clients, half in each
protocol era, are calling it when SIGTERM arrives:

* 17 are mid-call for certain: a long `move` on the flying drone (10 cm/s, reporting
  progress), 8 `trigger-long-running-operation`s (progress seen) and 8 `fetch`es of a local
  page whose server holds every answer until the test lets it go;
* 15 call back to back without pause (`get_battery` on `/drone`, reading `run_code` scripts on
  `/drone-code`); SIGTERM goes out at a moment when all 15 have a call outstanding, and each
  sends its next one into the shutdown. The server logs how many it had in flight (27-32 in
  most runs here; at least the 17 above, which the test checks).

What must happen (README, "Shutdown"): `/readyz` answers 503 at once while the listener stays
open; a call sent after SIGTERM is refused with a JSON-RPC error saying the server is shutting
down; every call already in flight ends with its result (the move: interrupted, as the drone
is landed at once); the simulator's own ground truth, logged at exit, shows `stop` then `land`
executed and the drone on the ground; and the process exits within `EXIT_BOUND_S`.

Then: calls that outlast the drain end with a complete JSON-RPC error (at the deadline, or at
once on a second SIGTERM), and, in process, which requests the draining gate refuses and which
it lets through.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.abc
import httpx
import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from servers.drain import SHUT_DOWN_MID_CALL, SHUTTING_DOWN, drain_of
from servers.everything.settings import EverythingSettings
from servers.http import HttpSettings, serve
from servers.registry import SERVERS
from servers.suite import build_suite_app
from tests.support.eras import ERAS
from tests.support.serve import Served, serving

pytestmark = pytest.mark.anyio

BIN = Path(sys.executable).parent
TIME_SCALE: Final = 4.0
SHUTDOWN_TIMEOUT_S: Final = HttpSettings().shutdown_timeout
"""The drain's bound (the default `shutdown_timeout`: 5 s)."""
EXIT_BOUND_S: Final = 2 * SHUTDOWN_TIMEOUT_S + 5.0
"""Real seconds from SIGTERM to exit, the README's bound: the drain (at most `shutdown_timeout`),
uvicorn's own stop (at most `shutdown_timeout` more, for connections still open), and the
lifespans' exits with the drone already down, with room for a loaded machine. Today it takes
about as long as the longest call in flight (~`LONG_OP_S`)."""
LONG_OP_S: Final = 3.0
"""Real seconds each long-running operation takes: longer than the time from its start to
SIGTERM, shorter than the drain."""
FETCHES: Final = 8
LONG_OPS: Final = 8
LOOPERS: Final = 15
CALLERS: Final = 1 + FETCHES + LONG_OPS + LOOPERS
SCRIPT: Final = "const a = await get_battery({}); const s = await get_state({}); [a, s.flight]"
"""A `run_code` script of the loopers: reads only (a script's flight actions are its own test)."""
PAGE: Final = b"<html><head><title>Held</title></head><body><p>held page</p></body></html>"


@dataclass
class HeldPages:
    """A local HTTP server whose page answers wait for `release` (robots.txt answers at once)."""

    url: str = ""
    requests: int = 0
    arrived: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)
    expected: int = FETCHES


@contextlib.asynccontextmanager
async def held_pages() -> AsyncGenerator[HeldPages]:
    pages = HeldPages()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            request = b""
            with anyio.move_on_after(30):
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    try:
                        request += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                robots = request.startswith(b"GET /robots.txt ")
                if not robots:
                    pages.requests += 1
                    if pages.requests >= pages.expected:
                        pages.arrived.set()
                    await pages.release.wait()
                body, kind = (b"User-agent: *\nAllow: /\n", b"text/plain") if robots else (PAGE, b"text/html")
                head = b"HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
                    kind,
                    len(body),
                )
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await stream.send(head + body)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    pages.url = f"http://127.0.0.1:{port}/page.html"
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield pages
        finally:
            pages.release.set()
            tg.cancel_scope.cancel()


@dataclass
class Outcomes:
    """How every call ended, by kind: "ok", "refused" (the shutdown refusal), or what else."""

    ended: Counter[str] = field(default_factory=Counter[str])
    other: list[str] = field(default_factory=list[str])
    move: CallToolResult | None = None
    refusals: list[str] = field(default_factory=list[str])

    def note(self, kind: str, how: str) -> None:
        self.ended[f"{kind}: {how}"] += 1


def text_of(result: CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


def shutdown_refusal(exc: BaseException) -> bool:
    """Whether `exc` (or an exception inside its groups) carries the server's shutdown refusal."""
    if isinstance(exc, BaseExceptionGroup):
        group: BaseExceptionGroup[BaseException] = exc
        return all(shutdown_refusal(inner) for inner in group.exceptions)
    return "shutting down" in str(exc)


def leaves(exc: BaseException) -> str:
    """The exceptions at the bottom of `exc`'s groups: "Type: message; ..."."""
    if isinstance(exc, BaseExceptionGroup):
        group: BaseExceptionGroup[BaseException] = exc
        return "; ".join(leaves(inner) for inner in group.exceptions)
    return f"{type(exc).__name__}: {exc}"


def events(stderr: Path) -> list[dict[str, Any]]:
    """The server's JSON log lines."""
    out: list[dict[str, Any]] = []
    for line in stderr.read_text().splitlines():
        with contextlib.suppress(ValueError):
            record: object = json.loads(line)
            if isinstance(record, dict):
                out.append(record)  # pyright: ignore[reportUnknownArgumentType]
    return out


async def readyz(base: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.get(f"{base}/readyz")


async def test_sigterm_with_32_calls_in_flight(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.log"
    command = [
        str(BIN / "tello-mcp"),
        "serve",
        "--sim",
        "--time-scale",
        str(TIME_SCALE),
        "--stale-after-s",
        "10",
        "--port",
        "0",
        "--fetch-allow",
        "127.0.0.1",
        "--log-format",
        "json",
        "--log-level",
        "info",
    ]
    outcomes = Outcomes()
    with anyio.fail_after(100):
        async with held_pages() as pages, serving(command, stderr) as served:
            base = served.url("/drone").removesuffix("/drone")
            assert (await readyz(base)).status_code == 200
            took = await _shutdown_under_load(served, base, pages, outcomes)

    # Every call ended, and each the way it should: nothing hung, nothing half-written.
    assert outcomes.other == [], "\n".join(outcomes.other)
    assert outcomes.ended["fetch: ok"] == FETCHES, outcomes.ended
    assert outcomes.ended["long-running-operation: ok"] == LONG_OPS, outcomes.ended
    assert sum(n for k, n in outcomes.ended.items() if k.endswith(": refused")) == LOOPERS, outcomes.ended
    assert all(SHUTTING_DOWN in r for r in outcomes.refusals), outcomes.refusals[:3]
    # The move was interrupted by the shutdown's stop and said so in its result.
    assert outcomes.move is not None
    assert "was cancelled by 'stop'" in text_of(outcomes.move), text_of(outcomes.move)

    logged = events(stderr)
    names = [e.get("event") for e in logged]
    [draining] = [e for e in logged if e.get("event") == "shutdown_draining"]
    assert draining["in_flight"] >= 1 + FETCHES + LONG_OPS, draining  # the 17 held for certain
    [drained] = [e for e in logged if e.get("event") == "shutdown_drained"]
    assert drained["still_in_flight"] == 0, drained
    assert drained["refused"] >= LOOPERS, drained
    # The simulator's ground truth at exit: stopped mid-move, landed, on the ground.
    [truth] = [e for e in logged if e.get("event") == "sim_ground_truth"]
    assert truth["flight_state"] == "landed", truth
    # The move was under way when SIGTERM came: interrupted by the shutdown's stop, then landed.
    assert truth["last_commands"][-3:] == ["forward 300: interrupted", "stop: done", "land: done"], truth
    assert names.index("landed_before_shutdown") < names.index("shutdown_drained"), names
    assert took < EXIT_BOUND_S, f"exit {took:.1f} s after SIGTERM"


async def _shutdown_under_load(served: Served, base: str, pages: HeldPages, outcomes: Outcomes) -> float:
    """Start the 32 callers, SIGTERM once the held ones are mid-call; seconds until exit."""
    drone, code = served.url("/drone"), served.url("/drone-code")
    everything, fetch = served.url("/everything"), served.url("/fetch")
    flying = anyio.Event()
    moving = anyio.Event()
    progressing: set[int] = set()
    long_ops_running = anyio.Event()
    sigterm = anyio.Event()
    outstanding = 0
    all_calling = anyio.Event()

    async def pilot() -> None:
        async with Client(drone, mode=ERAS[0]) as client:
            for tool, arguments in (("takeoff", {}), ("set_speed", {"speed_cm_s": 10})):
                result = await client.call_tool(tool, arguments)
                assert not result.is_error, text_of(result)
            flying.set()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                moving.set()

            outcomes.move = await client.call_tool(
                "move", {"direction": "forward", "distance_cm": 300}, progress_callback=on_progress
            )
            outcomes.note("move", "ok")

    async def long_op(i: int) -> None:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            progressing.add(i)
            if len(progressing) == LONG_OPS:
                long_ops_running.set()

        async with Client(everything, mode=ERAS[i % 2]) as client:
            result = await client.call_tool(
                "trigger-long-running-operation",
                {"duration": LONG_OP_S, "steps": 30},
                progress_callback=on_progress,
            )
            outcomes.note("long-running-operation", "error" if result.is_error else "ok")

    async def fetcher(i: int) -> None:
        async with Client(fetch, mode=ERAS[i % 2]) as client:
            result = await client.call_tool("fetch", {"url": pages.url})
            ok = not result.is_error and "held page" in text_of(result)
            outcomes.note("fetch", "ok" if ok else f"wrong: {text_of(result)[:80]}")

    async def looper(i: int) -> None:
        """Back-to-back calls until the shutdown refuses one (it must, during the drain)."""
        kind, url, tool, arguments = (
            ("run_code", code, "run_code", {"code": SCRIPT})
            if i % 2
            else ("get_battery", drone, "get_battery", {})
        )
        nonlocal outstanding
        client = Client(url, mode=ERAS[i % 2])
        try:
            async with client:
                while True:
                    outstanding += 1
                    if outstanding == LOOPERS:
                        all_calling.set()
                    try:
                        result = await client.call_tool(tool, arguments)
                    finally:
                        outstanding -= 1
                    if result.is_error:
                        outcomes.other.append(f"{kind}: isError {text_of(result)[:120]}")
                        return
        except Exception as exc:
            if not (sigterm.is_set() and shutdown_refusal(exc)):
                raise
            outcomes.refusals.append(leaves(exc))
            outcomes.note(kind, "refused")

    async def guarded(name: str, fn: Any, *args: Any) -> None:
        try:
            await fn(*args)
        except Exception as exc:
            outcomes.other.append(f"{name}: {leaves(exc)}"[:300])

    sent = math.inf
    async with anyio.create_task_group() as tg:
        tg.start_soon(guarded, "pilot", pilot)
        await flying.wait()
        for i in range(LONG_OPS):
            tg.start_soon(guarded, "long_op", long_op, i)
        for i in range(FETCHES):
            tg.start_soon(guarded, "fetch", fetcher, i)
        for i in range(LOOPERS):
            tg.start_soon(guarded, "looper", looper, i)
        with anyio.fail_after(60):
            await moving.wait()
            await long_ops_running.wait()
            await pages.arrived.wait()
            await all_calling.wait()

        served.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        sigterm.set()
        # /readyz: 503 from the moment the server has the signal, over a new connection.
        with anyio.fail_after(3):
            while (response := await readyz(base)).status_code == 200:
                await anyio.lowlevel.checkpoint()
        assert response.status_code == 503, response.text
        assert response.json()["ready"] is False
        pages.release.set()  # the held fetches may answer now, during the drain
    with anyio.fail_after(EXIT_BOUND_S * 2):
        await served.process.wait()
    took = time.monotonic() - sent
    assert served.process.returncode == 0, served.process.returncode
    return took


@pytest.mark.parametrize("hurry", [False, True], ids=["at-the-deadline", "on-a-second-signal"])
async def test_calls_that_outlast_the_drain_end_with_a_clear_error(tmp_path: Path, hurry: bool) -> None:
    """A call longer than the drain is ended with a complete JSON-RPC error, in both eras: at
    the drain's deadline (`shutdown_timeout`), or at once when a second SIGTERM comes."""
    stderr = tmp_path / "stderr.log"
    command = [str(BIN / "tello-mcp"), "serve", "everything", "--port", "0", "--log-format", "json"]
    errors: dict[str, str] = {}
    with anyio.fail_after(90):
        async with serving(command, stderr) as served:
            url = served.url("/everything")
            base = url.removesuffix("/everything")
            sent = math.inf
            started: set[str] = set()
            all_started = anyio.Event()

            async def caller(era: str) -> None:
                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    started.add(era)
                    if len(started) == len(ERAS):
                        all_started.set()

                async with Client(url, mode=era) as client:
                    try:
                        result = await client.call_tool(
                            "trigger-long-running-operation",
                            {"duration": 120, "steps": 120},
                            progress_callback=on_progress,
                        )
                    except Exception as exc:
                        errors[era] = leaves(exc)
                    else:
                        errors[era] = f"no error: {text_of(result)[:100]}"

            async with anyio.create_task_group() as tg:
                for era in ERAS:
                    tg.start_soon(caller, era)
                await all_started.wait()
                served.process.send_signal(signal.SIGTERM)
                sent = time.monotonic()
                if hurry:
                    with anyio.fail_after(5):
                        while (await readyz(base)).status_code == 200:
                            await anyio.lowlevel.checkpoint()
                    served.process.send_signal(signal.SIGTERM)
            ended = time.monotonic() - sent
            with anyio.fail_after(EXIT_BOUND_S):
                await served.process.wait()
            assert served.process.returncode == 0
    assert set(errors) == set(ERAS)
    for era, error in errors.items():
        assert SHUT_DOWN_MID_CALL in error, (era, error)
    [drained] = [e for e in events(stderr) if e.get("event") == "shutdown_drained"]
    assert drained["aborted"] == len(ERAS), drained
    if hurry:
        assert ended < SHUTDOWN_TIMEOUT_S, f"{ended:.1f} s"  # not the whole drain
    else:
        assert SHUTDOWN_TIMEOUT_S <= ended < SHUTDOWN_TIMEOUT_S + 5, f"{ended:.1f} s"


MODERN_HEADERS: Final = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2026-07-28",
}


@pytest.mark.parametrize(
    ("message", "refused"),
    [
        ({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo"}}, True),
        ({"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {}}, True),
        ({"jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen", "params": {}}, True),
        ({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}}, False),
        ({"jsonrpc": "2.0", "id": 7, "method": "ping"}, False),
        ({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}}, False),
        ({"jsonrpc": "2.0", "id": 3, "result": {"action": "accept"}}, False),
        (
            {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tools/call",
                "params": {"name": "echo", "requestState": "sealed"},
            },
            False,
        ),
    ],
    ids=["call", "initialize", "listen", "list", "ping", "notification", "response", "call-retry"],
)
async def test_the_drain_refuses_new_work_and_passes_what_calls_in_flight_need(
    message: dict[str, Any], refused: bool
) -> None:
    """In process, the gate alone: once draining, a request that starts work gets 503 with a
    JSON-RPC error carrying its id; anything else reaches the MCP endpoint (whatever it answers)."""
    component = SERVERS["everything"].component(EverythingSettings())
    http = HttpSettings(port=0)
    app = build_suite_app([component], http)
    drain = drain_of(app)
    response: httpx.Response | None = None
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            port: int = await tg.start(serve, app, http)
            url = f"http://127.0.0.1:{port}/everything"
            async with httpx.AsyncClient(timeout=10) as client:
                assert (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
                drain.begin()
                assert (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 503
                response = await client.post(url, json=message, headers=MODERN_HEADERS)
            tg.cancel_scope.cancel()
    assert response is not None
    if refused:
        assert response.status_code == 503, response.text
        assert response.json() == {
            "jsonrpc": "2.0",
            "id": 7,
            "error": {"code": -32000, "message": SHUTTING_DOWN},
        }
        assert drain.refused == 1
    else:
        assert response.status_code != 503, response.text
        assert drain.refused == 0
