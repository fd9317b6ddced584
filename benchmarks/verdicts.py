"""The issue-9 fault matrix through the MCP server over HTTP, judged by the simulator's truth.

`python -m benchmarks.verdicts` runs, for each fault configuration (loss 0/10/30/50 % each way;
duplicated replies, jittered replies and 3 s bursts of total loss, each on top of 10 % loss),
the simulator as its own process (`python -m drone_sim --loss ... --ground-truth PATH`) and the
drone MCP server as another (`tello-mcp serve drone --drone-host 127.0.0.1 ...`), and flies
`--actions` flight actions through a real `mcp.Client` over streamable HTTP (the configurations
alternate between the two protocol eras): takeoff, short and long moves, rotations, `go_to`,
land. Each tool result is classified by what the server said about it (the
result, and the verdict `drone://flight-log` recorded for it):

* ok: answered;
* executed / did_not_start / unknown: the reply was lost and the state stream decided so;
* other: refused before sending (envelope, stale link), rejected by the drone, timed out, ...

An action judged did_not_start is sent again once, as the verdict says is safe. At the end the
simulator writes what it really executed, and every verdict is checked against it: an
"executed" (or ok) action ran, a "did not start" one did not. Must be zero: double executions
(an action the drone ran more often than it was asked), contradicted verdicts, and auto-lands or
SDK-mode exits caused by silence.

Prints a table, writes JSON (`--json`, default `.cache/bench/verdicts.json`; both processes'
logs and the simulator's truth go next to it), exits 1 if a must-be-zero count is not zero or a
configuration could not run. Every call and every process start and stop is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp_types import CallToolResult, TextContent, TextResourceContents

from benchmarks.rig import free_udp_ports, stop_process
from servers.drone.config import DroneSettings
from servers.logs import configure_logging

DESCRIPTION = "Verdicts of lost-reply flight actions under faults, over HTTP, against ground truth."
REPO: Final = Path(__file__).resolve().parents[1]
LOCAL: Final = "127.0.0.1"
ERAS: Final = ("legacy", "2026-07-28")
FLIGHT_LOG_URI: Final = "drone://flight-log"
STATE_URI: Final = "drone://state"
START_TIMEOUT_S: Final = 60.0
"""Real seconds for a process to print its address (imports dominate on a loaded machine)."""
STOP_TIMEOUT_S: Final = 30.0
"""Real seconds the server gets to land and close after SIGTERM, the simulator to write its truth."""
CALL_TIMEOUT_S: Final = 120.0
"""No tool call may take longer (the longest budget is a lost long move's: ~20 s)."""
CONNECT_TIMEOUT_S: Final = 30.0
SEEN_SINCE_S: Final = 1e-6
MESSAGE_CHARS: Final = 400
NON_IDEMPOTENT: Final = frozenset(
    {"takeoff", "up", "down", "left", "right", "forward", "back", "cw", "ccw", "go"}
)
"""SDK verbs that must run at most once per request (`land` is harmless to repeat)."""
VERDICTS: Final = ("executed", "did_not_start", "unknown")
CLASSES: Final = ("ok", *VERDICTS, "other")
EXTRAS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "dup": ("dup 30%, loss 10%", ("--dup", "0.3", "--loss", "0.1")),
    "jitter": ("jitter, loss 10%", ("--delay", "0.3:0.3", "--loss", "0.1")),
    "burst": ("bursts, loss 10%", ("--burst", "3:20", "--loss", "0.1")),
}
"""The configurations besides pure loss, each on top of 10 % loss so that replies go missing and
verdicts are given under it: 30 % of replies doubled; replies 0-0.6 s late (so they reorder);
every 20 s, 3 s in which nothing gets through either way (commands, replies, state)."""


# ---- the flight plan -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Action:
    tool: str
    arguments: dict[str, Any]
    text: str
    """The SDK text the server sends for it: unique in the plan, so ground truth tells them apart."""


def plan(actions: int) -> list[Action]:
    """`actions` flight actions: takeoff, then cycles of up, turn, short out and back, turn back,
    a long move out and `go_to` back, down; land last. Each cycle's distances and angles differ
    (cycle c: up 20+c, cw 40+c, ...) so that no two actions share an SDK text."""
    if actions < 2:
        raise ValueError("a plan needs at least takeoff and land")
    middle: list[Action] = []
    cycle = 0
    while len(middle) < actions - 2:
        up, turn, short, long = 20 + cycle, 40 + cycle, 30 + cycle, 150 + cycle
        middle += [
            Action("move", {"direction": "up", "distance_cm": up}, f"up {up}"),
            Action("rotate", {"direction": "clockwise", "degrees": turn}, f"cw {turn}"),
            Action("move", {"direction": "forward", "distance_cm": short}, f"forward {short}"),
            Action("move", {"direction": "back", "distance_cm": short}, f"back {short}"),
            Action("rotate", {"direction": "counter-clockwise", "degrees": turn}, f"ccw {turn}"),
            Action("move", {"direction": "forward", "distance_cm": long}, f"forward {long}"),
            Action("go_to", {"x": -long, "y": 0, "z": 0, "speed": 60}, f"go {-long} 0 0 60"),
            Action("move", {"direction": "down", "distance_cm": up}, f"down {up}"),
        ]
        cycle += 1
    return [Action("takeoff", {}, "takeoff"), *middle[: actions - 2], Action("land", {}, "land")]


# ---- results -------------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One tool call and what became of it."""

    tool: str
    arguments: dict[str, Any]
    text: str
    outcome: str
    """ok, executed, did_not_start, unknown or other."""
    detail: str
    """For "other": the flight log's outcome, or "refused" (nothing sent) / the error's first line."""
    evidence: str | None
    text_verdict: str | None
    """The verdict the tool result's text states (it must agree with the flight log's)."""
    seconds: float
    resend: bool = False
    message: str = ""
    """The tool result's text, for anything but ok (shortened)."""


@dataclass
class ConfigResult:
    name: str
    sim_args: list[str]
    era: str
    attempts: list[Attempt] = field(default_factory=list[Attempt])
    seconds: float = 0.0
    error: str | None = None
    """Why the configuration could not run to its end (None: it did)."""
    executed_by_text: dict[str, int] = field(default_factory=dict[str, int])
    """Flight actions the simulator ran (not rejected), by SDK text."""
    events: dict[str, int] = field(default_factory=dict[str, int])
    bursts: int = 0
    checked: dict[str, int] = field(default_factory=dict[str, int])
    contradictions: list[str] = field(default_factory=list[str])
    double_executions: dict[str, int] = field(default_factory=dict[str, int])

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(a.outcome for a in self.attempts)
        return {name: counted[name] for name in CLASSES}

    @property
    def other_errors(self) -> dict[str, int]:
        return dict(Counter(a.detail for a in self.attempts if a.outcome == "other"))

    @property
    def silence_events(self) -> int:
        """Auto-lands and SDK-mode exits: both happen only after 15 s without a command."""
        return self.events.get("auto_land", 0) + self.events.get("sdk_exited", 0)

    @property
    def text_disagreements(self) -> int:
        return sum(
            a.outcome in VERDICTS and a.text_verdict is not None and a.text_verdict != a.outcome
            for a in self.attempts
        )

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.contradictions
            and not self.double_executions
            and self.silence_events == 0
        )

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            actions=len(self.attempts),
            counts=self.counts,
            other_errors=self.other_errors,
            silence_events=self.silence_events,
            text_disagreements=self.text_disagreements,
            ok=self.ok,
        )
        return out


# ---- judging against ground truth ---------------------------------------------------------------


def read_truth(path: Path) -> list[dict[str, Any]]:
    """The simulator's `--ground-truth` file: one JSON object a line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def judge(result: ConfigResult, truth: Sequence[Mapping[str, Any]]) -> None:
    """Fill in what the simulator did and check every attempt's outcome against it, per SDK text
    (each text is one planned action and its re-sends): with E attempts answered ok or judged
    executed and U with an open outcome (unknown, timed out, ...), the drone must have run it at
    least E and at most E + U times, and never more often than it was asked."""
    ran = Counter(
        str(r["text"])
        for r in truth
        if r["kind"] == "executed" and r["flight_action"] and r["outcome"] != "rejected"
    )
    result.executed_by_text = dict(sorted(ran.items()))
    result.events = dict(Counter(str(r["event"]) for r in truth if r["kind"] == "event"))
    result.bursts = sum(r["kind"] == "burst" for r in truth)
    checked: Counter[str] = Counter()
    by_text: dict[str, list[Attempt]] = {}
    for tried in result.attempts:
        by_text.setdefault(tried.text, []).append(tried)
    for text, attempts in by_text.items():
        outcomes = Counter(a.outcome for a in attempts)
        sure = outcomes["ok"] + outcomes["executed"]
        open_ = outcomes["unknown"] + sum(
            a.outcome == "other" and not a.detail.startswith("refused") for a in attempts
        )
        actual = ran[text]
        checked["ok"] += outcomes["ok"]
        checked["executed"] += outcomes["executed"]
        checked["did_not_start"] += outcomes["did_not_start"]
        if actual < sure:
            result.contradictions.append(
                f"{text!r}: {outcomes['executed']} judged executed and {outcomes['ok']} answered ok, "
                f"but the drone ran it {actual} time(s)"
            )
        if actual > sure + open_:
            result.contradictions.append(
                f"{text!r}: ran {actual} time(s), more than the {sure} ok/executed and {open_} open "
                f"outcome(s) allow ({outcomes['did_not_start']} judged did not start)"
            )
        if text.split(" ", 1)[0] in NON_IDEMPOTENT and actual > len(attempts):
            result.double_executions[text] = actual - len(attempts)
    for text, count in ran.items():
        if text not in by_text and text.split(" ", 1)[0] in NON_IDEMPOTENT:
            result.double_executions[text] = count  # never asked for at all
    result.checked = dict(checked)


# ---- processes -------------------------------------------------------------------------------------


@dataclass
class Started:
    process: Process
    lines: list[str]


@contextlib.asynccontextmanager
async def started(command: Sequence[str], log: Path, lines: Callable[[str], int]) -> AsyncGenerator[Started]:
    """Run `command` with stderr to `log`; yield once the first stdout line and the
    `lines(first) - 1` after it are read; stop the process after."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as errors:
        process = await anyio.open_process(
            list(command), cwd=REPO, stdin=subprocess.DEVNULL, stderr=errors, env=env
        )
    try:
        assert process.stdout is not None
        stdout = BufferedByteReceiveStream(process.stdout)
        try:
            with anyio.fail_after(START_TIMEOUT_S):
                read = [(await stdout.receive_until(b"\n", 4096)).decode()]
                read += [
                    (await stdout.receive_until(b"\n", 4096)).decode() for _ in range(lines(read[0]) - 1)
                ]
        except (anyio.IncompleteRead, anyio.EndOfStream, TimeoutError):
            tail = (await anyio.Path(log).read_text(errors="replace"))[-1500:]
            raise RuntimeError(f"{command[2]} did not start: {tail.strip() or 'no output'}") from None
        yield Started(process, read)
    finally:
        await stop_process(process, STOP_TIMEOUT_S)


def sim_command(
    port_file: Path, state_port: int, time_scale: float, seed: int, faults: Sequence[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "drone_sim",
        *("--host", LOCAL, "--port", "0", "--state-port", str(state_port), "--no-video"),
        *("--speedup", f"{time_scale:g}", "--seed", str(seed), "--ground-truth", str(port_file)),
        *faults,
    ]


def server_command(drone_port: int, state_port: int, video_port: int, time_scale: float) -> list[str]:
    scale = ["--time-scale", f"{time_scale:g}"] if time_scale != 1.0 else []
    return [
        sys.executable,
        "-m",
        "servers.cli",
        "serve",
        "drone",
        *("--host", LOCAL, "--port", "0", "--log-level", "warning", "--log-format", "json"),
        *("--drone-host", LOCAL, "--drone-port", str(drone_port), "--bind-host", LOCAL),
        *("--state-port", str(state_port), "--video-port", str(video_port)),
        # A generous envelope: a lost or unknown action leaves the server's idea of where the
        # drone is less certain, and refusals are not what this measures.
        *("--max-height-cm", "1000", "--max-distance-cm", "2000"),
        *scale,
    ]


_SIM_LINE = re.compile(r"udp://[\d.]+:(\d+) ")
_BANNER = re.compile(r": (\d+) MCP endpoints")
_DRONE_URL = re.compile(r"^  (http://\S+/drone)  ", re.MULTILINE)


def server_accepts_time_scale() -> bool:
    """Whether `tello-mcp serve` runs on a scaled clock with an external drone (the simulator in
    its own process); some builds allow `--time-scale` only with the embedded simulator."""
    try:
        DroneSettings(time_scale=2.0)
    except ValueError:
        return False
    return True


def sim_port(announcement: str) -> int:
    port = _SIM_LINE.search(announcement)
    if port is None:
        raise RuntimeError(f"not a drone_sim announcement: {announcement!r}")
    return int(port.group(1))


def drone_url(banner: Sequence[str]) -> str:
    url = _DRONE_URL.search("\n".join(banner))
    if url is None:
        raise RuntimeError(f"no /drone endpoint in {banner!r}")
    return url.group(1)


def _banner_lines(header: str) -> int:
    count = _BANNER.search(header)
    if count is None:
        raise RuntimeError(f"not a tello-mcp banner: {header!r}")
    return 1 + int(count.group(1))


# ---- flying -----------------------------------------------------------------------------------------


_NUMBERS = re.compile(r"\d+(\.\d+)?")
_WRAPPING = re.compile(r"^(Error: \w+: )?Error executing tool \S+: ")


def _text(result: CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


def _json_resource(contents: Sequence[object]) -> Any:
    for content in contents:
        if isinstance(content, TextResourceContents):
            return json.loads(content.text)
    raise RuntimeError("resource without text")


def text_verdict(text: str) -> str | None:
    """The verdict an error result's wording states (`OutcomeUnknown`'s text)."""
    if "Verdict: executed" in text:
        return "executed"
    if "Verdict: did not start" in text or "did not start:" in text:
        return "did_not_start"
    if "outcome unknown" in text.lower():
        return "unknown"
    return None


async def flight_log(client: Client) -> list[dict[str, Any]]:
    return list(_json_resource((await client.read_resource(FLIGHT_LOG_URI)).contents))


async def wait_connected(client: Client, within: float = CONNECT_TIMEOUT_S) -> None:
    with anyio.fail_after(within):
        while True:
            state = _json_resource((await client.read_resource(STATE_URI)).contents)
            if state.get("freshness", {}).get("link") == "connected":
                return
            await anyio.sleep(0.2)


async def attempt(client: Client, action: Action, *, resend: bool = False) -> Attempt:
    """Call the action's tool; classify the result by the flight log's entry for its SDK text."""
    before = await flight_log(client)
    mark = max((float(e["at_s"]) for e in before), default=-math.inf)
    began = time.monotonic()
    with anyio.fail_after(CALL_TIMEOUT_S):
        result = await client.call_tool(action.tool, dict(action.arguments))
    seconds = round(time.monotonic() - began, 2)
    entries = [e for e in await flight_log(client) if float(e["at_s"]) > mark + SEEN_SINCE_S]
    entry = next((e for e in reversed(entries) if e["command"] == action.text), None)
    text = _text(result)
    said = text_verdict(text) if result.is_error else None
    verdict = None if entry is None else entry.get("verdict")
    evidence = None if entry is None else entry.get("evidence")
    if not result.is_error:
        outcome, detail = (
            "ok",
            "ok" if entry is not None and entry["outcome"] == "ok" else "ok (no log entry)",
        )
    elif verdict in VERDICTS:
        outcome, detail = str(verdict), str(entry["outcome"] if entry is not None else "")
    elif entry is None:
        first = _WRAPPING.sub("", text.strip().splitlines()[0] if text.strip() else "(no text)")
        outcome, detail = "other", "refused: " + _NUMBERS.sub("N", first.removeprefix("refused: "))[:80]
    else:
        outcome, detail = "other", str(entry["outcome"])
    message = "" if outcome == "ok" else text[:MESSAGE_CHARS]
    return Attempt(
        action.tool,
        dict(action.arguments),
        action.text,
        outcome,
        detail,
        evidence,
        said,
        seconds,
        resend,
        message,
    )


async def fly(client: Client, actions: Sequence[Action], result: ConfigResult) -> None:
    """The plan, an action at a time; a move or turn judged did_not_start is sent again once. A
    takeoff that did not leave the drone flying is tried again (at most three times) so that the
    moves have a drone in the air; land is repeated (it is harmless to) until the drone is down,
    so that the server's own landing at shutdown never adds an execution nobody asked for."""
    for action in actions:
        tries = {"takeoff": 3, "land": 5}.get(action.tool, 1)
        for n in range(tries):
            done = await attempt(client, action, resend=n > 0)
            result.attempts.append(done)
            if done.outcome in ("ok", "executed"):
                break
            if done.outcome == "did_not_start" and tries == 1:
                result.attempts.append(await attempt(client, action, resend=True))
                break
            if action.tool == "takeoff" and await flying(client):
                break
            if action.tool == "land" and not await flying(client):
                break


async def flying(client: Client) -> bool:
    state = _json_resource((await client.read_resource(STATE_URI)).contents)
    return state.get("flight") not in (None, "landed")


async def run_config(
    name: str, faults: Sequence[str], *, actions: int, time_scale: float, seed: int, era: str, logs: Path
) -> ConfigResult:
    """One configuration: simulator and server as processes, the plan over HTTP, the truth judged."""
    result = ConfigResult(name, list(faults), era)
    truth_path = logs / f"{name}.truth.jsonl"
    truth_path.unlink(missing_ok=True)
    state_port, video_port = free_udp_ports(2)
    began = time.monotonic()
    try:
        async with started(
            sim_command(truth_path, state_port, time_scale, seed, faults),
            logs / f"{name}.sim.log",
            lambda _: 1,
        ) as sim:
            command = server_command(sim_port(sim.lines[0]), state_port, video_port, time_scale)
            async with (
                started(command, logs / f"{name}.server.log", _banner_lines) as server,
                Client(drone_url(server.lines), mode=era) as client,
            ):
                await wait_connected(client)
                with anyio.fail_after(CALL_TIMEOUT_S * (actions + 8)):
                    await fly(client, plan(actions), result)
            # The server is stopped first (landing a drone still in the air), then the simulator,
            # which writes its truth as it exits.
    except Exception as exc:  # reported per configuration: the matrix goes on
        result.error = f"{type(exc).__name__}: {exc}"[:500]
    result.seconds = round(time.monotonic() - began, 1)
    if truth_path.exists():
        judge(result, read_truth(truth_path))
    elif result.error is None:
        result.error = "the simulator wrote no ground truth"
    return result


def configurations(losses: Sequence[float], extras: Sequence[str]) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = [(f"loss {loss:.0%}", ["--loss", f"{loss:g}"]) for loss in losses]
    out += [(EXTRAS[key][0], [str(arg) for arg in EXTRAS[key][1]]) for key in extras]
    return out


# ---- the table ---------------------------------------------------------------------------------------


def render(
    results: Sequence[ConfigResult], write: Callable[[str], object] = print, *, width: int = 20
) -> None:
    """One row per configuration: outcomes, checks against ground truth, the must-be-zero counts."""
    write(
        f"{'faults':<{width}}{'actions':>8}{'ok':>5}{'executed':>10}{'not started':>13}{'unknown':>9}"
        f"{'other':>7}{'checked':>9}{'contra':>8}{'double':>8}{'silence':>9}{'s':>7}  verdict"
    )
    for r in results:
        c = r.counts
        checked = sum(r.checked.values())
        write(
            f"{r.name:<{width}}{len(r.attempts):>8}{c['ok']:>5}{c['executed']:>10}{c['did_not_start']:>13}"
            f"{c['unknown']:>9}{c['other']:>7}{checked:>9}{len(r.contradictions):>8}"
            f"{sum(r.double_executions.values()):>8}{r.silence_events:>9}{r.seconds:>7.0f}  "
            f"{'OK' if r.ok else 'BROKEN'}"
        )
    for r in results:
        if r.error:
            write(f"  {r.name}: did not finish: {r.error}")
        for line in r.contradictions:
            write(f"  {r.name}: contradicted: {line}")
        for text, extra in r.double_executions.items():
            write(f"  {r.name}: executed {extra} time(s) too often: {text!r}")
        if r.silence_events:
            write(f"  {r.name}: silence: {r.events}")
        if r.other_errors:
            write(f"  {r.name}: other: {r.other_errors}")
        if r.text_disagreements:
            write(
                f"  {r.name}: {r.text_disagreements} tool result(s) state another verdict than the flight log"
            )
    write(
        "checked: ok/executed/did-not-start outcomes compared with the simulator's truth; contra: "
        "contradicted; double: actions run more often than asked; silence: auto-lands and SDK exits"
    )


# ---- main -------------------------------------------------------------------------------------------


def _losses(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated probabilities, got {text!r}") from None
    if not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"loss rates must be in [0, 1], got {text!r}")
    return values


def _extras(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXTRAS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault configuration(s) {unknown}: choose from {sorted(EXTRAS)}"
        )
    return names


async def run(
    configs: Sequence[tuple[str, list[str]]], *, actions: int, time_scale: float, seed: int, logs: Path
) -> list[ConfigResult]:
    results: list[ConfigResult] = []
    for n, (name, faults) in enumerate(configs):
        safe = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        results.append(
            await run_config(
                safe,
                faults,
                actions=actions,
                time_scale=time_scale,
                seed=seed + n,
                era=ERAS[n % 2],
                logs=logs,
            )
        )
        results[-1].name = name
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.verdicts", description=DESCRIPTION)
    parser.add_argument(
        "--actions", type=int, default=24, help="flight actions per configuration (default 24)"
    )
    parser.add_argument(
        "--loss",
        type=_losses,
        default=[0.0, 0.1, 0.3, 0.5],
        help="loss rates each way (default 0,0.1,0.3,0.5)",
    )
    parser.add_argument(
        "--faults",
        type=_extras,
        default=list(EXTRAS),
        help=f"other configurations, comma-separated (default {','.join(EXTRAS)}; empty: none)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per real second, both processes (default 1)",
    )
    parser.add_argument(
        "--seed", type=int, default=9, help="fault seed of the first configuration (default 9)"
    )
    parser.add_argument(
        "--json", type=Path, default=REPO / ".cache" / "bench" / "verdicts.json", help="where to write JSON"
    )
    args = parser.parse_args(argv)
    if not 2 <= args.actions <= 500:
        parser.error("--actions must be in [2, 500]")
    if not 0 < args.time_scale <= 100:
        parser.error("--time-scale must be in (0, 100]")
    if args.time_scale != 1.0 and not server_accepts_time_scale():
        parser.error("this tello-mcp runs --time-scale only with its embedded simulator: use 1")
    configs = configurations(args.loss, args.faults)
    if not configs:
        parser.error("no configuration to run")
    configure_logging("console", logging.ERROR)
    path: Path = args.json
    logs = path.parent / f"{path.stem}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    began = datetime.now(UTC)
    results = anyio.run(
        lambda: run(configs, actions=args.actions, time_scale=args.time_scale, seed=args.seed, logs=logs)
    )
    write = print
    write(
        f"verdicts over HTTP, {began:%Y-%m-%d %H:%M} UTC, {args.actions} actions per configuration, "
        f"time scale {args.time_scale:g}, simulator and server in their own processes"
    )
    render(results, write)
    report = {
        "date": began.isoformat(timespec="seconds"),
        "options": {
            "actions": args.actions,
            "loss": args.loss,
            "faults": args.faults,
            "time_scale": args.time_scale,
            "seed": args.seed,
        },
        "logs": str(logs),
        "configurations": [r.as_json() for r in results],
        "ok": all(r.ok for r in results),
    }
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
