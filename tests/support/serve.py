"""`tello-mcp serve ...` as a real process, for tests: started, its banner read, stopped.

The banner is one header line saying how many lines follow (`... : N MCP endpoints and M more
routes; ...`), then one line per endpoint and route (`  URL  NAME[, MODE] (detail)`). Teardown
always ends the process: SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from benchmarks.rig import stop_process

START_TIMEOUT = 60.0
"""Real seconds for a cold start on a loaded machine (imports dominate)."""
STOP_TIMEOUT = 20.0

_HEADER = re.compile(r": (\d+) MCP endpoints?(?: and (\d+) more routes?)?")
_ENDPOINT = re.compile(r"^  (http://[^ ]+/[a-z-]+)  ([a-z]+)")


@dataclass
class Served:
    process: Process
    banner: str
    stderr: Path
    endpoints: dict[str, str] = field(default_factory=dict[str, str])
    """URL -> server name, in banner order."""

    def url(self, path: str) -> str:
        """The endpoint serving `path` (e.g. "/drone")."""
        [url] = [u for u in self.endpoints if u.endswith(path) and u.rsplit("/", 1)[1] == path.strip("/")]
        return url


async def stop(process: Process) -> None:
    """End `process` for sure: SIGTERM, a bounded wait, then SIGKILL."""
    await stop_process(process, STOP_TIMEOUT)


@contextlib.asynccontextmanager
async def serving(
    command: Sequence[str], stderr: Path, *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> AsyncGenerator[Served]:
    """Run `command` (a `tello-mcp serve ...` line), yield once its banner is read, stop it after.
    `env`: the whole environment of the process (default: this one's)."""
    with stderr.open("wb") as errors:
        process = await anyio.open_process(
            list(command),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stderr=errors,
            env=None if env is None else dict(env),
        )
    try:
        assert process.stdout is not None
        stdout = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(START_TIMEOUT):
            header = (await stdout.receive_until(b"\n", 4096)).decode()
            count = _HEADER.search(header)
            assert count is not None, f"{header!r} (stderr in {stderr})"
            follow = int(count.group(1)) + int(count.group(2) or 0)
            lines = [(await stdout.receive_until(b"\n", 4096)).decode() for _ in range(follow)]
        endpoints = {m.group(1): m.group(2) for line in lines if (m := _ENDPOINT.match(line))}
        yield Served(process, "\n".join([header, *lines]), stderr, endpoints)
    finally:
        await stop(process)
