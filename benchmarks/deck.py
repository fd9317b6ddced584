"""The flight deck's cost to the drone, and its speed: `python -m benchmarks.deck`.

Serves the drone app on the embedded simulator in real time (`time_scale` 1), then measures
twice, with no deck viewer and with `--viewers` (10) streams open (one of them stalled: it never
reads), in the same run:

* the keepalive as the simulator hears it while the link is quiet (goal: 5 s ± 0.5 s);
* `get_battery` over MCP, `--calls` calls one after another (goal: p50 with viewers within
  1.2x of without).

Then opens the page in headless Chromium and reports its first paint (navigation start to the
first snapshot drawn) and the time from a state packet reaching the server to the page drawing
it (p50, p99). Prints a table, writes JSON (`--json`), exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import time
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from servers.drone.app import build_drone_app
from servers.drone.config import DroneSettings
from servers.drone.runtime import DroneRuntime
from servers.http import HttpSettings, serve
from servers.logs import configure_logging

KEEPALIVE_S = 5.0
TOLERANCE_S = 0.5
LATENCY_RATIO = 1.2
CHROMIUM = "/usr/bin/chromium"


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def _phase(runtime: DroneRuntime, url: str, *, quiet_s: float, calls: int) -> dict[str, Any]:
    sim = runtime.sim
    assert sim is not None
    started = runtime.clock.now()
    await anyio.sleep(quiet_s)  # a benchmark measures real time: the link is left quiet
    heard = [r.t for r in sim.truth.received if r.data == b"command" and r.t >= started]
    intervals = [b - a for a, b in itertools.pairwise(heard)]
    latencies: list[float] = []
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as c,
    ):
        for _ in range(calls):
            t0 = time.perf_counter()
            result = await c.call_tool("get_battery", {})
            latencies.append((time.perf_counter() - t0) * 1000)
            assert not result.is_error, result.content
    return {
        "keepalive_intervals_s": [round(i, 3) for i in intervals],
        "keepalive_worst_deviation_s": round(max((abs(i - KEEPALIVE_S) for i in intervals), default=99.0), 3),
        "get_battery_p50_ms": _pct(latencies, 0.5),
        "get_battery_p99_ms": _pct(latencies, 0.99),
    }


@contextlib.asynccontextmanager
async def _viewers(base: str, n: int) -> AsyncGenerator[list[int]]:
    """`n` deck streams: n-1 reading every event, one stalled (never reads after its headers)."""
    counts = [0] * n
    async with httpx.AsyncClient(timeout=None) as http, anyio.create_task_group() as tg:

        async def view(i: int) -> None:
            async with http.stream("GET", f"{base}/deck/events") as stream:
                assert stream.status_code == 200, stream.status_code
                if i == n - 1:
                    await anyio.sleep_forever()  # the stalled viewer
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        counts[i] += 1

        for i in range(n):
            tg.start_soon(view, i)
        try:
            yield counts
        finally:
            tg.cancel_scope.cancel()


async def _browser(base: str, seconds: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page()
        await page.goto(f"{base}/deck")
        await page.wait_for_function("window.__deckStats && window.__deckStats.packetToPageMs.length > 0")
        await anyio.sleep(seconds)
        stats: dict[str, Any] = await page.evaluate("window.__deckStats")
        await browser.close()
    samples: list[float] = stats["packetToPageMs"]
    return {
        "first_paint_ms": round(stats["firstRenderMs"], 1),
        "packet_to_page_p50_ms": _pct(samples, 0.5),
        "packet_to_page_p99_ms": _pct(samples, 0.99),
        "snapshots_drawn": len(samples),
    }


async def measure(viewers: int, calls: int, quiet_s: float) -> dict[str, Any]:
    runtime = DroneRuntime(DroneSettings(sim=True, deck_max_viewers=max(8, viewers + 1)))
    http = HttpSettings(port=0, shutdown_timeout=1.0)
    app = build_drone_app(runtime, http)
    results: dict[str, dict[str, Any]] = {}
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, http)
        base = f"http://127.0.0.1:{port}"
        while not runtime.connected():
            await runtime.link.wait_changed()
        results["alone"] = await _phase(runtime, f"{base}/drone", quiet_s=quiet_s, calls=calls)
        async with _viewers(base, viewers) as counts:
            results["watched"] = await _phase(runtime, f"{base}/drone", quiet_s=quiet_s, calls=calls)
            results["watched"]["events_per_viewer"] = list(counts)
        results["page"] = await _browser(base, 5.0)
        tg.cancel_scope.cancel()
    alone, watched, page = results["alone"], results["watched"], results["page"]
    ratio = watched["get_battery_p50_ms"] / alone["get_battery_p50_ms"]
    keepalive_ok = all(
        p["keepalive_intervals_s"] and p["keepalive_worst_deviation_s"] <= TOLERANCE_S
        for p in (alone, watched)
    )
    return {
        "viewers": viewers,
        "no_viewers": alone,
        "with_viewers": watched,
        "latency_ratio": round(ratio, 2),
        "browser": page,
        "goal_met": keepalive_ok and ratio <= LATENCY_RATIO,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deck", description=__doc__)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--quiet-s", type=float, default=16.0, help="seconds of quiet link per phase")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging("console", "warning")
    r = anyio.run(measure, args.viewers, args.calls, args.quiet_s)
    a, w, b = r["no_viewers"], r["with_viewers"], r["browser"]
    print(f"deck benchmark: {r['viewers']} viewers (one stalled) against none, same run")
    print(f"  keepalive intervals, no viewers:   {a['keepalive_intervals_s']}")
    print(f"  keepalive intervals, with viewers: {w['keepalive_intervals_s']} (goal 5 s ± {TOLERANCE_S} s)")
    print(f"  get_battery p50/p99 ms, no viewers:   {a['get_battery_p50_ms']} / {a['get_battery_p99_ms']}")
    print(f"  get_battery p50/p99 ms, with viewers: {w['get_battery_p50_ms']} / {w['get_battery_p99_ms']}")
    print(f"  ratio: {r['latency_ratio']}x (goal <= {LATENCY_RATIO}x)")
    print(f"  events per viewer: {w['events_per_viewer']}")
    print(
        f"  page: first paint {b['first_paint_ms']} ms; packet to page p50 {b['packet_to_page_p50_ms']} ms,"
    )
    print(f"        p99 {b['packet_to_page_p99_ms']} ms over {b['snapshots_drawn']} snapshots")
    print(f"  goal: {'met' if r['goal_met'] else 'MISSED'}")
    if args.json is not None:
        args.json.write_text(json.dumps(r, indent=2), encoding="utf-8")
    return 0 if r["goal_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
