"""`python -m benchmarks`: run the latency benchmark; exit 1 if a goal is missed."""

from __future__ import annotations

from benchmarks.latency import main

raise SystemExit(main())
