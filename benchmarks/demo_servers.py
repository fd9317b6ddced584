"""The demo servers against their references, same run: `everything` `echo` and `fetch`.

Throughput: the keep-alive Node load generator of `benchmarks.throughput` drives, at each client
count (1, 8, 64), one after the other:

* the reference `@modelcontextprotocol/server-everything streamableHttp`, its `echo` tool,
  handshake era (all it speaks);
* ours, `tello-mcp serve everything`, `echo`: one process in the handshake era and the
  2026-07-28 era, and `--workers 2` (processes sharing the port) in the 2026-07-28 era (workers
  serve the handshake era sessionless, and the load generator's handshake-era clients each
  hold a session).

Per cell: calls/s, p50/p99, server CPU ms per call (every process of the server: parent and
workers, from /proc over the measured window) and calls/s over the reference's at the same
client count; the matrix runs `--rounds` times and each ratio is the median of its per-round
ratios (`throughput.combine`). Target: >= 1.0x the reference at every client count, every row.

Fetch latency: one local page (`tests/fetch/fixtures/article.html`, served by a small HTTP
server on 127.0.0.1 started here) fetched one call after the other through our `/fetch`
(`TELLO_MCP_FETCH_ALLOW=127.0.0.1`, 2026-07-28 era) and through the reference `mcp-server-fetch`
(PyPI, installed once into a venv under `.cache/bench/`, over stdio with
`--ignore-robots-txt --allow-private-ips`); robots.txt is off on both sides, so that both time
the fetch and the HTML-to-markdown extraction only. Target: our p50 <= the reference's.

Prints a table; results go to `.cache/bench/demo_servers.json` (or `--json PATH`). Exit status
1 if a target is missed, 2 if the run could not happen.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from benchmarks.throughput import (
    CACHE,
    LEGACY,
    LOCAL,
    MODERN,
    REFERENCE,
    REFERENCE_VERSION,
    REPO,
    BenchError,
    Cell,
    Options,
    Server,
    _http_ok,  # pyright: ignore[reportPrivateUsage]
    _num,  # pyright: ignore[reportPrivateUsage]
    _wait_ready,  # pyright: ignore[reportPrivateUsage]
    combine,
    cpu_seconds,
    drive,
    find_node,
    free_port,
    reference_server,
    render_cells,
    running,
    save_json,
    stamp,
)

DESCRIPTION = "The everything echo and fetch demo servers vs their reference servers, same run."
FETCH_PACKAGE: Final = "mcp-server-fetch"
FETCH_VENV: Final = CACHE / "fetch-venv"
PAGE: Final = REPO / "tests" / "fetch" / "fixtures" / "article.html"
WORKER_COUNTS: Final = (1, 2)
FETCH_MIN_CALLS: Final = 10
"""Reference fetches measured at least, however long they take (~1 s each with Node on PATH)."""
TARGET: Final = 1.0
"""Every row of ours, every client count: calls/s >= this multiple of the reference's."""


def row_name(workers: int, era: str) -> str:
    return f"ours echo w{workers} {'handshake' if era == LEGACY else era}"


# ---- servers ----------------------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and its live children (a worker parent and its workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + sum(cpu_seconds(int(child)) for child in children)


@dataclass
class TreeCpu:
    """A `throughput.drive` window: CPU of the server's whole process tree over the measured window."""

    pid: int
    start: float = 0.0
    end: float = 0.0

    def opened(self) -> None:
        self.start = tree_cpu_seconds(self.pid)

    def closed(self) -> None:
        self.end = tree_cpu_seconds(self.pid)


def measure(
    node: str,
    server: Server,
    row: str,
    era: str,
    tool: str,
    arguments: dict[str, Any],
    clients: int,
    opts: Options,
) -> Cell:
    window = TreeCpu(server.pid)
    cell = drive(node, server, row, era, tool, arguments, clients, opts, window=window)
    if cell.calls:
        cell.server_cpu_ms_per_call = (window.end - window.start) * 1e3 / cell.calls
    return cell


def _served_by_all(port: int, workers: int) -> bool:
    """True once `workers` distinct processes have answered /readyz (new connection each time)."""
    seen: set[str] = set()
    for _ in range(20 * workers):
        try:
            with urllib.request.urlopen(f"http://{LOCAL}:{port}/readyz", timeout=1) as response:
                seen.add(response.headers.get("x-served-by", "single"))
        except OSError:
            return False
        if len(seen) >= workers:
            return True
    return False


@contextlib.contextmanager
def ours(name: str, path: str, workers: int, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`tello-mcp serve NAME --workers N` on 127.0.0.1 with its defaults (JSON logs to a null stream)."""
    port = free_port()
    argv = [sys.executable, "-m", "servers.cli", "serve", name, "--host", LOCAL, "--port", str(port)]
    argv += ["--workers", str(workers)]
    with running(argv, env=env, cwd=REPO) as process:
        what = f"tello-mcp serve {name} --workers {workers}"
        _wait_ready(process, lambda: _http_ok(f"http://{LOCAL}:{port}/readyz"), what, 60)
        _wait_ready(process, lambda: _served_by_all(port, workers), what, 30)
        yield Server(f"ours {name} w{workers}", f"http://{LOCAL}:{port}{path}", process)


# ---- echo throughput --------------------------------------------------------------------------


def measure_echo(node: str, opts: Options) -> list[list[Cell]]:
    """Every round: at each client count, the reference, then ours per worker count and era."""
    echo = {"message": "hi"}
    rounds: list[list[Cell]] = []
    with contextlib.ExitStack() as stack:
        reference = stack.enter_context(reference_server(node, opts.reference_version))
        servers = {w: stack.enter_context(ours("everything", "/everything", w)) for w in WORKER_COUNTS}
        for _ in range(opts.rounds):
            cells: list[Cell] = []
            for clients in opts.clients:
                cells.append(measure(node, reference, REFERENCE, LEGACY, "echo", echo, clients, opts))
                for workers, server in servers.items():
                    # Workers serve the handshake era sessionless, which the load generator (one
                    # session per client) does not do: their row is the 2026-07-28 era only.
                    for era in (LEGACY, MODERN) if workers == 1 else (MODERN,):
                        row = row_name(workers, era)
                        cells.append(measure(node, server, row, era, "echo", echo, clients, opts))
            rounds.append(cells)
    return rounds


def judge(cells: list[Cell]) -> list[dict[str, Any]]:
    return [
        {"row": c.row, "clients": c.clients, "ratio": c.ratio, "goal": TARGET, "met": c.ratio >= TARGET}
        for c in cells
        if c.row != REFERENCE and c.ratio is not None
    ]


# ---- fetch latency ----------------------------------------------------------------------------


@contextlib.contextmanager
def local_page() -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 serving one HTML page (404 for anything else)."""
    body = PAGE.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path != "/article.html":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer((LOCAL, 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL}:{httpd.server_address[1]}/article.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


def ensure_fetch_reference() -> Path:
    """The `mcp-server-fetch` console script, pip-installed into a cache venv on first use."""
    script = FETCH_VENV / "bin" / FETCH_PACKAGE
    if script.exists():
        return script
    subprocess.run([sys.executable, "-m", "venv", str(FETCH_VENV)], check=True, timeout=300)
    pip = [str(FETCH_VENV / "bin" / "pip"), "install", "--quiet", FETCH_PACKAGE]
    subprocess.run(pip, check=True, stdout=subprocess.DEVNULL, timeout=600)
    if not script.exists():
        raise BenchError(f"pip installed {FETCH_PACKAGE} but {script} is missing")
    return script


@dataclass
class FetchRow:
    row: str
    calls: int
    calls_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    server_cpu_ms_per_call: float | None
    chars: int | None = None
    p50_vs_reference: float | None = None
    """Reference p50 over ours: above 1, ours is faster."""


class _Stdio:
    """Newline-delimited JSON-RPC with a stdio MCP server."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.stdin: IO[bytes] = process.stdin
        self.stdout: IO[bytes] = process.stdout
        self.next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        self.stdin.write(json.dumps(message).encode() + b"\n")
        self.stdin.flush()

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        for _ in range(1000):  # skip notifications (logging, progress) until our response
            line = self.stdout.readline()
            if not line:
                raise BenchError(f"{method}: the stdio server closed its output")
            message: dict[str, Any] = json.loads(line)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise BenchError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
        raise BenchError(f"{method}: no response among 1000 messages")


def _text_chars(result: dict[str, Any]) -> int:
    return sum(len(block.get("text", "")) for block in result.get("content", []))


def fetch_reference(url: str, opts: Options) -> FetchRow:
    script = ensure_fetch_reference()
    argv = [str(script), "--ignore-robots-txt", "--allow-private-ips"]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        rpc = _Stdio(process)
        rpc.call(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        )
        rpc.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        arguments = {"url": url}
        chars: int | None = None

        def one() -> dict[str, Any]:
            result = rpc.call("tools/call", {"name": "fetch", "arguments": arguments})
            if result.get("isError"):
                raise BenchError(f"{FETCH_PACKAGE} fetch failed: {result}")
            return result

        until = time.monotonic() + opts.warmup_s
        while time.monotonic() < until:
            chars = _text_chars(one())
        latencies: list[float] = []
        cpu_start = cpu_seconds(process.pid)
        started = time.perf_counter()
        while time.perf_counter() - started < opts.duration_s or len(latencies) < FETCH_MIN_CALLS:
            t0 = time.perf_counter()
            chars = _text_chars(one())
            latencies.append((time.perf_counter() - t0) * 1e3)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(process.pid) - cpu_start
    finally:
        process.kill()
        process.wait(timeout=10)
    return _fetch_row(f"reference {FETCH_PACKAGE}", latencies, elapsed, cpu, chars)


def _percentile(sorted_ms: list[float], p: float) -> float | None:
    if not sorted_ms:
        return None
    index = min(len(sorted_ms) - 1, max(0, -(-len(sorted_ms) * p // 100) - 1))
    return sorted_ms[int(index)]


def _fetch_row(row: str, latencies: list[float], elapsed: float, cpu: float, chars: int | None) -> FetchRow:
    ordered = sorted(latencies)
    calls = len(ordered)
    return FetchRow(
        row=row,
        calls=calls,
        calls_per_s=calls / elapsed if elapsed else 0.0,
        p50_ms=_percentile(ordered, 50),
        p99_ms=_percentile(ordered, 99),
        server_cpu_ms_per_call=cpu * 1e3 / calls if calls else None,
        chars=chars,
    )


def measure_fetch(node: str, opts: Options) -> list[FetchRow]:
    """Our /fetch (2026-07-28 era), then the reference, one call at a time, on the same local page."""
    env = {"TELLO_MCP_FETCH_ALLOW": LOCAL, "TELLO_MCP_FETCH_ROBOTS_TXT": "false"}
    rows: list[FetchRow] = []
    with local_page() as url:
        with ours("fetch", "/fetch", 1, env=env) as server:
            for era in (MODERN,):  # the handshake-era /fetch is sessionless: the load generator needs one
                row = f"ours fetch {era}"
                cell = measure(node, server, row, era, "fetch", {"url": url}, 1, opts)
                if cell.errors:
                    raise BenchError(f"{row}: {cell.errors} errors, first: {cell.first_error}")
                rows.append(
                    FetchRow(
                        row,
                        cell.calls,
                        cell.calls_per_s,
                        cell.p50_ms,
                        cell.p99_ms,
                        cell.server_cpu_ms_per_call,
                    )
                )
        reference = fetch_reference(url, opts)
    for row in rows:
        if row.p50_ms and reference.p50_ms:
            row.p50_vs_reference = reference.p50_ms / row.p50_ms
    return [*rows, reference]


# ---- the run ----------------------------------------------------------------------------------


@dataclass
class Report:
    date: str
    machine: dict[str, Any]
    options: dict[str, Any]
    cells: list[Cell] = field(default_factory=list[Cell])
    targets: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    fetch: list[FetchRow] = field(default_factory=list[FetchRow])


def render(report: Report, write: Callable[[str], object] = print) -> None:
    m = report.machine
    write(
        f"demo servers vs references, {report.date}, {m['cpu']} x{m['cores']} "
        f"(load avg {m['load_avg_at_start']}), keep-alive Node load generator, "
        f"{report.options['duration_s']:g} s per cell, median of {report.options['rounds']} round(s)"
    )
    render_cells(report.cells, report.targets, write, width=30)
    if report.fetch:
        write("fetch of a local page (127.0.0.1), one call at a time:")
        write(
            f"{'server':<30}{'calls':>8}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'srv cpu ms/call':>17}{'ref/ours p50':>14}"
        )
        for row in report.fetch:
            write(
                f"{row.row:<30}{row.calls:>8}{row.calls_per_s:>10.1f}{_num(row.p50_ms, '.1f'):>9}"
                f"{_num(row.p99_ms, '.1f'):>9}{_num(row.server_cpu_ms_per_call, '.2f'):>17}"
                f"{_num(row.p50_vs_reference, '.2f'):>14}"
            )
    missed = [f"{v['row']} c={v['clients']}" for v in report.targets if not v["met"]]
    write(f"targets: {'MISSED: ' + ', '.join(missed) if missed else 'all met'}")


def parse_args(argv: Sequence[str] | None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.demo_servers", description=DESCRIPTION)
    parser.add_argument("--clients", default="1,8,64", help="comma-separated client counts (default 1,8,64)")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per cell (default 3)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds before each cell (default 1)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="repeat the echo matrix; medians reported (default 3)"
    )
    parser.add_argument("--no-fetch", action="store_true", help="skip the fetch latency comparison")
    parser.add_argument(
        "--json", type=Path, default=CACHE / "demo_servers.json", help="where to write the results"
    )
    parser.add_argument("--reference-version", default=REFERENCE_VERSION, help="npm version of the reference")
    parser.add_argument(
        "--quick", action="store_true", help="1 and 8 clients, 1 s cells, one round (proves it runs)"
    )
    args = parser.parse_args(argv)
    clients = tuple(int(c) for c in args.clients.split(",") if c.strip())
    if not clients or min(clients) < 1:
        parser.error("--clients needs positive integers")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    duration, warmup, rounds = args.duration, args.warmup, args.rounds
    if args.quick:
        clients, duration, warmup, rounds = (1, 8), 1.0, 0.5, 1
    opts = Options(
        clients=clients,
        duration_s=duration,
        warmup_s=warmup,
        rounds=rounds,
        sessions=False,
        profile=False,
        profile_clients=8,
        profiler="cprofile",
        json_path=args.json,
        reference_version=args.reference_version,
    )
    return opts, not args.no_fetch


def main(argv: Sequence[str] | None = None) -> int:
    opts, with_fetch = parse_args(argv)
    node = find_node("demo servers benchmark")
    if node is None:
        return 2
    report = Report(**stamp(opts))
    try:
        report.cells = combine(measure_echo(node, opts))
        report.targets = judge(report.cells)
        if with_fetch:
            report.fetch = measure_fetch(node, opts)
    except (BenchError, OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"demo servers benchmark failed: {exc}")
        return 2
    render(report)
    save_json(report, opts.json_path)
    for row in report.fetch:
        if row.p50_vs_reference is not None and row.p50_vs_reference < 1.0:
            return 1
    return 0 if all(v["met"] for v in report.targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
