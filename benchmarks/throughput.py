"""MCP tool-call throughput: our drone server against the reference TypeScript server, same run.

One keep-alive load generator (`benchmarks/loadgen/loadgen.mjs`: Node's `http.Agent`, one
connection per client, the next call as soon as the last response ends) drives, one after the
other at each client count:

* the reference: `@modelcontextprotocol/server-everything streamableHttp` (npm, installed once
  into `.cache/bench/`, bound to 127.0.0.1), its `echo` tool, handshake era (all it speaks);
* ours: `tello-mcp serve --sim` (a subprocess on 127.0.0.1), `get_state`, in the handshake era
  (initialize, then calls on the session) and the 2026-07-28 era (sessionless, per request).

Per cell: calls/s, p50/p99 latency, server CPU ms per call (from /proc/PID/stat over the
measured window) and, for ours, the ratio of calls/s to the reference at the same client count.
The whole matrix runs `--rounds` times (default 3) and each ratio is the median of its per-round
ratios, so that a neighbour's burst of work on a shared 2-core machine does not decide a target.
Then how calls/s and p99 grow from the fewest to the most clients, and the memory (RSS) per
idle handshake-era session at 100 and 1,000 sessions. `--profile` adds a profile of our server
under load and where its CPU goes (cProfile, or py-spy with `--profiler py-spy`).

Targets (the drone server is one process by nature: one drone link), as calls/s over the
reference's: 1 client >= 1.0x in both eras; 8 and 64 clients >= 1.0x in the 2026-07-28 era and
>= 0.5x in the handshake era. Exit status 1 if one is missed, 2 if the run could not happen
(no Node, a server that did not start).

Results also go to `.cache/bench/throughput.json` (git-ignored), or `--json PATH`.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import gc
import json
import os
import platform
import pstats
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

DESCRIPTION = "MCP tools/call throughput: tello-mcp get_state (both eras) vs the reference TS echo server."
REPO: Final = Path(__file__).resolve().parents[1]
CACHE: Final = REPO / ".cache" / "bench"
LOADGEN: Final = Path(__file__).resolve().parent / "loadgen" / "loadgen.mjs"
LOCALHOST_PRELOAD: Final = Path(__file__).resolve().parent / "loadgen" / "localhost.mjs"
REFERENCE_PACKAGE: Final = "@modelcontextprotocol/server-everything"
REFERENCE_VERSION: Final = "2026.8.31"
LOCAL: Final = "127.0.0.1"
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")

LEGACY: Final = "legacy"
MODERN: Final = "2026-07-28"
REFERENCE: Final = "reference echo"
OURS_LEGACY: Final = "ours get_state handshake"
OURS_MODERN: Final = "ours get_state 2026-07-28"

TARGETS: Final[dict[tuple[str, int], float]] = {
    (OURS_LEGACY, 1): 1.0,
    (OURS_MODERN, 1): 1.0,
    (OURS_LEGACY, 8): 0.5,
    (OURS_MODERN, 8): 1.0,
    (OURS_LEGACY, 64): 0.5,
    (OURS_MODERN, 64): 1.0,
}
"""(row, clients) -> minimum calls/s as a multiple of the reference's at the same client count."""

SESSION_COUNTS: Final = (100, 1000)


class BenchError(RuntimeError):
    """The benchmark could not run (a server did not start, the load generator failed)."""


# ---- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL, 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


def _wait_ready(
    process: subprocess.Popen[bytes], probe: Callable[[], bool], what: str, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with status {process.returncode} during start-up")
        if probe():
            return
        time.sleep(0.05)
    raise BenchError(f"{what} not ready within {timeout_s:g} s")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOCAL, port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def running(
    argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` as a child process for the block; SIGINT (graceful) then SIGKILL on the way out."""
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def ensure_reference(version: str) -> Path:
    """The reference server's entry point, npm-installed into the cache on first use."""
    root = CACHE / f"everything-{version}"
    package = root / "node_modules" / REFERENCE_PACKAGE
    entry = package / "dist" / "index.js"
    if entry.exists():
        return entry
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError("npm not found: needed once to install the reference server")
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text('{"private": true}\n')
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", f"{REFERENCE_PACKAGE}@{version}"],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    if not entry.exists():
        raise BenchError(f"npm installed {REFERENCE_PACKAGE}@{version} but {entry} is missing")
    return entry


@contextlib.contextmanager
def reference_server(node: str, version: str) -> Iterator[Server]:
    entry = ensure_reference(version)
    port = free_port()
    argv = [node, "--import", LOCALHOST_PRELOAD.as_uri(), str(entry), "streamableHttp"]
    with running(argv, env={"PORT": str(port)}, cwd=entry.parent) as process:
        _wait_ready(process, lambda: _accepts(port), "reference server", 30)
        yield Server(REFERENCE, f"http://{LOCAL}:{port}/mcp", process)


def ours_argv(port: int, *, profile_to: Path | None = None) -> list[str]:
    serve = ["serve", "--sim", "--host", LOCAL, "--port", str(port)]
    if profile_to is not None:
        code = (
            f"import sys; sys.path.insert(1, {str(REPO)!r}); from benchmarks.throughput import profiled_main"
        )
        return [sys.executable, "-c", f"{code}; sys.exit(profiled_main())", str(profile_to), *serve]
    return [sys.executable, "-m", "servers.cli", *serve]


class _GcTimes:
    """Time spent in the cyclic garbage collector per generation, while `on` (a `gc.callbacks` entry)."""

    def __init__(self) -> None:
        self.on = False
        self._started = 0.0
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.on:
            generation = info["generation"]
            self.seconds[generation] += time.perf_counter() - self._started
            self.collections[generation] += 1

    def summary(self) -> dict[str, list[float] | list[int]]:
        return {"seconds": [round(s, 4) for s in self.seconds], "collections": self.collections}


def profiled_main() -> int:
    """`tello-mcp` (argv[2:]) with a cProfile of its main thread while measured.

    SIGUSR1 starts profiling, SIGUSR2 pauses it and writes the profile so far to argv[1]: only
    the measured windows, not start-up (imports, schema building) or warm-up, and only the
    event-loop thread, where all request handling runs.
    """
    from servers.cli import main as cli_main

    out, argv = sys.argv[1], sys.argv[2:]
    profiler = cProfile.Profile(time.thread_time)  # CPU time: being descheduled is not cost
    collector = _GcTimes()

    def start(*_: object) -> None:
        collector.on = True
        profiler.enable()

    def stop(*_: object) -> None:
        profiler.disable()
        collector.on = False
        profiler.dump_stats(out)
        Path(out + ".gc.json").write_text(json.dumps(collector.summary()))

    gc.callbacks.append(collector)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return cli_main(argv)


@contextlib.contextmanager
def our_server(tree: Path, *, profile_to: Path | None = None) -> Iterator[Server]:
    """`tello-mcp serve --sim` from `tree` with its defaults (JSON logs at INFO, to a null stream)."""
    port = free_port()
    with running(ours_argv(port, profile_to=profile_to), cwd=tree) as process:
        _wait_ready(process, lambda: _http_ok(f"http://{LOCAL}:{port}/readyz"), "tello-mcp serve --sim", 60)
        yield Server("ours", f"http://{LOCAL}:{port}/drone", process)


# ---- the load generator -----------------------------------------------------------------------


def _json_lines(process: subprocess.Popen[bytes], deadline: float) -> Iterator[dict[str, Any]]:
    """JSON objects from `process`'s stdout as they arrive, until EOF; BenchError past `deadline`."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    pending = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError("load generator overran its deadline")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)


@dataclass
class Cell:
    """One (server, era, client count) measurement."""

    row: str
    clients: int
    calls: int
    calls_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    server_cpu_ms_per_call: float | None
    client_cpu_ms_per_call: float | None
    errors: int
    first_error: str | None
    ratio: float | None = None
    round_ratios: list[float] = field(default_factory=list[float])


class Window(Protocol):
    def opened(self) -> None: ...
    def closed(self) -> None: ...


def drive(
    node: str,
    server: Server,
    row: str,
    era: str,
    tool: str,
    arguments: dict[str, Any],
    clients: int,
    opts: Options,
    *,
    window: Window | None = None,
) -> Cell:
    """One cell; `window` is told when the measured window opens and closes (a profiler), so
    warm-up and session set-up stay out of it."""
    config = {
        "url": server.url,
        "era": era,
        "tool": tool,
        "arguments": arguments,
        "clients": clients,
        "warmupS": opts.warmup_s,
        "durationS": opts.duration_s,
    }
    process = subprocess.Popen(
        [node, str(LOADGEN), "load", json.dumps(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    cpu_start = cpu_end = 0.0
    result: dict[str, Any] | None = None
    try:
        deadline = time.monotonic() + opts.warmup_s + opts.duration_s + 60
        for message in _json_lines(process, deadline):
            event = message.get("event")
            if event == "measure-start":
                cpu_start = cpu_seconds(server.pid)
                if window is not None:
                    window.opened()
            elif event == "measure-end":
                cpu_end = cpu_seconds(server.pid)
                if window is not None:
                    window.closed()
            elif event == "result":
                result = message
            elif event == "error":
                raise BenchError(f"load generator against {row}: {message.get('message')}")
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if result is None:
        raise BenchError(f"load generator against {row} ended without a result (status {process.returncode})")
    calls = int(result["calls"])
    return Cell(
        row=row,
        clients=clients,
        calls=calls,
        calls_per_s=float(result["calls_per_s"]),
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        server_cpu_ms_per_call=(cpu_end - cpu_start) * 1e3 / calls if calls else None,
        client_cpu_ms_per_call=float(result["client_cpu_ms"]) / calls if calls else None,
        errors=int(result["errors"]),
        first_error=result["first_error"],
    )


def idle_sessions(node: str, server: Server) -> dict[str, float]:
    """KiB of server RSS per idle handshake-era session, at each of `SESSION_COUNTS` open sessions."""
    process = subprocess.Popen(
        [node, str(LOADGEN), "sessions", json.dumps({"url": server.url})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    assert process.stdin is not None
    per_session: dict[str, float] = {}
    try:
        baseline = rss_kib(server.pid)
        opened = 0
        lines = _json_lines(process, time.monotonic() + 300)
        for count in SESSION_COUNTS:
            process.stdin.write(f"open {count - opened}\n".encode())
            message = next(lines)
            if message.get("event") != "open" or message.get("errors"):
                raise BenchError(f"opening sessions on {server.name}: {message}")
            opened = int(message["total"])
            per_session[str(count)] = (rss_kib(server.pid) - baseline) / opened
        process.stdin.close()
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return per_session


# ---- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    clients: tuple[int, ...]
    duration_s: float
    warmup_s: float
    rounds: int
    sessions: bool
    profile: bool
    profile_clients: int
    profiler: str
    json_path: Path
    reference_version: str
    ours_tree: Path = REPO


@dataclass
class Report:
    date: str
    machine: dict[str, Any]
    options: dict[str, Any]
    cells: list[Cell] = field(default_factory=list[Cell])
    targets: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    scaling: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    sessions_kib: dict[str, dict[str, float]] = field(default_factory=dict[str, dict[str, float]])
    profile: dict[str, Any] = field(default_factory=dict[str, Any])


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    node = shutil.which("node")
    node_version = (
        subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip() if node else None
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node_version,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def measure_matrix(node: str, opts: Options) -> list[list[Cell]]:
    """Every round: at each client count, reference then ours in both eras, back to back."""
    rounds: list[list[Cell]] = []
    with reference_server(node, opts.reference_version) as reference, our_server(opts.ours_tree) as ours:
        for _ in range(opts.rounds):
            cells: list[Cell] = []
            for clients in opts.clients:
                cells.append(
                    drive(node, reference, REFERENCE, LEGACY, "echo", {"message": "hi"}, clients, opts)
                )
                cells.append(drive(node, ours, OURS_LEGACY, LEGACY, "get_state", {}, clients, opts))
                cells.append(drive(node, ours, OURS_MODERN, MODERN, "get_state", {}, clients, opts))
            rounds.append(cells)
    return rounds


def combine(rounds: list[list[Cell]]) -> list[Cell]:
    """Per cell, the round with the median calls/s; ratios are medians of per-round ratios."""
    combined: list[Cell] = []
    for position in range(len(rounds[0])):
        runs = sorted((r[position] for r in rounds), key=lambda c: c.calls_per_s)
        cell = runs[(len(runs) - 1) // 2]
        ratios = [
            r[position].calls_per_s / ref.calls_per_s
            for r in rounds
            for ref in r
            if ref.row == REFERENCE and ref.clients == cell.clients and ref.calls_per_s > 0
        ]
        if cell.row != REFERENCE and ratios:
            cell.ratio = statistics.median(ratios)
            cell.round_ratios = [round(r, 3) for r in ratios]
        combined.append(cell)
    return combined


def judge(cells: list[Cell]) -> list[dict[str, Any]]:
    verdicts: list[dict[str, Any]] = []
    for cell in cells:
        goal = TARGETS.get((cell.row, cell.clients))
        if goal is None or cell.ratio is None:
            continue
        verdicts.append(
            {
                "row": cell.row,
                "clients": cell.clients,
                "ratio": cell.ratio,
                "goal": goal,
                "met": cell.ratio >= goal,
            }
        )
    return verdicts


def scaling(cells: list[Cell]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for row in (REFERENCE, OURS_LEGACY, OURS_MODERN):
        mine = sorted((c for c in cells if c.row == row), key=lambda c: c.clients)
        if len(mine) < 2:
            continue
        low, high = mine[0], mine[-1]
        rows.append(
            {
                "row": row,
                "from_clients": low.clients,
                "to_clients": high.clients,
                "calls_per_s_x": high.calls_per_s / low.calls_per_s if low.calls_per_s else None,
                "p99_x": high.p99_ms / low.p99_ms if high.p99_ms and low.p99_ms else None,
            }
        )
    return rows


# ---- profile ----------------------------------------------------------------------------------

AREAS: Final = (
    ("servers/", "ours (servers/)"),
    ("drone_sim/", "ours (drone_sim/)"),
    ("structlog", "structlog"),
    ("/mcp/", "mcp SDK"),
    ("mcp_types", "mcp SDK"),
    ("pydantic", "pydantic"),
    ("starlette", "starlette"),
    ("uvicorn", "uvicorn"),
    ("h11", "h11"),
    ("anyio", "anyio"),
    ("sse_starlette", "sse-starlette"),
    ("asyncio", "asyncio"),
    ("json", "json"),
    ("logging", "logging"),
)


Func = tuple[str, int, str]
"""pstats' key for a function: (file, line, name); file "~" for built-ins."""
SYSCALLS: Final = ("_socket.socket", "epoll", "select.")


def area_of(filename: str) -> str:
    for needle, area in AREAS:
        if needle in filename:
            return area
    return "other"


def areas_of(func: Func, callers: dict[Func, Any]) -> list[tuple[str, float]]:
    """Where a function's own time belongs: its package; socket and epoll calls are the
    kernel's; any other built-in (C) function's time goes to its callers' packages, in
    proportion to the time each caller spent in it."""
    filename, _, name = func
    if filename != "~":
        return [(area_of(filename), 1.0)]
    if any(needle in name for needle in SYSCALLS):
        return [("syscalls (socket send/recv, epoll)", 1.0)]
    spent = {caller: float(stat[3]) for caller, stat in callers.items()}
    whole = sum(spent.values())
    if whole <= 0:
        return [("other", 1.0)]
    return [(area_of(caller[0]), t / whole) for caller, t in spent.items()]


@dataclass
class _Signals:
    """Profile `profiled_main`'s server during measured windows: SIGUSR1 starts, SIGUSR2 pauses."""

    server: Server

    def opened(self) -> None:
        self.server.process.send_signal(signal.SIGUSR1)

    def closed(self) -> None:
        self.server.process.send_signal(signal.SIGUSR2)


def profile_ours(node: str, opts: Options) -> dict[str, Any]:
    if opts.profiler == "py-spy":
        return profile_ours_py_spy(node, opts)
    return profile_ours_cprofile(node, opts)


def profile_ours_cprofile(node: str, opts: Options) -> dict[str, Any]:
    """cProfile (CPU time) of our server's event-loop thread while the load drives both eras."""
    out = opts.json_path.with_name("ours.prof")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with our_server(opts.ours_tree, profile_to=out) as ours:
        for row, era in ((OURS_LEGACY, LEGACY), (OURS_MODERN, MODERN)):
            drive(node, ours, row, era, "get_state", {}, opts.profile_clients, opts, window=_Signals(ours))
    if not out.exists():
        raise BenchError("the profiled server wrote no profile")
    stats = pstats.Stats(str(out))
    gc_times = json.loads(Path(str(out) + ".gc.json").read_text())
    raw: dict[Func, tuple[int, int, float, float, dict[Func, Any]]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tottime for _, _, tottime, _, _ in raw.values()) or 1.0
    by_area: dict[str, float] = {}
    for func, (_, _, tottime, _, callers) in raw.items():
        for area, share in areas_of(func, callers):
            by_area[area] = by_area.get(area, 0.0) + tottime * share
    top = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:15]
    return {
        "profiler": "cProfile (thread CPU time)",
        "clients": opts.profile_clients,
        "file": str(out),
        "gc": gc_times,
        "total_s": total,
        "by_area_pct": {
            k: round(100 * v / total, 1) for k, v in sorted(by_area.items(), key=lambda kv: -kv[1])
        },
        "top_tottime": [
            {
                "function": f"{Path(filename).name}:{line}({name})" if filename != "~" else name,
                "calls": calls,
                "tottime_pct": round(100 * tottime / total, 1),
                "cumtime_s": round(cumtime, 3),
            }
            for (filename, line, name), (_, calls, tottime, cumtime, _) in top
        ],
    }


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class _PySpy:
    """`py-spy record` (sampling, on-CPU stacks only) attached to the server for each window."""

    binary: str
    server: Server
    seconds: float
    out_dir: Path
    outputs: list[Path] = field(default_factory=list[Path])
    _recording: subprocess.Popen[bytes] | None = None

    def opened(self) -> None:
        out = self.out_dir / f"ours.pyspy.{len(self.outputs)}.txt"
        out.unlink(missing_ok=True)
        self.outputs.append(out)
        argv = [self.binary, "record", "-p", str(self.server.pid), "-r", "200", "--format", "raw"]
        argv += ["-d", str(max(1, round(self.seconds))), "-o", str(out)]
        self._recording = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def closed(self) -> None:
        if self._recording is not None:
            self._recording.wait(timeout=self.seconds + 30)
            self._recording = None


def _package_of(frame: str) -> str:
    """`name (path/to/file.py:line)` -> the top-level package (ours by subpackage)."""
    path = frame.rsplit("(", 1)[-1].rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    if parts[0] == "servers" and len(parts) > 2:
        return f"ours ({parts[0]}/{parts[1]})"
    if parts[0] in ("servers", "drone_sim", "tello_io"):
        return f"ours ({parts[0]})"
    return parts[0].removesuffix(".py")


PY_SPY_INCLUSIVE: Final = (
    ("our tool wrapper (servers/drone/tools.py), its log line included", ("servers/drone/tools.py",)),
    ("structlog + logging", ("(structlog/", "(logging/")),
    ("pydantic", ("(pydantic",)),
    ("h11 parser/writer", ("(h11/",)),
    ("sse-starlette (SSE responses)", ("(sse_starlette/",)),
    ("asyncio transport write (the send syscall)", ("write (asyncio/selector_events.py",)),
)


def profile_ours_py_spy(node: str, opts: Options) -> dict[str, Any]:
    """py-spy samples of our server (all threads, on-CPU only) while the load drives both eras."""
    binary = py_spy()
    if binary is None:
        raise BenchError("--profiler py-spy: py-spy not found (pip install py-spy)")
    out_dir = opts.json_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    with our_server(opts.ours_tree) as ours:
        spy = _PySpy(binary, ours, opts.duration_s, out_dir)
        for row, era in ((OURS_LEGACY, LEGACY), (OURS_MODERN, MODERN)):
            drive(node, ours, row, era, "get_state", {}, opts.profile_clients, opts, window=spy)
    stacks: list[tuple[list[str], int]] = []
    for out in spy.outputs:
        if not out.exists():
            raise BenchError(f"py-spy wrote no {out} (does it have ptrace rights?)")
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                stacks.append((stack.split(";"), int(count)))
    total = sum(n for _, n in stacks) or 1
    by_area: dict[str, int] = {}
    by_leaf: dict[str, int] = {}
    for frames, n in stacks:
        by_area[_package_of(frames[-1])] = by_area.get(_package_of(frames[-1]), 0) + n
        by_leaf[frames[-1]] = by_leaf.get(frames[-1], 0) + n
    inclusive = {
        name: round(
            100 * sum(n for frames, n in stacks if any(x in f for f in frames for x in needles)) / total, 1
        )
        for name, needles in PY_SPY_INCLUSIVE
    }
    return {
        "profiler": "py-spy (samples on CPU)",
        "clients": opts.profile_clients,
        "files": [str(out) for out in spy.outputs],
        "samples": total,
        "by_area_pct": {
            k: round(100 * v / total, 1) for k, v in sorted(by_area.items(), key=lambda kv: -kv[1])
        },
        "inclusive_pct": inclusive,
        "top_tottime": [
            {"function": frame, "calls": None, "tottime_pct": round(100 * n / total, 1)}
            for frame, n in sorted(by_leaf.items(), key=lambda kv: -kv[1])[:15]
        ],
    }


# ---- output -----------------------------------------------------------------------------------


def render_cells(
    cells: Sequence[Cell], targets: Sequence[dict[str, Any]], write: Callable[[str], object], *, width: int
) -> None:
    """The table of measured cells with their ratio and target verdict (this benchmark's and
    `benchmarks.demo_servers`')."""
    write(
        f"{'server':<{width}}{'clients':>8}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'srv cpu ms/call':>17}{'vs ref':>8}  target"
    )
    verdicts = {(v["row"], v["clients"]): v for v in targets}
    for cell in cells:
        verdict = verdicts.get((cell.row, cell.clients))
        target = "" if verdict is None else f">= {verdict['goal']:g}x {'met' if verdict['met'] else 'MISSED'}"
        ratio = "" if cell.ratio is None else f"{cell.ratio:.2f}x"
        errors = f"  ({cell.errors} errors: {cell.first_error})" if cell.errors else ""
        write(
            f"{cell.row:<{width}}{cell.clients:>8}{cell.calls_per_s:>10.0f}{_num(cell.p50_ms, '.1f'):>9}"
            f"{_num(cell.p99_ms, '.1f'):>9}{_num(cell.server_cpu_ms_per_call, '.2f'):>17}{ratio:>8}"
            f"  {target}{errors}"
        )


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(report: Report, write: Callable[[str], object] = print) -> None:
    m = report.machine
    write(
        f"MCP tools/call throughput, {report.date}, {m['cpu']} x{m['cores']} "
        f"(load avg {m['load_avg_at_start']}), "
        f"keep-alive Node load generator, {report.options['duration_s']:g} s per cell"
        + (f", median of {report.options['rounds']} rounds" if report.options["rounds"] > 1 else "")
    )
    render_cells(report.cells, report.targets, write, width=28)
    for row in report.scaling:
        write(
            f"growth {row['row']}: {row['from_clients']} -> {row['to_clients']} clients: "
            f"calls/s x{_num(row['calls_per_s_x'], '.2f')}, p99 x{_num(row['p99_x'], '.1f')}"
        )
    for name, per in report.sessions_kib.items():
        shown = ", ".join(f"{count} sessions {kib:.1f} KiB each" for count, kib in per.items())
        write(f"memory per idle handshake-era session, {name}: {shown}")
    if report.profile:
        p = report.profile
        areas = ", ".join(f"{area} {pct}%" for area, pct in list(p["by_area_pct"].items())[:10])
        write(f"profile of ours at {p['clients']} clients ({p['profiler']}), own time by area: {areas}")
        if "gc" in p:
            collected = p["gc"]
            write(
                f"  garbage collector: {sum(collected['seconds']):.2f} s of {p['total_s']:.2f} s profiled "
                f"(collections per generation {collected['collections']}, seconds {collected['seconds']})"
            )
        for name, pct in p.get("inclusive_pct", {}).items():
            write(f"  {pct:>5.1f}% inclusive: {name}")
        for item in p["top_tottime"][:10]:
            calls = "" if item["calls"] is None else item["calls"]
            write(f"  {item['tottime_pct']:>5.1f}%  {calls:>8}  {item['function']}")
    missed = [f"{v['row']} c={v['clients']}" for v in report.targets if not v["met"]]
    write(f"targets: {'MISSED: ' + ', '.join(missed) if missed else 'all met'}")


# ---- entry point ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=DESCRIPTION)
    parser.add_argument("--clients", default="1,8,64", help="comma-separated client counts (default 1,8,64)")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per cell (default 3)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds before each cell (default 1)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="repeat the whole matrix; medians are reported (default 3)"
    )
    parser.add_argument("--no-sessions", action="store_true", help="skip the idle-session memory measurement")
    parser.add_argument("--profile", action="store_true", help="also profile our server under load")
    parser.add_argument(
        "--profiler",
        choices=("cprofile", "py-spy"),
        default="cprofile",
        help="cprofile (CPU time, GC pauses counted; default) or py-spy (sampling; pip install py-spy)",
    )
    parser.add_argument("--profile-clients", type=int, default=8, help="clients while profiling (default 8)")
    parser.add_argument(
        "--json", type=Path, default=CACHE / "throughput.json", help="where to write the results"
    )
    parser.add_argument(
        "--reference-version", default=REFERENCE_VERSION, help=f"npm version of {REFERENCE_PACKAGE}"
    )
    parser.add_argument(
        "--ours-tree",
        type=Path,
        default=REPO,
        help="serve ours from another checkout of this repository (A/B runs of a change)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 and 8 clients, 1 s cells, no sessions (proves it runs)"
    )
    args = parser.parse_args(argv)
    clients = tuple(int(c) for c in args.clients.split(",") if c.strip())
    if not clients or min(clients) < 1:
        parser.error("--clients needs positive integers")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    duration, warmup, sessions, rounds = args.duration, args.warmup, not args.no_sessions, args.rounds
    if args.quick:
        clients, duration, warmup, sessions = (1, 8), 1.0, 0.5, False
        rounds = 1
    return Options(
        clients=clients,
        duration_s=duration,
        warmup_s=warmup,
        rounds=rounds,
        sessions=sessions,
        profile=args.profile,
        profile_clients=args.profile_clients,
        profiler=args.profiler,
        json_path=args.json,
        reference_version=args.reference_version,
        ours_tree=args.ours_tree.resolve(),
    )


def find_node(benchmark: str) -> str | None:
    """The `node` binary, or None after saying `benchmark` is skipped without it."""
    node = shutil.which("node")
    if node is None:
        print(f"{benchmark} skipped: node not found (needed for the load generator and the reference)")
    return node


def stamp(options: Any) -> dict[str, Any]:
    """When, where and with what options a report was made (its first fields)."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
    }


def save_json(report: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"results: {path}")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    node = find_node("throughput benchmark")
    if node is None:
        return 2
    report = Report(**stamp(opts))
    try:
        report.cells = combine(measure_matrix(node, opts))
        report.targets = judge(report.cells)
        report.scaling = scaling(report.cells)
        if opts.sessions:
            with our_server(opts.ours_tree) as ours:
                report.sessions_kib["ours"] = idle_sessions(node, ours)
            with reference_server(node, opts.reference_version) as reference:
                report.sessions_kib["reference"] = idle_sessions(node, reference)
        if opts.profile:
            report.profile = profile_ours(node, opts)
    except (BenchError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"throughput benchmark failed: {exc}")
        return 2
    render(report)
    save_json(report, opts.json_path)
    return 0 if all(v["met"] for v in report.targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
