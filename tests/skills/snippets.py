"""The drone skill's text per mode and its checked examples, and running them against the simulator.

A mode's text is `skills/drone-operations/modes/<mode>.md`. Its examples are fenced blocks:

* ```` ```json tool-calls ```` — a JSON list of `{"tool": ..., "arguments": {...}}` calls on
  that mode's path, optionally with `"expect_error": "<text>"`: that call must come back
  `isError` with the text in its message, or `"outcome": "any"`: it may succeed or fail (a
  flight action whose reply the suite loses); every other call must succeed.
* ```` ```js run_code ```` — one `run_code` script, run as written; it must succeed.

After the fence's kind come attributes, `key="value"`: `flies` (the flight commands the drone
executes, in order, `|`-separated; repeat it to allow alternatives) and `faults` (space
separated: run the block once per fault, see `inject`). Every block flies a fresh, landed,
simulated drone and must end on the ground. Judgement is by the simulator's ground truth.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent

from drone_sim import DroneSimulator, GroundTruth
from servers.drone.app import STANDARD_PATH, drone_mounts, running
from servers.drone.runtime import DroneRuntime
from tests.drone_server.harness import wait_connected
from tests.skills.sandbox_clock import ClockHold, clock_hold
from tests.support.virtual import virtual_runtime
from tool_modes.code import CodeRunner
from tool_modes.modes import MODES, Mode

SKILL_DIR: Final = Path(__file__).resolve().parents[2] / "skills" / "drone-operations"
SKILL_URI: Final = "skill://drone-operations/SKILL.md"
CODE_MODES: Final = frozenset({"code", "codesearch"})
KINDS: Final = ("json tool-calls", "js run_code")
FAULTS: Final = ("lose-command", "lose-reply")

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def path_of(mode: str) -> str:
    return STANDARD_PATH if mode == "standard" else f"{STANDARD_PATH}-{mode}"


def mode_file(mode: str) -> Path:
    return SKILL_DIR / "modes" / f"{mode}.md"


def mode_text(mode: str) -> str:
    return mode_file(mode).read_text("utf-8")


@dataclass(frozen=True)
class Snippet:
    mode: str
    index: int
    kind: str
    body: str
    flies: tuple[tuple[str, ...], ...]
    faults: tuple[str, ...] = ()

    @property
    def calls(self) -> list[dict[str, Any]]:
        assert self.kind == "json tool-calls"
        calls: list[dict[str, Any]] = json.loads(self.body)
        return calls


def fences(text: str) -> list[tuple[str, str]]:
    """Every fenced block of `text`: (info string, body)."""
    return [(m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)]


def snippets(mode: str, text: str | None = None) -> list[Snippet]:
    """The checked examples of `mode`'s text (fences of another kind are not examples)."""
    out: list[Snippet] = []
    for info, body in fences(mode_text(mode) if text is None else text):
        kind = next((k for k in KINDS if info == k or info.startswith(k + " ")), None)
        if kind is None:
            continue
        flies: list[tuple[str, ...]] = []
        faults: tuple[str, ...] = ()
        for word in shlex.split(info[len(kind) :]):
            key, sep, value = word.partition("=")
            assert sep, f"{mode}: attribute {word!r} is not key=value"
            if key == "flies":
                flies.append(tuple(value.split("|")) if value else ())
            elif key == "faults":
                faults = tuple(value.split())
            else:
                raise AssertionError(f"{mode}: unknown attribute {key!r}")
        assert flies, f"{mode}: block {len(out) + 1} says nothing of what the drone flies"
        out.append(Snippet(mode, len(out) + 1, kind, body, tuple(flies), faults))
    return out


def runs() -> list[tuple[Snippet, str | None]]:
    """Every (snippet, fault) run of every mode: each block clean, or once per fault it names."""
    return [(s, fault) for mode in MODES for s in snippets(mode) for fault in (s.faults or (None,))]


# ---- the drone behind one mode path, on virtual time ----


@dataclass
class ModeDrone:
    mode: str
    client: Client
    runtime: DroneRuntime
    hold: ClockHold
    injected: list[str] = field(default_factory=list[str])

    @property
    def sim(self) -> DroneSimulator:
        sim = self.runtime.sim
        assert sim is not None, "runtime not started"
        return sim

    @property
    def truth(self) -> GroundTruth:
        return self.sim.truth

    def flown(self) -> tuple[str, ...]:
        return tuple(record.text for record in self.truth.executed_actions())

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        if self.mode not in CODE_MODES:
            return await self.client.call_tool(tool, arguments)
        with self.hold.hold():  # the sandbox computes in no virtual time
            return await self.client.call_tool(tool, arguments)


@contextlib.asynccontextmanager
async def _started(runner: CodeRunner | None, hold: ClockHold) -> AsyncGenerator[None]:
    if runner is None:
        yield
        return
    with hold.hold():
        await runner.__aenter__()
    try:
        yield
    finally:
        with hold.hold():
            await runner.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def mode_drone(mode: Mode, era: str) -> AsyncGenerator[ModeDrone]:
    """A client (era `era`) on `mode`'s path of `drone_mounts`, over a fresh virtual runtime;
    the test must be marked `virtual_time`."""
    runtime = virtual_runtime()
    async with clock_hold() as hold:
        runner = CodeRunner(workers=1) if mode in CODE_MODES else None
        async with _started(runner, hold):
            mounts, notifiers = drone_mounts(runtime, modes=("standard", mode), code_runner=runner)
            hold.watch(mounts[STANDARD_PATH])
            async with running(runtime, notifiers):
                await wait_connected(runtime)
                async with Client(mounts[path_of(mode)], mode=era) as client:
                    yield ModeDrone(mode, client, runtime, hold)


def servers_of(runtime: DroneRuntime, runner: CodeRunner) -> dict[str, MCPServer[Any]]:
    """Every mode path (not started: for listing tools, prompts and resources)."""
    mounts, _ = drone_mounts(runtime, code_runner=runner)
    return mounts


# ---- faults ----


def inject(drone: ModeDrone, fault: str) -> None:
    """`lose-command:<prefix>`: the first command datagram starting with `prefix` is lost (the
    drone never hears it). `lose-reply:<prefix>`: the drone runs that command, but its reply
    is lost. Either happens once; `drone.injected` records that it did."""
    kind, _, prefix = fault.partition(":")
    assert kind in FAULTS, fault
    assert prefix, fault
    sim = drone.sim
    armed = [True]

    def lossy(original: Callable[..., None], matches: Callable[[Any], bool]) -> Callable[..., None]:
        def wrapped(item: Any, *rest: Any) -> None:
            if not (armed[0] and matches(item)):
                original(item, *rest)
                return
            armed[0] = False
            drone.injected.append(fault)
            sim.faults.loss = 1.0
            try:
                original(item, *rest)
            finally:
                sim.faults.loss = 0.0

        return wrapped

    if kind == "lose-command":
        original = sim._on_datagram  # pyright: ignore[reportPrivateUsage]
        sim._on_datagram = lossy(original, lambda data: bytes(data).startswith(prefix.encode()))  # pyright: ignore[reportPrivateUsage]
    else:
        original = sim._send_reply  # pyright: ignore[reportPrivateUsage]
        sim._send_reply = lossy(  # pyright: ignore[reportPrivateUsage]
            original, lambda reply: drone.truth.record(reply.seq).text.startswith(prefix)
        )


# ---- results ----


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))
