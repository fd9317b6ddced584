"""The operator's lane: how soon `stop`, `emergency` and `land` reach the drone while other
agents saturate the server. `python -m benchmarks.lane` (`make bench-lane`).

The drone MCP server runs as its own process (`tello-mcp serve drone`, production defaults,
JSON logs at INFO, but no bound per address: the crowd shares one), pointed at a real-speed
simulator running in this process (a portal thread; fast take-off and landing so that a flight
per sample is cheap). In each protocol era, in the same run:

* idle: one operator client (an `mcp.Client` over streamable HTTP, from 127.0.0.2 so that it is
  another client than the crowd) flies: take off, `stop` twelve times, then `land` or
  `emergency`, each call after 50-100 ms of quiet, and again, for `--phase-s` seconds;
* loaded: the same while `--clients` (64) keep-alive clients of the load generator
  (`benchmarks/loadgen/loadgen.mjs`, one connection each, the next call as soon as the last
  answer ends) call `get_state` as fast as the server answers.

Each sample is the time from the operator's `call_tool` to the datagram's arrival at the
simulator, both on this process's monotonic clock (the simulator stamps every datagram it
receives). Printed per era and command: p50/p99 idle and loaded, and loaded over idle.

Goal (issue 18): p99 <= 10 ms loaded, every command, both eras. Exit 1 if missed, 2 if the run
could not happen. JSON to `--json` (default `.cache/bench/lane.json`); the server's log beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

import anyio
import httpx2
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from benchmarks.latency import gc_paused
from benchmarks.rig import SimThread, free_udp_ports, stop_process
from drone_sim import DroneConfig, DroneSimulator, SimConfig
from servers.logs import configure_logging
from tello_io.clock import MonotonicClock

DESCRIPTION: Final = "How soon stop/emergency/land reach the drone, idle and with 64 clients saturating."
REPO: Final = Path(__file__).resolve().parents[1]
CACHE: Final = REPO / ".cache" / "bench"
LOADGEN: Final = Path(__file__).resolve().parent / "loadgen" / "loadgen.mjs"
LOCAL: Final = "127.0.0.1"
OPERATOR_ADDRESS: Final = "127.0.0.2"
"""The operator's source address: without tokens admission control tells clients apart by
address, and the operator is not one of the crowd (all on 127.0.0.1)."""
ERAS: Final = ("legacy", "2026-07-28")
SAFETY: Final = ("stop", "land", "emergency")
GOAL_P99_MS: Final = 10.0
STOPS_PER_FLIGHT: Final = 12
QUIET_S: Final = (0.05, 0.1)
"""Seconds of quiet before each sample, drawn uniformly: longer than the link's settle window
after a reply (20 ms, in which a flight action such as `land` waits for stray duplicates), as
an operator's calls are; and never in step with the keepalive or the state stream."""
START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 20.0
CALL_TIMEOUT_S: Final = 30.0
FAST_FLIGHT: Final = DroneConfig(
    takeoff_s=0.3, takeoff_spinup_s=0.1, land_speed_cm_s=400.0, land_overhead_s=0.1
)
"""The simulated drone takes off and lands in well under a second: the datagram's arrival is
what is measured, and a flight per `land`/`emergency` sample must fit the bounded run."""


class BenchError(RuntimeError):
    """The benchmark could not run (a process did not start, a call failed)."""


@dataclass(frozen=True)
class Options:
    clients: int = 64
    phase_s: float = 20.0
    """Seconds of samples per (era, idle or loaded)."""
    warmup_s: float = 2.0
    """Seconds of load before the loaded samples start."""
    eras: tuple[str, ...] = ERAS


@dataclass
class Phase:
    """One (era, load) window: milliseconds from call to datagram, per command."""

    era: str
    load: str
    ms: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in SAFETY})
    load_result: dict[str, Any] | None = None
    """The load generator's own figures (get_state calls/s, latency), when loaded."""

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        return {t: {"n": len(v), "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99)} for t, v in self.ms.items()}


def pct(values: Sequence[float], q: float) -> float | None:
    """The `q` quantile (nearest rank, the higher of two) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


# ---- the drone, the server, the crowd ---------------------------------------------------------------


@contextlib.contextmanager
def simulator(port: int, state_port: int) -> Iterator[SimThread]:
    clock = MonotonicClock()
    config = SimConfig(host=LOCAL, port=port, state_port=state_port, drone=FAST_FLIGHT)
    sim = DroneSimulator(config, clock=clock, video=None)
    with anyio.from_thread.start_blocking_portal("asyncio") as portal, portal.wrap_async_context_manager(sim):
        yield SimThread(sim, portal, clock)


def server_command(drone_port: int, state_port: int, video_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "servers.cli",
        "serve",
        "drone",
        *("--host", LOCAL, "--port", "0"),
        *("--drone-host", LOCAL, "--drone-port", str(drone_port), "--bind-host", LOCAL),
        *("--state-port", str(state_port), "--video-port", str(video_port)),
        # The crowd is 64 agents sharing one address (no tokens here): a bound per address would
        # shed them as one client. The bound on the whole process stays on.
        *("--max-in-flight-per-client", "0"),
    ]


@contextlib.asynccontextmanager
async def drone_server(command: Sequence[str], log: Path) -> AsyncGenerator[str]:
    """Run `tello-mcp serve drone`, yield its `/drone` URL once its banner is out, stop it after."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as errors:
        process = await anyio.open_process(
            list(command), cwd=REPO, stdin=subprocess.DEVNULL, stderr=errors, env=env
        )
    try:
        assert process.stdout is not None
        stdout = BufferedByteReceiveStream(process.stdout)
        try:
            with anyio.fail_after(START_TIMEOUT_S):
                url = ""
                while not url.endswith("/drone"):  # the banner: a header, then "  URL  NAME (...)"
                    url = ((await stdout.receive_until(b"\n", 4096)).decode().split() or [""])[0]
        except (anyio.IncompleteRead, anyio.EndOfStream, TimeoutError):
            tail = (await anyio.Path(log).read_text(errors="replace"))[-1500:]
            raise BenchError(f"tello-mcp serve did not start: {tail.strip() or 'no output'}") from None
        yield url
    finally:
        await stop_process(process, STOP_TIMEOUT_S)


@dataclass
class Crowd:
    """The load generator's progress as it reports it."""

    ended_at: float | None = None
    """`time.monotonic()` when its measured window closed (its clients stop calling then)."""
    result: dict[str, Any] | None = None


@contextlib.asynccontextmanager
async def crowd(node: str, url: str, era: str, opts: Options) -> AsyncGenerator[Crowd]:
    """`opts.clients` keep-alive clients calling `get_state` for a warm-up, then `opts.phase_s`
    measured; yields once the measured window opens, returns once the generator has reported."""
    config = {
        "url": url,
        "era": era,
        "tool": "get_state",
        "arguments": {},
        "clients": opts.clients,
        "warmupS": opts.warmup_s,
        "durationS": opts.phase_s,
    }
    command = [node, str(LOADGEN), "load", json.dumps(config)]
    process = await anyio.open_process(command, stdin=subprocess.DEVNULL)
    seen = Crowd()
    try:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(opts.warmup_s + START_TIMEOUT_S):
            await _until(lines, "measure-start")
        async with anyio.create_task_group() as tg:

            async def follow() -> None:
                with anyio.fail_after(opts.phase_s + START_TIMEOUT_S):
                    await _until(lines, "measure-end")
                    seen.ended_at = time.monotonic()
                    seen.result = await _until(lines, "result")

            tg.start_soon(follow)
            yield seen
    finally:
        await stop_process(process, STOP_TIMEOUT_S)


async def _until(lines: BufferedByteReceiveStream, event: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await lines.receive_until(b"\n", 1 << 20))
        if message.get("event") == event:
            return message
        if message.get("event") == "error":
            raise BenchError(f"load generator: {message.get('message')}")


# ---- the operator -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def operator(url: str, era: str) -> AsyncGenerator[Client]:
    transport = httpx2.AsyncHTTPTransport(local_address=OPERATOR_ADDRESS)
    async with (
        httpx2.AsyncClient(transport=transport, timeout=CALL_TIMEOUT_S) as http,
        Client(streamable_http_client(url, http_client=http), mode=era) as client,
    ):
        yield client


def _text(result: CallToolResult) -> str:
    return " ".join(b.text for b in result.content if isinstance(b, TextContent))


async def _call(client: Client, tool: str, arguments: dict[str, Any]) -> None:
    with anyio.fail_after(CALL_TIMEOUT_S):
        result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise BenchError(f"{tool}: {_text(result)[:400]}")


async def wait_grounded(client: Client) -> None:
    """Until the server sees the drone connected and on the ground (ready for `takeoff`)."""
    with anyio.fail_after(START_TIMEOUT_S):
        while True:
            result = await client.call_tool("get_state", {})
            state = result.structured_content or {}
            link = cast(dict[str, Any], state.get("freshness") or {}).get("link")
            if not result.is_error and link == "connected" and state.get("flight") == "landed":
                return
            await anyio.sleep(0.05)


async def sim_grounded(sim: SimThread) -> None:
    """Until the simulated drone is on the ground (its truth, polled in its own thread)."""
    with anyio.fail_after(CALL_TIMEOUT_S):
        while True:
            if not sim.portal.call(lambda: sim.sim.truth.flying):
                return
            await anyio.sleep(0.02)


async def sample(client: Client, sim: SimThread, tool: str) -> tuple[float, float]:
    """When `tool`'s datagram reached the drone (`time.monotonic()`), and how many milliseconds
    after the call to it was made."""
    wire = tool.encode()
    arguments: dict[str, Any] = {"confirm": True} if tool == "emergency" else {}
    mark = sim.portal.call(lambda: len(sim.sim.truth.received))
    sent = time.monotonic()
    await _call(client, tool, arguments)
    origin = time.monotonic() - sim.clock.now()  # the simulator's clock is this one, shifted
    arrived = sim.portal.call(lambda: [r.t for r in sim.sim.truth.received[mark:] if r.data == wire])
    if not arrived:
        raise BenchError(f"{tool} answered but the drone never heard it")
    at = arrived[0] + origin
    return at, (at - sent) * 1e3


async def fly(client: Client, sim: SimThread, phase: Phase, done: Callable[[], float | None]) -> None:
    """Flights (two at least) until `done()` gives a time: take off, `stop` a few times, then
    land or emergency, alternately. Every safety call whose datagram arrived before that time
    is a sample."""
    flights = 0
    quiet = random.Random(18)
    while flights < 2 or done() is None:  # both endings at least once
        await _call(client, "takeoff", {})
        for tool in [*["stop"] * STOPS_PER_FLIGHT, "land" if flights % 2 == 0 else "emergency"]:
            await anyio.sleep(quiet.uniform(*QUIET_S))
            with gc_paused():  # this process's collector is no part of the server's lane
                at, ms = await sample(client, sim, tool)
            end = done()
            if end is None or at <= end:
                phase.ms[tool].append(ms)
        flights += 1
        await sim_grounded(sim)  # a fall, a landing's last centimetres
        await wait_grounded(client)  # and the server has seen it (a read waits its turn in the crowd)


def _after(deadline: float) -> Callable[[], float | None]:
    """Done once `deadline` has passed, every sample counting (no load to end)."""
    return lambda: math.inf if time.monotonic() >= deadline else None


async def measure(opts: Options, node: str, log: Path) -> list[Phase]:
    drone_port, state_port, video_port = free_udp_ports(3)
    phases: list[Phase] = []
    with simulator(drone_port, state_port) as sim:
        async with drone_server(server_command(drone_port, state_port, video_port), log) as url:
            for era in opts.eras:
                async with operator(url, era) as client:
                    await wait_grounded(client)
                    idle = Phase(era, "idle")
                    await fly(client, sim, idle, _after(time.monotonic() + opts.phase_s))
                    loaded = Phase(era, f"{opts.clients} clients")
                    async with crowd(node, url, era, opts) as load:
                        await fly(client, sim, loaded, lambda: load.ended_at)
                    loaded.load_result = load.result
                    phases += [idle, loaded]
    return phases


# ---- report -----------------------------------------------------------------------------------------


def verdicts(phases: Sequence[Phase]) -> list[dict[str, Any]]:
    """Per era and command: idle and loaded p50/p99, loaded over idle, and the goal."""
    rows: list[dict[str, Any]] = []
    for era in dict.fromkeys(p.era for p in phases):
        idle, loaded = [p for p in phases if p.era == era]
        for tool in SAFETY:
            i, lo = idle.summary()[tool], loaded.summary()[tool]
            i50, l50, i99, l99 = i["p50_ms"], lo["p50_ms"], i["p99_ms"], lo["p99_ms"]
            rows.append(
                {
                    "era": era,
                    "command": tool,
                    "idle_n": i["n"],
                    "loaded_n": lo["n"],
                    "idle_p50_ms": i50,
                    "idle_p99_ms": i99,
                    "loaded_p50_ms": l50,
                    "loaded_p99_ms": l99,
                    "p50_ratio": round(l50 / i50, 2) if l50 is not None and i50 else None,
                    "p99_ratio": round(l99 / i99, 2) if l99 is not None and i99 else None,
                    "goal_met": l99 is not None and l99 <= GOAL_P99_MS,
                }
            )
    return rows


def render(rows: Sequence[dict[str, Any]], phases: Sequence[Phase], opts: Options) -> list[str]:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    out = [
        f"operator's lane: call -> datagram at the drone, idle vs {opts.clients} clients saturating "
        f"get_state (load avg {load})",
        f"{'era':<12}{'command':<11}{'n idle/load':>12}{'idle p50/p99 ms':>18}{'loaded p50/p99 ms':>20}"
        f"{'ratio p50/p99':>15}  goal p99 <= {GOAL_P99_MS:g} ms",
    ]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    def x(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}x"

    for r in rows:
        counts = f"{r['idle_n']}/{r['loaded_n']}"
        idle = f"{ms(r['idle_p50_ms'])} / {ms(r['idle_p99_ms'])}"
        loaded = f"{ms(r['loaded_p50_ms'])} / {ms(r['loaded_p99_ms'])}"
        ratio = f"{x(r['p50_ratio'])} / {x(r['p99_ratio'])}"
        verdict = "OK" if r["goal_met"] else "MISSED"
        out.append(
            f"{r['era']:<12}{r['command']:<11}{counts:>12}{idle:>18}{loaded:>20}{ratio:>15}  {verdict}"
        )
    for p in phases:
        if p.load_result is not None:
            lr = p.load_result
            out.append(
                f"the crowd alone ({p.era}): {lr['calls_per_s']:.0f} get_state calls/s, "
                f"p50 {lr['p50_ms']:.1f} ms, p99 {lr['p99_ms']:.1f} ms, {lr['errors']} errors"
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lane", description=DESCRIPTION)
    parser.add_argument(
        "--clients", type=int, default=Options.clients, help="saturating clients (default 64)"
    )
    parser.add_argument(
        "--phase-s", type=float, default=Options.phase_s, help="seconds per idle or loaded phase"
    )
    parser.add_argument(
        "--warmup-s", type=float, default=Options.warmup_s, help="seconds of load before samples"
    )
    parser.add_argument("--era", choices=ERAS, action="append", help="one era only (default both)")
    parser.add_argument("--json", type=Path, default=CACHE / "lane.json")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.clients < 1 or args.phase_s <= 0 or args.warmup_s < 0:
        parser.error("--clients must be >= 1, --phase-s > 0 and --warmup-s >= 0")
    opts = Options(args.clients, args.phase_s, args.warmup_s, tuple(args.era or ERAS))
    node = shutil.which("node")
    if node is None:
        print("node not found: the load generator needs Node.js", file=sys.stderr)
        return 2
    configure_logging("console", "warning")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    log = args.json.with_suffix(".server.log")
    try:
        phases = anyio.run(measure, opts, node, log)
    except BenchError as exc:
        print(f"lane benchmark could not run: {exc}", file=sys.stderr)
        return 2
    rows = verdicts(phases)
    for line in render(rows, phases, opts):
        print(line)
    met = all(r["goal_met"] for r in rows)
    print(f"goal: {'met' if met else 'MISSED'}")
    report = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": asdict(opts),
        "loadavg": os.getloadavg(),
        "rows": rows,
        "phases": [{**asdict(p), "summary": p.summary()} for p in phases],
        "goal_met": met,
    }
    args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
