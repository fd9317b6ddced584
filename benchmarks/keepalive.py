"""The drone's keepalive while scripts burn CPU: what the simulator actually hears.

`python -m benchmarks.keepalive` runs the drone runtime on the embedded simulator in real time
(`time_scale` 1: the 5 s keepalive is 5 real seconds), hovers it, then keeps 16 `run_code`
scripts spinning in busy loops through the `/drone-code` server for `--seconds`, and reads from
the simulator's ground truth when each `command` keepalive arrived. The sandbox runs in worker
processes, so a busy script should not delay the server's timers at all.

Goal (issue 11): every interval between keepalives the drone heard while the scripts ran is
5 s ± 0.5 s. Prints a table, writes JSON (`--json`), exits 1 if the goal is missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from servers.drone.app import drone_mounts, running
from servers.drone.config import DroneSettings
from servers.drone.runtime import DroneRuntime
from servers.logs import configure_logging
from tool_modes.code import CodeRunner, SandboxLimits

KEEPALIVE_S = 5.0
TOLERANCE_S = 0.5
BUSY = "let x = 0; for (;;) { x += 1 }"


async def measure(seconds: float, scripts: int) -> dict[str, Any]:
    runtime = DroneRuntime(DroneSettings(sim=True))
    # Default limits: each busy script is stopped at its 15 s CPU budget and the next queued one
    # takes its worker, so the workers spin for the whole measurement.
    async with CodeRunner(SandboxLimits()) as runner:
        mounts, notifiers = drone_mounts(runtime, code_runner=runner)
        async with running(runtime, notifiers), Client(mounts["/drone-code"]) as client:
            sim = runtime.sim
            assert sim is not None
            took_off = await client.call_tool("run_code", {"code": "await takeoff({}); 1"})
            assert not took_off.is_error, took_off.content
            started = runtime.clock.now()
            async with anyio.create_task_group() as tg:
                for _ in range(scripts):
                    tg.start_soon(client.call_tool, "run_code", {"code": BUSY})
                await anyio.sleep(seconds)
                tg.cancel_scope.cancel()
            ended = runtime.clock.now()
            heard = [r.t for r in sim.truth.received if r.data == b"command" and started <= r.t <= ended]
            landed = await client.call_tool("run_code", {"code": "await land({}); 1"})
            assert not landed.is_error, landed.content
    intervals = [b - a for a, b in itertools.pairwise(heard)]
    worst = max((abs(i - KEEPALIVE_S) for i in intervals), default=float("inf"))
    return {
        "seconds": seconds,
        "scripts": scripts,
        "keepalives_heard": len(heard),
        "intervals_s": [round(i, 3) for i in intervals],
        "median_interval_s": round(statistics.median(intervals), 3) if intervals else None,
        "worst_deviation_s": round(worst, 3),
        "goal_met": bool(intervals) and worst <= TOLERANCE_S,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.keepalive", description=__doc__)
    parser.add_argument("--seconds", type=float, default=31.0, help="how long the scripts spin")
    parser.add_argument("--scripts", type=int, default=16, help="scripts spinning at once")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging("console", "warning")
    result = anyio.run(measure, args.seconds, args.scripts)
    print(f"keepalive while {result['scripts']} run_code scripts spin for {result['seconds']:g} s")
    print(f"  keepalives the drone heard: {result['keepalives_heard']}")
    print(f"  intervals (s):              {result['intervals_s']}")
    print(f"  worst deviation from 5 s:   {result['worst_deviation_s']} s (goal <= {TOLERANCE_S} s)")
    print(f"  goal: {'met' if result['goal_met'] else 'MISSED'}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
