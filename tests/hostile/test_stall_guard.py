"""The stall guard (issue 18): every server of the suite, fed the heaviest input a client can
send, never runs one event-loop callback for more than 50 ms of CPU.

Judged on the CPU time of each callback of the server's loop (`tests.support.loop_cpu`): the
suite runs on a loop of its own thread, the clients on the test's, so what is measured is the
server's work only, and a loaded machine (which delays a callback without it doing more work)
cannot fail it. A callback over the limit holds back everything else the process serves: the
drone's keepalive, another agent's `stop`.

The inputs are what any client may send, at the caps the servers enforce: bodies filling the
1 MiB cap with many small values or keys, deep nesting, the longest `get_tool` query, scripts
that log, return or pass arguments up to the output cap, huge `invoke_tool` arguments, the
largest pages the fetcher reads. Each runs in both protocol eras (their request paths parse
differently). Fetch charsets are left out: their decoding is fixed on another branch.
"""

from __future__ import annotations

import contextlib
import gzip
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import pytest
from mcp import Client, MCPError
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from servers.drone.app import drone_component
from servers.drone.link import LogEntry
from servers.drone.runtime import DroneRuntime
from servers.drone.server import FLIGHT_LOG_URI, STATE_URI
from servers.everything.resources import GZIP_BASE
from servers.everything.settings import EverythingSettings
from servers.fetch.config import FetchConfig
from servers.http import HttpSettings, build_app, serve
from servers.registry import SERVERS
from servers.suite import build_suite_app
from tests.drone_server.harness import http_drone_settings, http_settings, wait_connected
from tests.hostile.suite import Suite
from tests.support.eras import ERAS
from tests.support.loop_cpu import STALL_S, LoopCpuMeter, LoopThread, metering, on_own_loop

pytestmark = pytest.mark.anyio

BODY_CAP: Final = HttpSettings().max_body_bytes
"""The production body cap (1 MiB): the biggest request any client can send."""
ROOM: Final = 4096
"""Bytes of a request that are not the hostile value (JSON-RPC envelope, `_meta`)."""
MiB: Final = 1024 * 1024

# ---- values that fill a request body ----
LONG_STRING: Final = "A" * (BODY_CAP - ROOM)
MANY_ESCAPES: Final = "\U0001f600" * ((BODY_CAP - ROOM) // 12)  # "\ud83d\ude00" each


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


MANY_NESTS: Final = [nested(150)] * ((BODY_CAP - ROOM) // 302)  # 150 deep: what the SDK still parses

# ---- get_tool queries at the 1,000-character cap ----
ONE_WORD: Final = "x" * 1000
MANY_WORDS: Final = " ".join("abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(500))
TOOL_WORDS: Final = ("move rotate flip land " * 50)[:1000]

# ---- run_code scripts at the sandbox's caps (output 256 KiB, 100 calls, code 100 kB) ----
SCRIPTS: Final = {
    "300,000 one-character logs": "for (let i = 0; i < 300000; i++) console.log('x'); 1",
    "100 logs of 100 kB": "for (let i = 0; i < 100; i++) console.log('x'.repeat(100000)); 1",
    "a million-item result": "Array.from({length: 1000000}, (_, i) => i)",
    "a 4 MB string result": "'x'.repeat(4000000)",
    "a result 10,000 deep": "let v = 1; for (let i = 0; i < 10000; i++) v = [v]; v",
    "a result of 20,000 small objects": "Array.from({length: 20000}, (_, i) => ({i, s: 'ab'}))",
    "100 concurrent calls": (
        "const a = []; for (let i = 0; i < 100; i++) a.push(get_state({})); "
        "(await Promise.allSettled(a)).length"
    ),
    "100 calls with 200 kB arguments": (
        "const a = []; for (let i = 0; i < 100; i++) a.push(get_state({x: 'y'.repeat(200000)})); "
        "(await Promise.allSettled(a)).length"
    ),
    "100 calls with 5,000-key arguments": (
        "const o = {}; for (let i = 0; i < 5000; i++) o['k' + i] = i; const a = []; "
        "for (let i = 0; i < 100; i++) a.push(get_state(o)); (await Promise.allSettled(a)).length"
    ),
    "a 100 kB script": "1;" + " " * 99_000 + "//",
    "a thrown 4 MB error": "throw new Error('e'.repeat(4000000))",
}

# ---- the fetcher's pages: at its caps, but small enough to simplify in a few seconds ----
PARAGRAPH: Final = "<div class='c'><p>Some <a href='/x'>linked</a> text with <b>bold</b> words.</p></div>\n"
FETCH_CAP: Final = FetchConfig().fetch_max_response_bytes
DECODED_CAP: Final = FetchConfig().fetch_max_decompressed_bytes


def _html(size: int) -> bytes:
    body = PARAGRAPH * (size // len(PARAGRAPH))
    return f"<html><head><title>Big</title></head><body>{body}</body></html>".encode()


def build_site() -> Starlette:
    """Big pages on 127.0.0.1: HTML to simplify, text and gzip at the fetcher's size caps."""
    html, text = _html(128 * 1024), ("line of plain text " * 5 + "\n").encode() * (FETCH_CAP // 96 - 1)
    packed = gzip.compress(_html(DECODED_CAP - 64 * 1024), mtime=0)
    over = b"x" * (FETCH_CAP + 64 * 1024)

    def page(body: bytes, media: str, **headers: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(_: Request) -> Response:
            return Response(body, media_type=media, headers=headers)

        return endpoint

    async def no_robots(_: Request) -> Response:
        return PlainTextResponse("not found", status_code=404)

    return Starlette(
        routes=[
            Route("/robots.txt", no_robots),
            Route("/page.html", page(html, "text/html")),
            Route("/text", page(text, "text/plain")),
            Route("/packed.html", page(packed, "text/html", **{"Content-Encoding": "gzip"})),
            Route("/over", page(over, "text/plain")),
        ]
    )


@contextlib.asynccontextmanager
async def serving_suite() -> AsyncGenerator[Suite]:
    """Every server of `tello-mcp serve --sim`, at production caps, the fetcher allowed onto
    127.0.0.1 (the big pages)."""
    runtime = DroneRuntime(http_drone_settings())
    http = http_settings()
    components = [
        drone_component(runtime),
        SERVERS["everything"].component(EverythingSettings()),
        SERVERS["fetch"].component(FetchConfig(fetch_allow=("127.0.0.1",))),
    ]
    app = build_suite_app(components, http)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, http)
        await wait_connected(runtime)
        try:
            yield Suite(port, runtime, app)
        finally:
            tg.cancel_scope.cancel()


@pytest.fixture(scope="module")
async def site(anyio_backend: str) -> AsyncGenerator[int]:
    """The big pages, served on the test's loop (their cost is not the fetcher's)."""
    settings = HttpSettings(port=0, shutdown_timeout=1.0)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, build_site(), settings)
        yield port
        tg.cancel_scope.cancel()


@pytest.fixture(scope="module")
def suite(anyio_backend: str) -> Iterator[LoopThread[Suite]]:
    with on_own_loop(serving_suite) as served:
        served.run(fill_flight_log)
        yield served


async def fill_flight_log(suite: Suite) -> None:
    """The flight log at its length cap, each entry as long as the link writes them."""
    log = suite.runtime.link.flight_log
    assert log.maxlen is not None
    for i in range(log.maxlen):
        log.append(
            LogEntry(float(i), "go 500 500 500 100", "outcome_unknown", None, 7.0, 3, verdict="unknown",
                     evidence="no state packet moved since the command was sent " * 3, client="x" * 64)
        )  # fmt: skip


@pytest.fixture(scope="module")
def meter(suite: LoopThread[Suite]) -> Iterator[LoopCpuMeter]:
    with metering(suite.ident) as measuring:
        yield measuring


@pytest.fixture(scope="module")
async def clients(suite: LoopThread[Suite], site: int) -> AsyncGenerator[dict[tuple[str, str], Client]]:
    """A client per endpoint and era, warmed up (first calls import and build caches)."""
    base = suite.value.base
    paths = ("/drone", "/drone-search", "/drone-code", "/drone-codesearch", "/everything", "/fetch")
    async with contextlib.AsyncExitStack() as stack:
        connected: dict[tuple[str, str], Client] = {}
        for path in paths:
            for era in ERAS:
                client = await stack.enter_async_context(Client(f"{base}{path}", mode=era))
                await client.list_tools()
                connected[path, era] = client
        for era in ERAS:
            await connected["/drone", era].call_tool("get_state", {})
            await connected["/drone", era].call_tool("move", {"direction": "sideways", "distance_cm": 1})
            await connected["/drone-search", era].call_tool("get_tool", {"query": "move"})
            await connected["/drone-search", era].call_tool("invoke_tool", {"name": "nope"})
            await connected["/drone-code", era].call_tool("run_code", {"code": "await get_state({})"})
            await connected["/drone-codesearch", era].call_tool("run_code", {"code": "1"})
            await connected["/everything", era].call_tool("echo", {"message": "hi"})
            await connected["/fetch", era].call_tool("fetch", {"url": f"http://127.0.0.1:{site}/text"})
        yield connected


Drive = Callable[[Client, int], Awaitable[Any]]
"""One hostile input: given the endpoint's client and the site's port, make the call."""


@dataclass(frozen=True, slots=True)
class Case:
    path: str
    name: str
    drive: Drive
    refused: bool | None = None
    """Whether the answer is an `isError` result (None: not a tool call, or either)."""


def tool(name: str, arguments: dict[str, Any]) -> Drive:
    async def drive(client: Client, _site: int) -> Any:
        return await client.call_tool(name, arguments)

    return drive


def fetch(path: str, **arguments: Any) -> Drive:
    async def drive(client: Client, site: int) -> Any:
        return await client.call_tool("fetch", {"url": f"http://127.0.0.1:{site}{path}", **arguments})

    return drive


def resource(uri: str) -> Drive:
    async def drive(client: Client, _site: int) -> Any:
        try:
            return await client.read_resource(uri)
        except MCPError as exc:  # a refused read is an answer too
            return exc

    return drive


def listing(what: str) -> Drive:
    async def drive(client: Client, _site: int) -> Any:
        return await getattr(client, what)()

    return drive


BODIES: Final = {
    "a 1 MiB string": LONG_STRING,
    "87,000 escaped surrogate pairs": MANY_ESCAPES,
    # Just inside the body's structure bounds (`servers.security.MAX_JSON_VALUES`/`_CONTAINERS`):
    "19,000 zeros": [0] * 19_000,
    "19,000 keys": {f"k{i}": 0 for i in range(19_000)},
    "4,900 small objects": [{"k": i} for i in range(4_900)],
}
"""Values that fill a request body, sent as the argument a tool checks first.

The SDK parses and validates every request on the loop at about a microsecond per JSON value,
and formats a failed validation over the whole input: 500,000 items held it 60-100 ms, 87,000
keys 50-80 ms, 3,000 lists nested 150 deep 1-2 s. Bodies are therefore bounded in structure
before the SDK sees them (413 beyond; `test_many_small_containers_are_refused_unparsed`), and
the cases above sit just inside the bounds."""

DRONE, SEARCH, CODE, CODESEARCH = "/drone", "/drone-search", "/drone-code", "/drone-codesearch"
EVERYTHING, FETCH = "/everything", "/fetch"
DATA_URI: Final = "data:;base64," + "QUFB" * ((BODY_CAP - ROOM) // 4)
LOGS: Final = "300,000 one-character logs"
BIG_ARGUMENTS: Final = "100 calls with 200 kB arguments"

CASES: Final[tuple[Case, ...]] = (
    *(Case(DRONE, f"move direction: {n}", tool("move", {"direction": v}), True) for n, v in BODIES.items()),
    *(Case(DRONE, f"extra argument: {n}", tool("get_state", {"junk": v})) for n, v in BODIES.items()),
    Case(
        DRONE,
        "show_matrix text: surrogate pairs",
        tool("show_matrix", {"mode": "scroll", "text": MANY_ESCAPES}),
        True,
    ),
    Case(DRONE, "state resource", resource(STATE_URI)),
    Case(DRONE, "flight log resource (full)", resource(FLIGHT_LOG_URI)),
    Case(DRONE, "resources/list", listing("list_resources")),
    Case(SEARCH, "get_tool: one 1,000-character word", tool("get_tool", {"query": ONE_WORD}), False),
    Case(SEARCH, "get_tool: 500 one-letter words", tool("get_tool", {"query": MANY_WORDS}), False),
    Case(SEARCH, "get_tool: 1,000 characters of tool words", tool("get_tool", {"query": TOOL_WORDS}), False),
    Case(SEARCH, "get_tool: a 1 MiB query", tool("get_tool", {"query": LONG_STRING}), True),
    Case(SEARCH, "invoke_tool: a 200-character unknown name", tool("invoke_tool", {"name": "m" * 200}), True),
    *(
        Case(
            SEARCH,
            f"invoke_tool move: {n}",
            tool("invoke_tool", {"name": "move", "arguments": {"direction": v}}),
            True,
        )
        for n, v in BODIES.items()
    ),
    *(Case(CODE, f"run_code: {n}", tool("run_code", {"code": s})) for n, s in SCRIPTS.items()),
    Case(CODE, "run_code: a 1 MiB script", tool("run_code", {"code": LONG_STRING}), True),
    Case(CODESEARCH, "get_tool: 500 one-letter words", tool("get_tool", {"query": MANY_WORDS}), False),
    Case(CODESEARCH, f"run_code: {LOGS}", tool("run_code", {"code": SCRIPTS[LOGS]})),
    Case(CODESEARCH, f"run_code: {BIG_ARGUMENTS}", tool("run_code", {"code": SCRIPTS[BIG_ARGUMENTS]})),
    Case(EVERYTHING, "echo: a 1 MiB message", tool("echo", {"message": LONG_STRING}), False),
    Case(EVERYTHING, "echo: surrogate pairs", tool("echo", {"message": MANY_ESCAPES}), False),
    *(
        Case(EVERYTHING, f"get-sum a: {n}", tool("get-sum", {"a": v, "b": 1}), True)
        for n, v in BODIES.items()
    ),
    Case(
        EVERYTHING,
        "gzip-file-as-resource: 64 KiB",
        tool("gzip-file-as-resource", {"data": "x" * 65536}),
        False,
    ),
    Case(
        EVERYTHING,
        "gzip-file-as-resource: a 1 MiB data: URI",
        tool("gzip-file-as-resource", {"data": DATA_URI}),
        True,
    ),
    Case(EVERYTHING, "resources/list", listing("list_resources")),
    Case(EVERYTHING, "gzip resource: payload twice the cap", resource(f"{GZIP_BASE}/a.gz/" + "A" * 8192)),
    Case(
        EVERYTHING, "resource with a 4,000-digit id", resource("demo://resource/dynamic/text/" + "9" * 4000)
    ),
    Case(FETCH, "a 128 KiB page to simplify", fetch("/page.html", max_length=999_999), False),
    Case(FETCH, "5 MiB of text, raw", fetch("/text", max_length=999_999, raw=True), False),
    Case(
        FETCH,
        "gzip inflating to 10 MiB, raw",
        fetch("/packed.html", raw=True, start_index=DECODED_CAP - 200_000),
        False,
    ),
    Case(FETCH, "a body over the 5 MiB cap", fetch("/over"), True),
)


async def settle(base: str) -> None:
    """A round trip after a call: callbacks the call left queued on the server's loop (the end
    of a response, a session's clean-up) run before `/healthz` is answered, so they are charged
    to the call that left them."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        (await http.get("/healthz")).raise_for_status()


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.path} {case.name}")
async def test_no_handler_holds_the_loop(
    case: Case,
    clients: dict[tuple[str, str], Client],
    meter: LoopCpuMeter,
    site: int,
    suite: LoopThread[Suite],
) -> None:
    for era in ERAS:
        client = clients[case.path, era]
        since = len(meter.slow)
        with meter.during(f"{case.path} {case.name} ({era})"), anyio.fail_after(60):
            answer = await case.drive(client, site)
            await settle(suite.value.base)
        stalls = [c for c in meter.slow[since:] if c.cpu_s > STALL_S]
        assert not stalls, f"{era}: the loop was held > {STALL_S * 1e3:.0f} ms:\n" + "\n".join(
            map(str, stalls)
        )
        if case.refused is not None:
            assert isinstance(answer, CallToolResult)
            assert answer.is_error is case.refused, f"{era}: {_text(answer)[:300]}"


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def test_many_small_containers_are_refused_unparsed(
    clients: dict[tuple[str, str], Client], meter: LoopCpuMeter, suite: LoopThread[Suite]
) -> None:
    """1 MiB of lists nested 150 deep held the loop 1-2 s inside the SDK's validation; the body
    bound (`servers.security.json_shape`) refuses it with 413 before anything parses it."""
    since = len(meter.slow)
    with meter.during("3,000 lists nested 150 deep"), anyio.fail_after(60):
        with pytest.raises(MCPError):  # the client's word for the 413 (tests/serving/test_json_shape.py)
            await clients[DRONE, "legacy"].call_tool("move", {"direction": MANY_NESTS})
        await settle(suite.value.base)
    held = [c for c in meter.slow[since:] if c.cpu_s > STALL_S]
    del meter.slow[since:]
    assert not held, "\n".join(map(str, held))


async def test_nothing_held_the_loop_between_the_cases(meter: LoopCpuMeter) -> None:
    """The whole module: no callback anywhere (between cases, in the simulator, the link)."""
    assert meter.callbacks > 1000, "the meter saw nothing: is Handle._run still wrapped?"
    assert not meter.stalls(), meter.report()


# ---- the guard itself: it fails on a handler that holds the loop, and only then ----


def burn(seconds: float) -> None:
    """Spin the calling thread's CPU for `seconds` of CPU time (not wall time)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def build_heavy_server() -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("heavy")

    @server.tool()
    async def on_the_loop(ms: int) -> str:  # pyright: ignore[reportUnusedFunction]
        """Burn `ms` of CPU on the event loop (the bug the guard exists for)."""
        burn(ms / 1000)
        return "done"

    @server.tool()
    async def off_the_loop(ms: int) -> str:  # pyright: ignore[reportUnusedFunction]
        """Burn the same CPU in a worker thread, as the fetcher simplifies HTML."""
        await anyio.to_thread.run_sync(burn, ms / 1000)
        return "done"

    @server.tool()
    async def waiting(ms: int) -> str:  # pyright: ignore[reportUnusedFunction]
        """Take `ms` of wall time without CPU."""
        await anyio.sleep(ms / 1000)
        return "done"

    return server


@contextlib.asynccontextmanager
async def serving_heavy() -> AsyncGenerator[int]:
    settings = HttpSettings(port=0, shutdown_timeout=1.0)
    app = build_app({"/heavy": build_heavy_server()}, settings=settings)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, settings)
        yield port
        tg.cancel_scope.cancel()


async def test_the_guard_catches_a_handler_that_holds_the_loop(anyio_backend: str) -> None:
    with on_own_loop(serving_heavy) as served, metering(served.ident) as guard:
        async with Client(f"http://127.0.0.1:{served.value}/heavy", mode="2026-07-28") as client:
            await client.call_tool("waiting", {"ms": 1})  # warm up
            verdicts: dict[str, list[float]] = {}
            for name in ("on_the_loop", "off_the_loop", "waiting"):
                since = len(guard.slow)
                with guard.during(name), anyio.fail_after(30):
                    result = await client.call_tool(name, {"ms": 120})
                    await settle(f"http://127.0.0.1:{served.value}")
                assert not result.is_error
                verdicts[name] = [c.cpu_s for c in guard.slow[since:] if c.cpu_s > STALL_S]
    [held] = verdicts["on_the_loop"]
    assert 0.120 <= held < 0.5, held
    assert verdicts["off_the_loop"] == []
    assert verdicts["waiting"] == []
    assert all(c.during != "(idle)" for c in guard.stalls()), guard.report()
