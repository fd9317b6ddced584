"""`python -m benchmarks`: the drone-read latency benchmark, then (unless `--quick`) MCP
throughput against the reference server; exit 1 if a goal is missed."""

from __future__ import annotations

import sys

from benchmarks import latency, throughput

args = sys.argv[1:]
status = latency.main(args)
if "--quick" not in args:
    status = max(status, throughput.main(["--profile"]))
raise SystemExit(status)
