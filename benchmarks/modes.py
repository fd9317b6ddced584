"""What each tool mode costs an agent: tokens and MCP round trips per drone task.

`python -m benchmarks.modes` replays, for each of four drone tasks, the transcript a competent
agent would produce in each tool mode (Standard `/drone`, Search `/drone-search`, Code
`/drone-code`, CodeSearch `/drone-codesearch`; one runtime per task and mode, served in-process
by `servers.drone.app.drone_mounts` through a real `mcp.Client`) against the embedded
simulator, and prints a table per mode:

- definition tokens: the `tools/list` result as a model sees it (name, description and input
  schema of each tool, as JSON), read once per conversation;
- call tokens: what the model writes to call tools (name and arguments as JSON; a script's
  source in the code modes);
- result tokens: all content the model reads back (text blocks, and each image at Anthropic's
  published rate of width x height / 750 tokens); structured content duplicates the text, so
  it is not counted again;
- round trips: `tools/call` requests, one model turn each (`initialize` and `tools/list` are
  the same in every mode and not counted);
- context tokens: input tokens over the whole task without prompt caching, with one tool call
  per model turn: turn k re-reads the definitions and every call and result before it;
- wall time of the conversation (the simulator runs `TIME_SCALE` times faster than real time,
  so flying takes a tenth of the time it would take a real drone).

Transcripts per mode: Standard calls the drone tools directly; Search looks a tool up with
`get_tool` before its first use (unless an earlier lookup already returned it) and calls it with
`invoke_tool`; Code sends one `run_code` script; CodeSearch looks up the tools whose parameters
or results the script needs, then sends one `run_code` script. Every task is judged on the
simulator's ground truth (the commands the drone executed, its pose, its replies) and on the
answer the agent would give, so a broken transcript fails loudly instead of printing a pretty
table; the exit status is 1 if any task failed. `--quick` runs one task per mode (every task
once); `--json PATH` also writes the measurements.

Tokens are counted with `anthropic-tokenizer` (an offline Claude BPE): absolute figures are
approximate, comparisons between modes are what the table is for.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import anyio
from anthropic_tokenizer import count_tokens
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent, Tool

from drone_sim import GroundTruth
from drone_sim.records import ExecutedCommand
from servers.drone.app import drone_mounts, running
from servers.drone.config import DroneSettings
from servers.drone.core.protocol import LinkStatus
from servers.drone.runtime import DroneRuntime
from servers.logs import configure_logging
from tool_modes.code import CodeRunner
from tool_modes.modes import MODES, Mode

DESCRIPTION = "Tokens, MCP round trips and wall time per drone task in each tool mode."
PATHS: Final[Mapping[Mode, str]] = {
    "standard": "/drone",
    "search": "/drone-search",
    "code": "/drone-code",
    "codesearch": "/drone-codesearch",
}
TIME_SCALE: Final = 10.0
"""Simulated seconds per real second."""
STALE_AFTER_S: Final = 30.0
"""Simulated seconds without state before a reading is stale: wide (3 s of real time), so a
loaded machine's stall cannot turn into a refused command and a failed task. (The tests that
judge transcripts run `measure_one` on virtual time instead, where no stall exists.)"""
CONNECT_TIMEOUT_S: Final = 10.0
CONVERSATION_TIMEOUT_S: Final = 60.0
"""Real seconds one task may take in one mode (the longest, the square, takes ~3 s at 10x)."""

IMAGE_PIXELS_PER_TOKEN: Final = 750
IMAGE_MAX_EDGE: Final = 1568
IMAGE_MAX_PIXELS: Final = 1_150_000
"""Anthropic's vision pricing: an image costs width x height / 750 tokens after being scaled down
to fit within 1568 px on its long edge and about 1.15 megapixels."""

Answer = dict[str, Any]


# ---- tasks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict[str, Any])


@dataclass(frozen=True)
class Lookup:
    """A `get_tool` query an agent in a search mode sends to find `tool`."""

    query: str
    tool: str


@dataclass(frozen=True)
class Evidence:
    """What a task is judged on: the agent's answer, the images it was shown, and what the
    simulated drone actually did."""

    answer: Answer
    images: list[ImageContent]
    truth: GroundTruth

    @property
    def executed(self) -> list[ExecutedCommand]:
        return list(self.truth.executed)

    def flown(self) -> list[str]:
        return [r.text for r in self.truth.executed_actions()]

    def replies_to(self, command: str) -> list[str]:
        return [r.reply for r in self.executed if r.text == command and r.reply is not None]


@dataclass(frozen=True)
class Task:
    key: str
    title: str
    calls: tuple[Call, ...]
    """The drone tool calls, in order (Standard directly, Search through `invoke_tool`)."""
    answer: Callable[[Sequence[Mapping[str, Any]]], Answer]
    """The agent's answer from the structured results of `calls`."""
    lookups: tuple[Lookup, ...]
    """Search: the query for each tool, sent before its first use unless already returned."""
    script: str
    """Code and CodeSearch: the `run_code` script; its result is the agent's answer."""
    script_lookups: tuple[Lookup, ...]
    """CodeSearch: tools whose parameters or results the script needs (the API index in the
    `run_code` description gives only signatures and one line each)."""
    check: Callable[[Evidence], list[str]]
    """Problems with the outcome, judged on ground truth; empty when the task succeeded."""


def _expect_flown(e: Evidence, expected: list[str]) -> list[str]:
    flown = e.flown()
    return [] if flown == expected else [f"the drone flew {flown}, expected {expected}"]


def _check_battery(e: Evidence) -> list[str]:
    problems = _expect_flown(e, ["takeoff"])
    if not e.truth.flying:
        problems.append("the drone is not flying")
    takeoff = next((i for i, r in enumerate(e.executed) if r.text == "takeoff"), len(e.executed))
    before = {
        int(r.reply)
        for r in e.executed[:takeoff]
        if r.text == "battery?" and r.reply is not None and r.reply.isdigit()
    }
    told = e.answer.get("battery_pct")
    if told not in before:
        problems.append(f"answered battery {told!r}; before the takeoff the drone replied {sorted(before)}")
    return problems


SQUARE_SIDE_CM: Final = 100
SQUARE_SIDES: Final = ("forward", "right", "back", "left")
SQUARE_CLOSES_WITHIN_CM: Final = 5.0


def _check_square(e: Evidence) -> list[str]:
    sides = [f"{d} {SQUARE_SIDE_CM}" for d in SQUARE_SIDES]
    problems = _expect_flown(e, ["takeoff", *sides, "land"])
    if e.truth.flying:
        problems.append("the drone is still flying")
    pose = e.truth.pose
    if math.hypot(pose.x, pose.y) > SQUARE_CLOSES_WITHIN_CM:
        problems.append(f"the square did not close: landed at x={pose.x:.1f}, y={pose.y:.1f} cm")
    if e.answer.get("flight") != "landed":
        problems.append(f"answered flight state {e.answer.get('flight')!r}, expected 'landed'")
    return problems


def _check_sensors(e: Evidence) -> list[str]:
    problems = _expect_flown(e, [])
    heights = [int(r.removesuffix("dm")) * 10 for r in e.replies_to("height?") if r.endswith("dm")]
    if not heights or e.answer.get("height_cm") != heights[-1]:
        problems.append(f"answered height {e.answer.get('height_cm')!r} cm; the drone replied {heights}")
    temperatures = [
        {"low": float(low), "high": float(high.removesuffix("C"))}
        for low, _, high in (r.partition("~") for r in e.replies_to("temp?"))
    ]
    if not temperatures or e.answer.get("temperature_c") != temperatures[-1]:
        problems.append(
            f"answered temperature {e.answer.get('temperature_c')!r}; the drone replied {temperatures}"
        )
    return problems


def _check_photo(e: Evidence) -> list[str]:
    problems = _expect_flown(e, ["takeoff", "cw 90", "land"])
    if e.truth.flying:
        problems.append("the drone is still flying")
    if abs(e.truth.pose.yaw - 90.0) > 1.0:
        problems.append(f"the drone faces {e.truth.pose.yaw:.0f} deg, expected 90")
    jpegs = [i for i in e.images if i.mime_type == "image/jpeg"]
    if len(jpegs) != 1:
        problems.append(f"the model was shown {len(jpegs)} JPEG images, expected 1")
    else:
        size = jpeg_size(base64.b64decode(jpegs[0].data))
        told = (e.answer.get("width"), e.answer.get("height"))
        if told != size:
            problems.append(f"answered a {told} photo; the JPEG shown is {size}")
    return problems


TASKS: Final[tuple[Task, ...]] = (
    Task(
        key="battery",
        title="check battery then take off",
        calls=(Call("get_battery"), Call("takeoff")),
        answer=lambda r: {"battery_pct": r[0].get("percent")},
        lookups=(Lookup("battery level", "get_battery"), Lookup("take off", "takeoff")),
        script="""\
const battery = await get_battery({});
if (battery.percent < 20) throw new Error(`battery at ${battery.percent}%: not taking off`);
await takeoff({});
({battery_pct: battery.percent})""",
        script_lookups=(Lookup("battery level", "get_battery"),),
        check=_check_battery,
    ),
    Task(
        key="square",
        title="fly a 1 m square and land",
        calls=(
            Call("takeoff"),
            *(Call("move", {"direction": d, "distance_cm": SQUARE_SIDE_CM}) for d in SQUARE_SIDES),
            Call("land"),
        ),
        answer=lambda r: {"flight": r[-1].get("state", {}).get("flight")},
        lookups=(Lookup("take off", "takeoff"), Lookup("fly forward", "move"), Lookup("land", "land")),
        script=f"""\
await takeoff({{}});
for (const direction of ["forward", "right", "back", "left"]) {{
  await move({{direction, distance_cm: {SQUARE_SIDE_CM}}});
}}
const landed = await land({{}});
({{flight: landed.state.flight}})""",
        script_lookups=(Lookup("fly forward", "move"), Lookup("land", "land")),
        check=_check_square,
    ),
    Task(
        key="sensors",
        title="report height and temperature",
        calls=(Call("get_sensor", {"sensor": "height"}), Call("get_sensor", {"sensor": "temperature"})),
        answer=lambda r: {"height_cm": r[0].get("value"), "temperature_c": r[1].get("value")},
        lookups=(Lookup("height temperature", "get_sensor"),),
        script="""\
const height = await get_sensor({sensor: "height"});
const temperature = await get_sensor({sensor: "temperature"});
({height_cm: height.value, temperature_c: temperature.value})""",
        script_lookups=(Lookup("height temperature", "get_sensor"),),
        check=_check_sensors,
    ),
    Task(
        key="photo",
        title="take a photo after a 90° turn",
        calls=(
            Call("takeoff"),
            Call("rotate", {"direction": "clockwise", "degrees": 90}),
            Call("capture_photo"),
            Call("land"),
        ),
        answer=lambda r: {"width": r[2].get("width"), "height": r[2].get("height")},
        lookups=(
            Lookup("take off", "takeoff"),
            Lookup("turn 90 degrees", "rotate"),
            Lookup("take a photo", "capture_photo"),
            Lookup("land", "land"),
        ),
        script="""\
await takeoff({});
await rotate({direction: "clockwise", degrees: 90});
const photo = await capture_photo({});
await land({});
({width: photo.width, height: photo.height})""",
        script_lookups=(Lookup("turn 90 degrees", "rotate"), Lookup("take a photo", "capture_photo")),
        check=_check_photo,
    ),
)
TASKS_BY_KEY: Final = {t.key: t for t in TASKS}
QUICK: Final[tuple[tuple[str, Mode], ...]] = (
    ("photo", "standard"),
    ("square", "search"),
    ("battery", "code"),
    ("sensors", "codesearch"),
)
"""One task per mode, every task once (`--quick`)."""


# ---- counting ----------------------------------------------------------------------------


def tokens(text: str) -> int:
    return int(count_tokens(text))


def definition_tokens(tools: Sequence[Tool]) -> int:
    """The tool list as a model is given it: name, description and input schema of each tool."""
    seen = [
        {"name": t.name, "description": t.description or "", "input_schema": t.input_schema} for t in tools
    ]
    return tokens(json.dumps(seen, ensure_ascii=False))


def call_tokens(tool: str, arguments: Mapping[str, Any]) -> int:
    """What the model writes to call a tool."""
    return tokens(json.dumps({"name": tool, "input": arguments}, ensure_ascii=False))


def result_tokens(result: CallToolResult) -> int:
    """Everything in a tool result the model reads: text blocks, images, other blocks as JSON."""
    total = 0
    for block in result.content:
        if isinstance(block, TextContent):
            total += tokens(block.text)
        elif isinstance(block, ImageContent):
            total += image_tokens(block)
        else:
            total += tokens(block.model_dump_json(by_alias=True, exclude_none=True))
    if not result.content and result.structured_content is not None:
        total += tokens(json.dumps(result.structured_content, ensure_ascii=False))
    return total


def image_tokens(image: ImageContent) -> int:
    width, height = jpeg_size(base64.b64decode(image.data))
    scale = min(1.0, IMAGE_MAX_EDGE / max(width, height), math.sqrt(IMAGE_MAX_PIXELS / (width * height)))
    return math.ceil(width * height * scale * scale / IMAGE_PIXELS_PER_TOKEN)


_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xD9)})


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError(f"corrupt JPEG: no marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
        elif marker in _STANDALONE_MARKERS:
            i += 2
        elif marker in _SOF_MARKERS:
            if i + 9 > len(data):
                break
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise ValueError("JPEG without a start-of-frame segment")


# ---- one conversation --------------------------------------------------------------------


@dataclass
class Turn:
    tool: str
    call_tokens: int
    result_tokens: int


class TranscriptFailed(Exception):
    """The agent could not go on (a lookup missed, a tool failed)."""


class Conversation:
    """An agent's side of one task: every call it makes, and what the model writes and reads."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.definition_tokens = 0
        self.turns: list[Turn] = []
        self.images: list[ImageContent] = []

    async def list_tools(self) -> list[Tool]:
        tools = (await self.client.list_tools()).tools
        self.definition_tokens = definition_tokens(tools)
        return tools

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        result = await self.client.call_tool(tool, arguments)
        self.turns.append(Turn(tool, call_tokens(tool, arguments), result_tokens(result)))
        self.images.extend(b for b in result.content if isinstance(b, ImageContent))
        if result.is_error:
            raise TranscriptFailed(f"{tool} {json.dumps(arguments)} failed: {_text(result.content)[:300]}")
        return result

    def context_tokens(self) -> int:
        """Input tokens over the task, no caching: with n calls the model takes n + 1 turns, each
        re-reading the definitions and every earlier call and result."""
        n = len(self.turns)
        earlier = sum((n - i) * (t.call_tokens + t.result_tokens) for i, t in enumerate(self.turns))
        return (n + 1) * self.definition_tokens + earlier


def _text(blocks: Sequence[ContentBlock]) -> str:
    return "\n".join(b.text for b in blocks if isinstance(b, TextContent))


def _structured(result: CallToolResult) -> dict[str, Any]:
    if result.structured_content is not None:
        return result.structured_content
    try:
        data: object = json.loads(_text(result.content))
    except ValueError:
        return {}
    return cast(dict[str, Any], data) if isinstance(data, dict) else {}


async def _look_up(conversation: Conversation, lookup: Lookup, seen: set[str]) -> None:
    if lookup.tool in seen:
        return
    found = _structured(await conversation.call("get_tool", {"query": lookup.query}))
    names = [str(m.get("name")) for m in cast(list[dict[str, Any]], found.get("matches", []))]
    seen.update(names)
    if lookup.tool not in seen:
        raise TranscriptFailed(f"get_tool({lookup.query!r}) returned {names}, not {lookup.tool}")


def _lookup_for(task: Task, tool: str) -> Lookup:
    for lookup in task.lookups:
        if lookup.tool == tool:
            return lookup
    raise TranscriptFailed(f"the {task.key} transcript has no get_tool query for {tool}")


async def converse(conversation: Conversation, task: Task, mode: Mode) -> Answer:
    """Play the agent's transcript for `task` in `mode`; return the answer it would give."""
    tools = {t.name for t in await conversation.list_tools()}
    seen: set[str] = set()
    if mode in ("standard", "search"):
        results: list[dict[str, Any]] = []
        for call in task.calls:
            if mode == "standard":
                result = await conversation.call(call.tool, call.arguments)
            else:
                await _look_up(conversation, _lookup_for(task, call.tool), seen)
                result = await conversation.call(
                    "invoke_tool", {"name": call.tool, "arguments": call.arguments}
                )
            results.append(_structured(result))
        return task.answer(results)
    if mode == "codesearch":
        for lookup in task.script_lookups:
            await _look_up(conversation, lookup, seen)
    if "run_code" not in tools:
        raise TranscriptFailed(f"no run_code among {sorted(tools)}")
    result = _structured(await conversation.call("run_code", {"code": task.script}))
    answer = result.get("result")
    if not isinstance(answer, dict):
        raise TranscriptFailed(f"the script returned {answer!r}, not an answer object")
    return cast(Answer, answer)


# ---- measuring ---------------------------------------------------------------------------


@dataclass
class Measurement:
    task: str
    mode: Mode
    definition_tokens: int
    call_tokens: int
    result_tokens: int
    round_trips: int
    context_tokens: int
    wall_s: float
    answer: Answer
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def settings() -> DroneSettings:
    return DroneSettings(sim=True, time_scale=TIME_SCALE, stale_after_s=STALE_AFTER_S)


async def measure_one(
    task: Task, mode: Mode, runner: CodeRunner | None, *, runtime: DroneRuntime | None = None
) -> Measurement:
    """`task` in `mode` on a fresh simulated drone (every mode server over its runtime; the code
    modes only with a started `runner`). `runtime`: a fresh, unstarted one to use instead of
    the benchmark's (tests pass one on virtual time)."""
    if runner is None and mode in ("code", "codesearch"):
        raise ValueError(f"{mode} mode needs a started CodeRunner")
    runtime = runtime or DroneRuntime(settings())
    mounts, notifiers = drone_mounts(runtime, code_runner=runner)
    server: MCPServer[Any] = mounts[PATHS[mode]]
    async with running(runtime, notifiers):
        with anyio.fail_after(CONNECT_TIMEOUT_S):
            while runtime.link.status() is not LinkStatus.CONNECTED:
                await runtime.link.wait_changed()
        sim = runtime.sim
        assert sim is not None, "the embedded simulator starts with the runtime"
        answer: Answer = {}
        problems: list[str] = []
        async with Client(server) as client:
            conversation = Conversation(client)
            started = time.perf_counter()
            try:
                with anyio.fail_after(CONVERSATION_TIMEOUT_S):
                    answer = await converse(conversation, task, mode)
            except TranscriptFailed as exc:
                problems.append(str(exc))
            wall_s = time.perf_counter() - started
        problems.extend(task.check(Evidence(answer, conversation.images, sim.truth)))
    return Measurement(
        task=task.key,
        mode=mode,
        definition_tokens=conversation.definition_tokens,
        call_tokens=sum(t.call_tokens for t in conversation.turns),
        result_tokens=sum(t.result_tokens for t in conversation.turns),
        round_trips=len(conversation.turns),
        context_tokens=conversation.context_tokens(),
        wall_s=wall_s,
        answer=answer,
        problems=problems,
    )


def full_plan() -> list[tuple[str, Mode]]:
    return [(task.key, mode) for mode in MODES for task in TASKS]


async def run_benchmark(
    plan: Sequence[tuple[str, Mode]], *, runner: CodeRunner | None = None
) -> list[Measurement]:
    """Measure each (task key, mode) of `plan` in turn, one after the other."""
    if runner is None:
        async with CodeRunner(workers=1) as own:
            return await run_benchmark(plan, runner=own)
    return [await measure_one(TASKS_BY_KEY[key], mode, runner) for key, mode in plan]


# ---- reporting ---------------------------------------------------------------------------

COLUMNS: Final = (
    "task",
    "ok",
    "definition tokens",
    "call tokens",
    "result tokens",
    "round trips",
    "context tokens",
    "wall s",
)
SUMMARY_COLUMNS: Final = (
    "mode",
    "tasks ok",
    "definition tokens",
    "call tokens",
    "result tokens",
    "round trips",
    "context tokens",
    "context vs Standard",
    "wall s",
)


def _row(m: Measurement) -> list[str]:
    return [
        TASKS_BY_KEY[m.task].title,
        "yes" if m.ok else "FAILED",
        str(m.definition_tokens),
        str(m.call_tokens),
        str(m.result_tokens),
        str(m.round_trips),
        str(m.context_tokens),
        f"{m.wall_s:.2f}",
    ]


def mode_tables(measurements: Sequence[Measurement]) -> list[tuple[str, list[list[str]]]]:
    """(heading, rows) per mode, in the order the modes were measured; a total row when a mode
    ran more than one task."""
    tables: list[tuple[str, list[list[str]]]] = []
    for mode in _modes_of(measurements):
        ms = [m for m in measurements if m.mode == mode]
        rows = [_row(m) for m in ms]
        if len(ms) > 1:
            rows.append(
                [
                    "total",
                    f"{sum(m.ok for m in ms)}/{len(ms)}",
                    *(str(sum(getattr(m, c) for m in ms)) for c in _SUMMED),
                    f"{sum(m.wall_s for m in ms):.2f}",
                ]
            )
        tables.append((f"{mode} ({PATHS[mode]})", rows))
    return tables


def _modes_of(measurements: Sequence[Measurement]) -> list[Mode]:
    """The modes measured, in order, each once."""
    return list(dict.fromkeys(m.mode for m in measurements))


_SUMMED: Final = ("definition_tokens", "call_tokens", "result_tokens", "round_trips", "context_tokens")


def summary_rows(measurements: Sequence[Measurement]) -> list[list[str]]:
    """Totals per mode over the tasks it ran; context relative to Standard over the same tasks."""
    by_mode = {mode: [m for m in measurements if m.mode == mode] for mode in _modes_of(measurements)}
    standard = {m.task: m.context_tokens for m in by_mode.get("standard", [])}
    rows: list[list[str]] = []
    for mode, ms in by_mode.items():
        shared = [m for m in ms if m.task in standard]
        ratio = (
            f"{sum(m.context_tokens for m in shared) / sum(standard[m.task] for m in shared):.2f}x"
            if shared
            else "n/a"
        )
        rows.append(
            [
                mode,
                f"{sum(m.ok for m in ms)}/{len(ms)}",
                *(str(sum(getattr(m, c) for m in ms)) for c in _SUMMED),
                ratio,
                f"{sum(m.wall_s for m in ms):.2f}",
            ]
        )
    return rows


def markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def plain(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        for cells in [columns, *rows]
    )


def report(measurements: Sequence[Measurement]) -> str:
    """The tables, as plain text and then as Markdown, and the problems of any failed task."""
    parts = [f"Tool modes, per drone task (simulator at {TIME_SCALE:g}x real time)", ""]
    tables = mode_tables(measurements)
    for heading, rows in tables:
        parts += [heading, plain(COLUMNS, rows), ""]
    parts += ["all modes", plain(SUMMARY_COLUMNS, summary_rows(measurements)), ""]
    parts += ["Markdown:", ""]
    for heading, rows in tables:
        parts += [f"**{heading}**", "", markdown(COLUMNS, rows), ""]
    parts += ["**all modes**", "", markdown(SUMMARY_COLUMNS, summary_rows(measurements)), ""]
    for m in measurements:
        parts += [f"FAILED {m.task} in {m.mode}: {problem}" for problem in m.problems]
    return "\n".join(parts).rstrip() + "\n"


def to_json(measurements: Sequence[Measurement]) -> dict[str, Any]:
    return {
        "time_scale": TIME_SCALE,
        "tasks": {t.key: t.title for t in TASKS},
        "paths": dict(PATHS),
        "measurements": [{**asdict(m), "ok": m.ok} for m in measurements],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.modes", description=DESCRIPTION)
    parser.add_argument("--json", type=Path, default=None, help="also write the measurements as JSON here")
    parser.add_argument("--quick", action="store_true", help="one task per mode (proves it runs)")
    args = parser.parse_args(argv)
    configure_logging("console", logging.WARNING)
    plan = list(QUICK) if args.quick else full_plan()
    measurements = anyio.run(run_benchmark, plan)
    sys.stdout.write(report(measurements))
    sys.stdout.flush()
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(measurements), indent=2, ensure_ascii=False) + "\n")
    return 0 if all(m.ok for m in measurements) else 1


if __name__ == "__main__":
    raise SystemExit(main())
