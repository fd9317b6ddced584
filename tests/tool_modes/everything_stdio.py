"""`python -m tests.tool_modes.everything_stdio`: the everything server over stdio with the
shortened test timings (the proxy tests' upstream; logs on stderr)."""

from __future__ import annotations

import anyio

from servers.everything import EverythingSettings, build_everything_server
from servers.logs import configure_logging

FAST = EverythingSettings(research_stage_s=0.005, long_running_duration_s=0.05)

if __name__ == "__main__":
    configure_logging("json")
    anyio.run(build_everything_server(FAST).run_stdio_async)
