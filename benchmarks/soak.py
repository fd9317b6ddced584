"""Soak: every server of the suite under mixed load and faults, judged by the simulator's truth.

`python -m benchmarks.soak` serves what `tello-mcp serve --sim` serves (the drone in its four
tool modes over one runtime, `/everything`, `/fetch`) on 127.0.0.1 in this process, so that the
embedded simulator's ground truth and the server's own tasks and sessions can be read directly.
For `--minutes` (default 10) 16 clients, half in each protocol era, call it:

* one pilot flies short sorties (takeoff, up, turn, forward, back, turn back, down, land), each
  action through the next tool mode in turn (Standard `move`, Search `invoke_tool`, Code and
  CodeSearch `run_code`), in a fresh set of clients per sortie, alternating eras; it changes
  the battery between sorties when it runs low, as an operator would;
* 15 others read (`get_state`, `get_battery`, `invoke_tool`, `run_code`, `get_tool`), echo and
  run a long operation on `/everything`, and fetch a page from a local HTTP server through
  `/fetch`, reconnecting every few calls so sessions come and go.

Meanwhile the simulator loses and duplicates datagrams (from 20 % to 70 % of the run), reboots
once while landed, and comes back on a new IP address (127.0.0.2) once while flying, which is
announced through `POST /admin/drone-address` as an operator would.

Reported: calls made by kind, errors by kind, double executions (non-idempotent commands the
drone executed more often than the pilot asked for them: must be 0), auto-lands caused by
silence (must be 0), RSS growth, and open sessions, sockets, file descriptors, asyncio tasks
and threads at the end against their baseline (taken after a warm-up at full concurrency, so
that pools which grow to their working size once are part of it), with every thread named.
Everything runs in one process, so RSS, descriptors and threads are the whole process's,
clients included.

Two thread pools keep idle threads by design and are accounted for: the event loop's default
executor (`getaddrinfo` for every fetch) never retires a thread, so it is filled to its maximum
before the baseline (`fill_default_executor`); anyio's `to_thread` workers retire after 10 s
idle but only when another `to_thread` call comes, so settling makes one
(`prune_idle_anyio_workers`). RSS is sampled raw and right after glibc's `malloc_trim(0)`, and
the baseline and end are read after it: most of the raw growth under load is freed heap that
glibc keeps for reuse, which the trimmed figure leaves out.

Prints a table, writes JSON (`--json`, default `.cache/bench/soak.json`), exits 1 if an
invariant is broken or a resource is not back to its baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import gc
import json
import logging
import math
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

import anyio
import anyio.abc
import anyio.to_thread
import httpx
from mcp import Client
from mcp_types import CallToolResult, TextContent

from drone_sim import DroneSimulator
from drone_sim.records import EventKind, ExecutedCommand, Outcome
from servers.drone.app import ADMIN_ADDRESS_PATH, drone_component
from servers.drone.config import DroneSettings
from servers.drone.runtime import DroneRuntime
from servers.everything.settings import EverythingSettings
from servers.fetch.config import FetchConfig
from servers.http import Endpoint, HttpSettings, serve
from servers.logs import configure_logging
from servers.registry import SERVERS
from servers.suite import Component, build_suite_app

DESCRIPTION = "Soak: all servers, 16 clients in both eras, simulator faults; invariants and resources."
REPO: Final = Path(__file__).resolve().parents[1]
LOCAL: Final = "127.0.0.1"
NEW_IP: Final = "127.0.0.2"
"""Where the drone comes back after its renumbering (all of 127.0.0.0/8 is loopback)."""
ERAS: Final = ("legacy", "2026-07-28")
CLIENTS: Final = 16
MODES: Final = ("/drone", "/drone-search", "/drone-code", "/drone-codesearch")
NON_IDEMPOTENT: Final = frozenset(
    {"takeoff", "up", "down", "left", "right", "forward", "back", "cw", "ccw", "flip", "go", "curve", "jump"}
)
"""SDK verbs that must run at most once per request (the link never retries them)."""
LOSS: Final = 0.03
DUP: Final = 0.05
FAULTS_FROM, FAULTS_UNTIL, REBOOT_AFTER, REBIND_AFTER = 0.2, 0.7, 0.4, 0.55
"""Fractions of the run: loss and duplicates on between the first two; the reboot at the first
landed moment after the third; the new IP at the first hover after the fourth and the reboot."""
MAX_SORTIES: Final = 1000
SWAP_BELOW_PCT: Final = 50
CALL_TIMEOUT_S: Final = 60.0
"""No call may take longer (the longest is a takeoff or a land: ~6 s, or a stale-link refusal)."""
RECONNECT_EVERY: Final = 12
"""Reader calls between reconnects, so handshake-era sessions keep being opened and closed."""
THINK_S: Final = 0.15
"""Upper bound of a reader's random pause between calls (an agent thinks between calls)."""
RSS_EVERY_S: Final = 5.0
SETTLE_S: Final = 30.0
"""Seconds the end waits for resources to come back to their baseline before judging them."""
TOLERANCE: Final[Mapping[str, int]] = {"sessions": 0, "tasks": 0, "threads": 0, "fds": 2, "sockets": 2}
"""Allowed excess over the baseline after settling. Sessions, tasks and threads are exact: none
may outlive the clients that caused them. Descriptors and sockets get 2: a `run_code` whose client
went away mid-run has its sandbox worker killed and replaced in the background, and a replacement
still starting at the settle deadline briefly holds pipes for both."""


# ---- results ------------------------------------------------------------------------------------


@dataclass
class Flight:
    """One sortie: when it began and ended on the simulator's clock, and the SDK texts of the
    non-idempotent commands the pilot asked for in it (each text once: up X, cw Y, ...)."""

    start: float
    end: float = math.inf
    requested: Counter[str] = field(default_factory=Counter[str])


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter[str])
    succeeded: Counter[str] = field(default_factory=Counter[str])
    seconds: dict[str, list[float]] = field(default_factory=dict[str, list[float]])
    """How long each call took, by kind."""
    errors: Counter[str] = field(default_factory=Counter[str])
    flights: list[Flight] = field(default_factory=list["Flight"])
    sorties: int = 0
    battery_swaps: int = 0
    faults: list[str] = field(default_factory=list[str])


@dataclass(frozen=True)
class Resources:
    rss_kib: int
    fds: int
    sockets: int
    threads: int
    tasks: int
    sessions: int

    def excess(self, baseline: Resources) -> dict[str, int]:
        """What is still above the baseline, beyond the tolerance, by name."""
        now, base = asdict(self), asdict(baseline)
        return {
            name: now[name] - base[name]
            for name, allowed in TOLERANCE.items()
            if now[name] - base[name] > allowed
        }


@dataclass
class Report:
    seconds: float
    warm_up_s: float
    clients: int
    calls: dict[str, int]
    succeeded: dict[str, int]
    latency_s: dict[str, dict[str, float]]
    """By kind of call: p50, p99 and max seconds."""
    errors: dict[str, int]
    loop_lag_s: dict[str, float]
    double_executions: dict[str, int]
    auto_lands_by_silence: int
    low_battery_lands: int
    crashes: int
    sorties: int
    battery_swaps: int
    faults: list[str]
    executed_actions: int
    baseline: Resources
    peak_rss_kib: int
    rss_kib_over_time: list[tuple[float, int]]
    """(seconds into the run, RSS): growth that levels off is a warm cache, steady growth a leak.
    Raw RSS; the baseline and end RSS are read after `malloc_trim`, like `trimmed_rss_kib_over_time`."""
    peak_sessions: int
    """Most handshake-era sessions open at once during the run (they must all be gone at the end)."""
    end: Resources
    settle_s: float
    extra_tasks: dict[str, int]
    """Tasks alive at the end that were not at the baseline, by what they run (should be none)."""
    shutdown_s: float | None = None
    """Seconds the servers took to shut down after the run (None: not measured yet)."""
    trimmed_rss_kib_over_time: list[tuple[float, int]] = field(default_factory=list[tuple[float, int]])
    """RSS right after `malloc_trim(0)` at each sample (glibc): what the process really holds, without
    the freed heap glibc keeps for reuse. Empty where there is no glibc."""
    threads_at_baseline: dict[str, int] = field(default_factory=dict[str, int])
    threads_at_end: dict[str, int] = field(default_factory=dict[str, int])
    """Every thread by name (`thread_names`), so that one above the baseline has a name."""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def rss_growth_kib(self) -> int:
        return self.end.rss_kib - self.baseline.rss_kib

    @property
    def leaks(self) -> dict[str, int]:
        return self.end.excess(self.baseline)

    @property
    def ok(self) -> bool:
        return not self.double_executions and self.auto_lands_by_silence == 0 and not self.leaks

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            total_calls=self.total_calls,
            total_errors=sum(self.errors.values()),
            rss_growth_kib=self.rss_growth_kib,
            leaks=self.leaks,
            tolerance=dict(TOLERANCE),
            ok=self.ok,
        )
        return out


# ---- the server and what it is measured by ------------------------------------------------------


@dataclass
class Suite:
    """Every server of `tello-mcp serve --sim`, listening on 127.0.0.1."""

    port: int
    runtime: DroneRuntime
    components: Sequence[Component]

    @property
    def base(self) -> str:
        return f"http://{LOCAL}:{self.port}"

    @property
    def sim(self) -> DroneSimulator:
        sim = self.runtime.sim
        if sim is None:
            raise RuntimeError("the drone runtime has no simulator")
        return sim

    def sessions(self) -> int:
        """Handshake-era sessions open on every mount (the 2026-07-28 era has none)."""
        total = 0
        for component in self.components:
            for target in component.mounts.values():
                server = target.server if isinstance(target, Endpoint) else target
                instances: Mapping[str, object] = getattr(server.session_manager, "_server_instances", {})
                total += len(instances)
        return total

    @staticmethod
    def task_names() -> Counter[str]:
        """The asyncio tasks alive now, by the name of what they run."""
        return Counter(getattr(t.get_coro(), "__qualname__", t.get_name()) for t in asyncio.all_tasks())

    def resources(self) -> Resources:
        fd_dir = Path("/proc/self/fd")
        links: list[str] = []
        for name in os.listdir(fd_dir):
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
                links.append(os.readlink(fd_dir / name))
        status = dict(
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line
        )
        return Resources(
            rss_kib=int(status["VmRSS"].split()[0]),
            fds=len(links),
            sockets=sum(link.startswith("socket:") for link in links),
            threads=int(status["Threads"]),
            tasks=len(asyncio.all_tasks()),
            sessions=self.sessions(),
        )


def thread_names() -> Counter[str]:
    """Every thread of the process by name: Python threads by their `threading` name (numbers
    taken out, so a pool's workers count under one name), the others (native threads a C
    library started) by the kernel's name for them, as "native: NAME"."""
    names: Counter[str] = Counter()
    python: set[int] = set()
    for thread in threading.enumerate():
        if thread.native_id is not None:
            python.add(thread.native_id)
        names[_NUMBERS.sub("N", thread.name)] += 1
    for task in Path("/proc/self/task").iterdir():
        if int(task.name) not in python:
            with contextlib.suppress(OSError):  # it ended while we looked
                names[f"native: {(task / 'comm').read_text().strip()}"] += 1
    return names


async def fill_default_executor() -> int:
    """Grow the event loop's default executor (`getaddrinfo`, `run_in_executor(None, ...)`) to
    its most threads, so that the baseline holds them all; returns how many that is.

    A `ThreadPoolExecutor` starts a thread whenever a job arrives and none is idle, up to
    `max_workers`, and never retires one: how many the soak ends with depends on the most
    `getaddrinfo`s (the fetch server resolves every URL) that ever ran at once, which the
    warm-up cannot promise to reach. Full from the start, the pool cannot grow, so a thread
    above the baseline is somebody else's."""
    loop = asyncio.get_running_loop()
    size = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default, as asyncio makes it
    barrier = threading.Barrier(size)
    jobs = [loop.run_in_executor(None, barrier.wait, 10.0) for _ in range(size)]
    with contextlib.suppress(threading.BrokenBarrierError):  # a smaller pool: as full as it gets
        await asyncio.gather(*jobs)
    return size


async def prune_idle_anyio_workers() -> threading.Thread:
    """Let anyio retire its idle worker threads (`to_thread`): it does so lazily, on the next
    `to_thread` call, for workers idle for 10 s or more (`WorkerThread.MAX_IDLE_TIME`). Returns
    the worker that call ran on (it stays)."""
    return await anyio.to_thread.run_sync(threading.current_thread)


@contextlib.asynccontextmanager
async def suite(fetch_allow: Sequence[str] = (LOCAL,), time_scale: float = 1.0) -> AsyncGenerator[Suite]:
    """The suite as `tello-mcp serve --sim` builds it, with a handle on the drone runtime.
    `time_scale`: simulated time runs that much faster, and readings go stale after the same
    real time as at 1x (`stale_after_s` scaled with it), so a busy loop is not "stale" sooner."""
    stale_after_s = DroneSettings().stale_after_s * time_scale
    runtime = DroneRuntime(DroneSettings(sim=True, time_scale=time_scale, stale_after_s=stale_after_s))
    components = [
        drone_component(runtime),
        SERVERS["everything"].component(EverythingSettings()),
        SERVERS["fetch"].component(FetchConfig(fetch_allow=tuple(fetch_allow))),
    ]
    http = HttpSettings(port=0, shutdown_timeout=2.0)
    app = build_suite_app(components, http)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, http)
        try:
            yield Suite(port, runtime, components)
        finally:
            tg.cancel_scope.cancel()


PAGE: Final = (
    b"<html><head><title>Soak page</title></head><body><h1>Soak</h1>"
    b"<p>A page the fetch server reads during the soak.</p></body></html>"
)


@contextlib.asynccontextmanager
async def web_page() -> AsyncGenerator[str]:
    """A tiny HTTP/1.0 server on 127.0.0.1 for `/fetch` to read (and its robots.txt)."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(10):
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    try:
                        request += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b"/"
                body, kind = (
                    (b"User-agent: *\nAllow: /\n", b"text/plain")
                    if path == b"/robots.txt"
                    else (PAGE, b"text/html; charset=utf-8")
                )
                head = b"HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
                    kind,
                    len(body),
                )
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await stream.send(head + body)

    listener = await anyio.create_tcp_listener(local_host=LOCAL, local_port=0)
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield f"http://{LOCAL}:{port}/page.html"
        finally:
            tg.cancel_scope.cancel()


# ---- calls ----------------------------------------------------------------------------------------


def _first_text(result: CallToolResult) -> str:
    return next((b.text for b in result.content if isinstance(b, TextContent)), "")


_NUMBERS = re.compile(r"\d+(\.\d+)?")
_WRAPPING = re.compile(r"^(Error: \w+: )?Error executing tool \S+: ")


def error_kind(result: CallToolResult) -> str:
    """An `isError` result's kind: its first line with the numbers taken out, shortened."""
    line = _first_text(result).strip().splitlines()[0] if _first_text(result).strip() else "(no text)"
    return "isError: " + _NUMBERS.sub("N", _WRAPPING.sub("", line))[:90]


async def call(
    tally: Tally, kind: str, client: Client, tool: str, arguments: Mapping[str, Any]
) -> CallToolResult | None:
    """One tool call, counted under `kind`; its result, or None if it failed (counted)."""
    tally.calls[kind] += 1
    start = time.monotonic()
    try:
        with anyio.fail_after(CALL_TIMEOUT_S):
            result = await client.call_tool(tool, dict(arguments))
    except TimeoutError:
        tally.errors[f"{kind}: no answer in {CALL_TIMEOUT_S:g} s"] += 1
        return None
    except Exception as exc:  # counted by kind: a soak reports errors, it does not stop on them
        tally.errors[f"{kind}: {type(exc).__name__}: {_NUMBERS.sub('N', str(exc))[:80]}"] += 1
        return None
    finally:
        tally.seconds.setdefault(kind, []).append(time.monotonic() - start)
    if result.is_error:
        tally.errors[f"{kind}: {error_kind(result)}"] += 1
    else:
        tally.succeeded[kind] += 1
    return result


def leaves(exc: BaseException) -> str:
    """The exceptions at the bottom of `exc`'s groups, by type: "ReadError", "ReadError, ..."."""
    if isinstance(exc, BaseExceptionGroup):
        group: BaseExceptionGroup[BaseException] = exc
        return ", ".join(sorted({leaves(inner) for inner in group.exceptions}))
    return type(exc).__name__


def in_mode(mode: str, tool: str, arguments: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The call that runs drone tool `tool` through the tool mode served at `mode`."""
    if mode == "/drone":
        return tool, dict(arguments)
    if mode == "/drone-search":
        return "invoke_tool", {"name": tool, "arguments": dict(arguments)}
    return "run_code", {"code": f"await {tool}({json.dumps(dict(arguments))})"}


@contextlib.asynccontextmanager
async def clients(base: str, paths: Sequence[str], era: str) -> AsyncGenerator[dict[str, Client]]:
    """A client per path. Plain nesting rather than an AsyncExitStack (see `servers.suite.nested`)."""
    if not paths:
        yield {}
        return
    async with Client(f"{base}{paths[0]}", mode=era) as first, clients(base, paths[1:], era) as rest:
        yield {paths[0]: first, **rest}


# ---- the pilot --------------------------------------------------------------------------------------


def sortie_plan(n: int, *, short: bool = False) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, arguments, SDK text) of one sortie's moves: out and back, so the envelope holds.
    `short`: up and down only (with takeoff and land, still one action in each tool mode)."""
    up, turn, out = 20 + n % 30, 15 + n % 60, 20 + n % 40
    if short:
        return [
            ("move", {"direction": "up", "distance_cm": up}, f"up {up}"),
            ("move", {"direction": "down", "distance_cm": up}, f"down {up}"),
        ]
    return [
        ("move", {"direction": "up", "distance_cm": up}, f"up {up}"),
        ("rotate", {"direction": "clockwise", "degrees": turn}, f"cw {turn}"),
        ("move", {"direction": "forward", "distance_cm": out}, f"forward {out}"),
        ("move", {"direction": "back", "distance_cm": out}, f"back {out}"),
        ("rotate", {"direction": "counter-clockwise", "degrees": turn}, f"ccw {turn}"),
        ("move", {"direction": "down", "distance_cm": up}, f"down {up}"),
    ]


@dataclass
class Schedule:
    """When the faults happen, as seconds since the start of the run."""

    start: float
    seconds: float
    short_sorties: bool = False
    rebooted: bool = False
    rebound: bool = False

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def at(self, fraction: float) -> bool:
        return self.elapsed() >= fraction * self.seconds

    def done(self) -> bool:
        return self.elapsed() >= self.seconds


async def wait_connected(suite: Suite, within: float = 60.0) -> bool:
    with anyio.move_on_after(within):
        while not suite.runtime.connected():
            await suite.runtime.link.wait_changed()
        return True
    return False


async def reboot(suite: Suite, tally: Tally, schedule: Schedule) -> bool:
    """Reboot the landed drone and wait until the link has it back.

    Landed by ground truth, not by the last `land` result: a `land` resolved from the state
    stream can answer while the simulator is still settling on the ground, and a reboot then
    counts as a crash that no server decision caused (seen once in CI)."""
    try:
        await suite.sim.wait_for(lambda t: not t.flying, timeout_s=30)
    except TimeoutError:
        tally.faults.append(f"reboot put off at {schedule.elapsed():.0f} s: the drone is still flying")
        return False
    booted = len(suite.sim.truth.events_of(EventKind.BOOTED))
    suite.sim.reboot()
    with anyio.move_on_after(60):
        await suite.sim.wait_for(
            lambda t: len(t.events_of(EventKind.BOOTED)) > booted and t.sdk_mode, timeout_s=60
        )
    back = await wait_connected(suite)
    tally.faults.append(f"reboot at {schedule.elapsed():.0f} s: link {'back' if back else 'NOT back'}")
    return True


async def renumber(suite: Suite, tally: Tally, schedule: Schedule, http: httpx.AsyncClient) -> None:
    """Move the flying drone to NEW_IP and tell the server, as an operator would; then wait until
    the drone hears the link at its new address."""
    heard = len(suite.sim.truth.received)
    await suite.sim.rebind(NEW_IP)
    response = await http.post(f"{suite.base}{ADMIN_ADDRESS_PATH}", json={"host": NEW_IP})
    back = False
    if response.status_code == 200:
        with anyio.move_on_after(30):
            await suite.sim.wait_for(lambda t: len(t.received) > heard, timeout_s=30)
            back = True
    link = "back" if back else "NOT back"
    tally.faults.append(
        f"new IP {NEW_IP} at {schedule.elapsed():.0f} s: admin answered {response.status_code}, link {link}"
    )


async def pilot(suite: Suite, tally: Tally, schedule: Schedule, hard_stop: float) -> None:
    """Fly sorties until the run is over and both one-off faults happened (or `hard_stop`)."""
    truth = suite.sim.truth
    async with httpx.AsyncClient(timeout=10) as http:
        n = 0
        while (
            n < MAX_SORTIES
            and time.monotonic() < hard_stop
            and not (schedule.done() and schedule.rebooted and schedule.rebound)
        ):
            if not schedule.rebooted and schedule.at(REBOOT_AFTER):
                schedule.rebooted = await reboot(suite, tally, schedule)
            if truth.battery_pct < SWAP_BELOW_PCT:
                suite.sim.set_battery(100)
                tally.battery_swaps += 1
            await wait_connected(suite)
            era = ERAS[n % 2]
            try:
                async with clients(suite.base, MODES, era) as by_mode:
                    await sortie(suite, tally, schedule, by_mode, n, http)
            except Exception as exc:  # opening or closing the clients: counted, the pilot goes on
                tally.errors[f"pilot clients ({era}) open/close: {leaves(exc)}"] += 1
            tally.sorties += 1
            n += 1


async def sortie(
    suite: Suite,
    tally: Tally,
    schedule: Schedule,
    by_mode: Mapping[str, Client],
    n: int,
    http: httpx.AsyncClient,
) -> None:
    """Takeoff, the plan, land: each action through the next mode. After a failed action the
    pilot looks (ground truth stands in for its `get_state`) before acting again."""
    flight = Flight(start=suite.runtime.clock.now())
    tally.flights.append(flight)
    try:
        await fly(suite, tally, schedule, by_mode, n, http, flight)
    finally:
        flight.end = suite.runtime.clock.now()


async def fly(
    suite: Suite,
    tally: Tally,
    schedule: Schedule,
    by_mode: Mapping[str, Client],
    n: int,
    http: httpx.AsyncClient,
    flight: Flight,
) -> None:
    truth = suite.sim.truth
    actions: list[tuple[str, dict[str, Any], str | None]] = [("takeoff", {}, "takeoff")]
    actions += [(tool, args, text) for tool, args, text in sortie_plan(n, short=schedule.short_sorties)]
    actions.append(("land", {}, None))
    for i, (tool, arguments, text) in enumerate(actions):
        if tool != "takeoff" and not truth.flying:
            break  # it came down (or never went up): nothing more to fly
        if tool == "move" and not schedule.rebound and schedule.rebooted and schedule.at(REBIND_AFTER):
            await renumber(suite, tally, schedule, http)
            schedule.rebound = True
        mode = MODES[(i + n) % len(MODES)]
        name, args = in_mode(mode, tool, arguments)
        if text is not None:
            flight.requested[text] += 1
        result = await call(tally, f"pilot {tool} {mode}", by_mode[mode], name, args)
        if result is None or result.is_error:
            await wait_connected(suite, within=10)
            if tool == "takeoff":
                break
    if truth.flying:  # a failed land, or a sortie cut short: bring it down through /drone
        await call(tally, "pilot land /drone", by_mode["/drone"], "land", {})


# ---- the readers ------------------------------------------------------------------------------------


def reader_actions(page: str, who: int) -> list[tuple[str, str, Callable[[int], dict[str, Any]]]]:
    """(kind, path, arguments for the n-th call) for the tools a reader cycles through."""
    return [
        ("get_state", "/drone", lambda n: {}),
        ("invoke_tool get_state", "/drone-search", lambda n: {"name": "get_state", "arguments": {}}),
        ("run_code get_state", "/drone-code", lambda n: {"code": "(await get_state({})).flight"}),
        ("get_tool", "/drone-codesearch", lambda n: {"query": "battery level"}),
        ("get_battery", "/drone", lambda n: {}),
        ("echo", "/everything", lambda n: {"message": f"soak {who}.{n}"}),
        ("long-running-operation", "/everything", lambda n: {"duration": 0.5, "steps": 2}),
        ("fetch", "/fetch", lambda n: {"url": page}),
    ]


READER_TOOL: Final = {
    "get_state": "get_state",
    "invoke_tool get_state": "invoke_tool",
    "run_code get_state": "run_code",
    "get_tool": "get_tool",
    "get_battery": "get_battery",
    "echo": "echo",
    "long-running-operation": "trigger-long-running-operation",
    "fetch": "fetch",
}


async def reader(
    suite: Suite, tally: Tally, who: int, era: str, page: str, stop: anyio.Event, max_calls: int
) -> None:
    """Cycle through the reading and demo calls, reconnecting every `RECONNECT_EVERY` calls."""
    rng = random.Random(who)
    actions = reader_actions(page, who)
    paths = sorted({path for _, path, _ in actions})
    n = 0
    while n < max_calls and not stop.is_set():
        start = n
        try:
            async with clients(suite.base, paths, era) as by_path:
                for _ in range(RECONNECT_EVERY):
                    if n >= max_calls or stop.is_set():
                        break
                    kind, path, arguments = actions[(who + n) % len(actions)]
                    result = await call(tally, kind, by_path[path], READER_TOOL[kind], arguments(n))
                    if kind == "echo" and result is not None and f"soak {who}.{n}" not in _first_text(result):
                        tally.errors["echo: wrong text"] += 1
                    n += 1
                    with anyio.move_on_after(rng.uniform(0, THINK_S)):
                        await stop.wait()
        except Exception as exc:  # opening or closing the clients: counted, and the reader goes on
            tally.errors[f"reader clients ({era}) open/close: {leaves(exc)}"] += 1
            n = max(n, start + 1)


async def warm_up(suite: Suite, page: str, tally: Tally) -> None:
    """Every reader call once from every client at once, so that pools (sandbox workers, the
    default executor's threads, HTTP connection pools) reach their working size before the
    baseline."""
    never = anyio.Event()
    calls = len(reader_actions(page, 0))
    async with anyio.create_task_group() as tg:
        for who in range(CLIENTS):
            tg.start_soon(reader, suite, tally, who, ERAS[who % 2], page, never, calls)


async def settle(suite: Suite, baseline: Resources | None, within: float) -> tuple[Resources, float]:
    """Resources once nothing is left above `baseline` (or after `within` s), and how long that took.
    With no baseline, once two readings half a second apart agree (the baseline itself)."""
    start = time.monotonic()
    previous: Resources | None = None
    while True:
        gc.collect()
        malloc_trim()  # baseline and end alike: memory in use, not free heap glibc keeps
        now = suite.resources()
        elapsed = time.monotonic() - start
        excess = None if baseline is None else now.excess(baseline)
        if excess is not None and not excess:
            return now, elapsed
        if excess and "threads" in excess:
            await prune_idle_anyio_workers()
        if (
            baseline is None
            and previous is not None
            and asdict(now) | {"rss_kib": 0} == asdict(previous) | {"rss_kib": 0}
        ):
            return now, elapsed
        if elapsed >= within:
            return now, elapsed
        previous = now
        await anyio.sleep(0.5)


def malloc_trim() -> bool:
    """Hand the heap glibc keeps free for reuse back to the kernel (`malloc_trim(0)`); False
    where there is no glibc. The soak's RSS grows ~2-3 MiB a minute, and nearly all of it comes
    back this way: freed memory glibc held on to, not memory anything still uses."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    libc.malloc_trim(0)
    return True


async def sample(
    suite: Suite,
    rss: list[tuple[float, int]],
    lag: list[float],
    sessions: list[int],
    stop: anyio.Event,
    trimmed: list[tuple[float, int]] | None = None,
) -> None:
    """RSS every `RSS_EVERY_S` (and into `trimmed`, RSS right after `malloc_trim`), and how late a
    100 ms timer fires: the event loop's lag, which every call, the drone's keepalive and the
    simulator share."""
    began = time.monotonic()
    while not stop.is_set():
        now = time.monotonic() - began
        if not rss or now - rss[-1][0] >= RSS_EVERY_S:
            rss.append((round(now, 1), suite.resources().rss_kib))
            if trimmed is not None and malloc_trim():
                trimmed.append((round(now, 1), suite.resources().rss_kib))
        sessions.append(suite.sessions())
        timer = time.monotonic()
        with anyio.move_on_after(0.1):
            await stop.wait()
        lag.append(max(0.0, time.monotonic() - timer - 0.1))


async def faults(suite: Suite, schedule: Schedule, tally: Tally, stop: anyio.Event) -> None:
    """Loss and duplicates on between FAULTS_FROM and FAULTS_UNTIL of the run."""
    with anyio.move_on_after(max(0.0, FAULTS_FROM * schedule.seconds - schedule.elapsed())):
        await stop.wait()
    if stop.is_set():
        return
    suite.sim.faults.loss, suite.sim.faults.dup = LOSS, DUP
    suite.sim.faults.reseed(14)
    tally.faults.append(f"loss {LOSS:g} and duplicates {DUP:g} on at {schedule.elapsed():.0f} s")
    try:
        with anyio.move_on_after(max(0.0, FAULTS_UNTIL * schedule.seconds - schedule.elapsed())):
            await stop.wait()
    finally:
        suite.sim.faults.loss = suite.sim.faults.dup = 0.0
        tally.faults.append(f"loss and duplicates off at {schedule.elapsed():.0f} s")


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)

    return {"p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 3)}


def double_executions(executed: Iterable[ExecutedCommand], flights: Sequence[Flight]) -> dict[str, int]:
    """Non-idempotent commands the drone executed more often than the pilot asked for them in
    the sortie they arrived in (or at all, outside every sortie), by SDK text, with how many
    times too often. Per sortie, so that a request lost in one sortie cannot hide a double
    execution of the same text in another."""
    counts: Counter[tuple[int, str]] = Counter()
    for r in executed:
        if r.outcome is Outcome.REJECTED or r.text.split(" ", 1)[0] not in NON_IDEMPOTENT:
            continue
        during = next((i for i, f in enumerate(flights) if f.start <= r.t < f.end), -1)
        counts[during, r.text] += 1
    doubles: Counter[str] = Counter()
    for (during, text), count in counts.items():
        asked = flights[during].requested[text] if during >= 0 else 0
        if count > asked:
            doubles[text] += count - asked
    return dict(doubles)


async def soak(
    seconds: float,
    *,
    short_sorties: bool = False,
    time_scale: float = 1.0,
    overrun_s: float = 120.0,
    settle_within: float = SETTLE_S,
    publish: Callable[[Report], None] | None = None,
) -> Report:
    """The whole soak: serve, warm up, take the baseline, run, settle, judge. The pilot flies on
    past `seconds` (at most `overrun_s`) until its sortie is over and both one-off faults
    happened. `short_sorties`: up and down only, so that a short run still fits two sorties.
    `time_scale`: the simulated drone's clock (see `suite`; the suite's test flies at 2x).
    `publish` gets the report before the servers shut down; `shutdown_s` is filled in after."""
    tally = Tally()
    async with web_page() as page, suite(time_scale=time_scale) as served:
        if not await wait_connected(served, within=10):
            raise RuntimeError("the embedded simulator did not connect")
        warming = time.monotonic()
        await fill_default_executor()
        await warm_up(served, page, Tally())
        warm_up_s = time.monotonic() - warming
        baseline, _ = await settle(served, None, within=10)
        baseline_tasks = served.task_names()
        baseline_threads = thread_names()
        rss: list[tuple[float, int]] = []
        trimmed: list[tuple[float, int]] = []
        lag: list[float] = []
        sessions: list[int] = []
        stop = anyio.Event()
        start = time.monotonic()
        schedule = Schedule(start, seconds, short_sorties)
        async with anyio.create_task_group() as tg:
            tg.start_soon(sample, served, rss, lag, sessions, stop, trimmed)
            tg.start_soon(faults, served, schedule, tally, stop)
            async with anyio.create_task_group() as readers:
                max_calls = int(seconds * 20) + 50
                for who in range(1, CLIENTS):
                    readers.start_soon(reader, served, tally, who, ERAS[who % 2], page, stop, max_calls)
                await pilot(served, tally, schedule, hard_stop=start + seconds + overrun_s)
                stop.set()
        elapsed = time.monotonic() - start
        end, settle_s = await settle(served, baseline, settle_within)
        truth = served.sim.truth
        report = Report(
            seconds=round(elapsed, 1),
            warm_up_s=round(warm_up_s, 1),
            clients=CLIENTS,
            calls=dict(sorted(tally.calls.items())),
            succeeded=dict(sorted(tally.succeeded.items())),
            latency_s={kind: percentiles(tally.seconds[kind]) for kind in sorted(tally.seconds)},
            errors=dict(sorted(tally.errors.items())),
            loop_lag_s=percentiles(lag or [0.0]),
            double_executions=double_executions(truth.executed, tally.flights),
            auto_lands_by_silence=len(truth.events_of(EventKind.AUTO_LAND)),
            low_battery_lands=len(truth.events_of(EventKind.LOW_BATTERY_LAND)),
            crashes=len(truth.events_of(EventKind.CRASH)),
            sorties=tally.sorties,
            battery_swaps=tally.battery_swaps,
            faults=tally.faults,
            executed_actions=len(truth.executed_actions()),
            baseline=baseline,
            peak_rss_kib=max([baseline.rss_kib, *(kib for _, kib in rss)]),
            rss_kib_over_time=rss,
            trimmed_rss_kib_over_time=trimmed,
            peak_sessions=max(sessions, default=0),
            end=end,
            settle_s=round(settle_s, 1),
            extra_tasks=dict(served.task_names() - baseline_tasks),
            threads_at_baseline=dict(sorted(baseline_threads.items())),
            threads_at_end=dict(sorted(thread_names().items())),
        )
        if publish is not None:
            publish(report)  # before the shutdown, so that a shutdown that hangs still leaves figures
        closing = time.monotonic()
    report.shutdown_s = round(time.monotonic() - closing, 1)
    return report


# ---- the table ----------------------------------------------------------------------------------------


def table(report: Report) -> list[str]:
    verdict = {True: "OK", False: "BROKEN"}
    lines = [
        f"soak: {report.seconds:g} s, {report.clients} clients in both eras, {report.sorties} sorties",
        f"{'calls made':<52}{report.total_calls:>10}{'p50 s':>8}{'p99 s':>8}{'max s':>8}",
    ]
    for kind, count in report.calls.items():
        t = report.latency_s[kind]
        lines.append(f"  {kind:<50}{count:>10}{t['p50']:>8.2f}{t['p99']:>8.2f}{t['max']:>8.2f}")
    t = report.loop_lag_s
    lines.append(f"{'event loop lag (100 ms timer)':<62}{t['p50']:>8.2f}{t['p99']:>8.2f}{t['max']:>8.2f}")
    lines.append(f"{'errors':<52}{sum(report.errors.values()):>10}")
    lines += [f"  {kind[:100]:<100}{count:>6}" for kind, count in report.errors.items()]
    doubles = sum(report.double_executions.values())
    lines += [
        f"{'flight actions executed (ground truth)':<52}{report.executed_actions:>10}",
        f"{'double executions (must be 0)':<52}{doubles:>10}  {verdict[doubles == 0]}",
        f"{'auto-lands by silence (must be 0)':<52}{report.auto_lands_by_silence:>10}  "
        f"{verdict[report.auto_lands_by_silence == 0]}",
        f"{'low-battery lands / crashes':<52}{report.low_battery_lands:>5} / {report.crashes}",
        f"{'battery swaps between sorties':<52}{report.battery_swaps:>10}",
    ]
    lines += [f"  fault: {fault}" for fault in report.faults]
    b, e = report.baseline, report.end
    lines += [
        f"{'RSS at baseline / peak / end (MiB)':<52}{b.rss_kib / 1024:>6.1f} / "
        f"{report.peak_rss_kib / 1024:.1f} / {e.rss_kib / 1024:.1f}",
        f"{'RSS growth (MiB)':<52}{report.rss_growth_kib / 1024:>10.1f}",
        *_trimmed(report.trimmed_rss_kib_over_time),
        f"{'resource':<22}{'baseline':>10}{'end':>10}{'allowed':>10}",
    ]
    leaks = report.leaks
    for name in TOLERANCE:
        lines.append(
            f"  {name:<20}{getattr(b, name):>10}{getattr(e, name):>10}{'+' + str(TOLERANCE[name]):>10}"
            f"  {verdict[name not in leaks]}"
        )
    lines.insert(
        -len(TOLERANCE) - 1, f"{'handshake-era sessions open at once, at most':<52}{report.peak_sessions:>10}"
    )
    if report.extra_tasks:
        lines.append(f"  tasks beyond the baseline: {report.extra_tasks}")
    lines.append(f"  threads at baseline: {_named(report.threads_at_baseline)}")
    lines.append(f"  threads at the end:  {_named(report.threads_at_end)}")
    lines.append(f"back to baseline {report.settle_s:g} s after the last client closed")
    return lines


def _trimmed(samples: Sequence[tuple[float, int]]) -> list[str]:
    """RSS after `malloc_trim` at the first sample, a minute in, and at the end."""
    if len(samples) < 2:
        return []
    minute = next(((t, kib) for t, kib in samples if t >= 60.0), samples[len(samples) // 2])
    shown = " / ".join(f"{kib / 1024:.1f}" for _, kib in (samples[0], minute, samples[-1]))
    return [f"{f'RSS after malloc_trim at 0 / {minute[0]:g} / {samples[-1][0]:g} s (MiB)':<52}{shown}"]


def _named(threads: Mapping[str, int]) -> str:
    return ", ".join(f"{name} x{count}" if count > 1 else name for name, count in threads.items())


def where(frame: FrameType | None) -> str:
    """What the event loop's thread is doing, with the task it is finishing if it is in a task
    group's done-callback (where a cycle of exception contexts makes anyio loop forever)."""
    lines: list[str] = []
    while frame is not None:
        code = frame.f_code
        lines.append(f"  {code.co_filename}:{frame.f_lineno} {code.co_name}")
        task = frame.f_locals.get("_task")
        if isinstance(task, asyncio.Task):
            lines.append(f"    finishing task {task.get_name()} running {task.get_coro()!r}")
        frame = frame.f_back
    return "\n".join(["event loop thread, innermost first:", *lines])


SHUTDOWN_LIMIT_S: Final = 120.0
"""Seconds the servers get to shut down after the report; beyond that the run exits with 3."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=DESCRIPTION)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak (default 10)")
    parser.add_argument(
        "--json", type=Path, default=REPO / ".cache" / "bench" / "soak.json", help="where to write JSON"
    )
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes must be in (0, 1440]")
    configure_logging("console", logging.ERROR)  # on stderr; the faults make the link log warnings
    path: Path = args.json
    path.parent.mkdir(parents=True, exist_ok=True)

    main_thread = threading.get_ident()

    def hung() -> None:
        print(f"shutdown: still not done after {SHUTDOWN_LIMIT_S:g} s: HUNG", flush=True)
        print(where(sys._current_frames().get(main_thread)), file=sys.stderr, flush=True)
        os._exit(3)

    watchdog = threading.Timer(SHUTDOWN_LIMIT_S, hung)
    watchdog.daemon = True

    def publish(report: Report) -> None:
        print("\n".join(table(report)), flush=True)
        path.write_text(json.dumps(report.as_json(), indent=2) + "\n")
        watchdog.start()

    report = anyio.run(functools.partial(soak, args.minutes * 60, publish=publish))
    watchdog.cancel()
    print(f"shutdown after the run: {report.shutdown_s:g} s")
    path.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    sys.stdout.flush()
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
