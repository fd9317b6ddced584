"""Code mode: run an agent's JavaScript against any MCP tool set, in sandbox worker processes.

Design (bounded, thread-free):

* `CodeRunner` owns a `WorkerPool` of pre-started worker processes (``sandbox/worker.py``),
  each running QuickJS (`quickjs-ng`) with RLIMIT_AS, a per-run RLIMIT_CPU backstop and a
  lower scheduling priority. The engine never runs in the server process: a busy or crashed
  script cannot stall the event loop that keeps a drone link alive, and a QuickJS memory-safety
  bug stays inside a process that holds nothing.
* A run leases one worker and talks to it over two pipes in strict alternation (see the
  worker's docstring). The worker runs the script until every JavaScript job is done; if the
  script then waits on tool calls it sends them, and blocks. The server performs them here
  with anyio (each in the run's task group, so the inner server sees ordinary calls), and as
  soon as at least one has finished sends the outcomes back; the worker settles the promises
  and runs on.
* Two budgets: the script's CPU time is counted and enforced inside the worker (QuickJS
  interrupts); the time the script is blocked on tool calls is counted here against
  `tool_wait_s`. When it runs out the worker is told to abort, the calls still in flight are
  cancelled, and nothing else is called: the run never lands or stops anything by itself.
* Any worker that does not end a run in step (SIGKILL, crash, silence past the watchdog, or a
  caller cancelled mid-run) is killed and replaced in the background; the run that lost it
  gets a clear error and the next run gets a fresh worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self, cast

import anyio
import structlog
from anyio.abc import TaskGroup
from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent, Tool
from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode

from servers import metrics
from tool_modes.bounds import bound_run, json_size, transportable
from tool_modes.sandbox.api import describe_api, js_names
from tool_modes.sandbox.limits import LIMIT_NAMES, SandboxLimits
from tool_modes.sandbox.pool import Worker, WorkerDied, WorkerPool

__all__ = [
    "LIMIT_NAMES",
    "CodeRunner",
    "RunOutcome",
    "SandboxLimits",
    "ToolCall",
    "TraceEntry",
    "describe_api",
]

log = structlog.get_logger("tool_modes.code")
_tracer = trace.get_tracer("tello_mcp.tool_modes.code")

ToolCall = Callable[[str, dict[str, Any]], Awaitable[CallToolResult]]
Progress = Callable[[float, str], Awaitable[None]]
Outcome = Literal["ok", "error", "cancelled", "not started"]
ABORT_TIMEOUT_S: Final = 5.0


@dataclass
class TraceEntry:
    """One tool call the script made, in the order it made them."""

    name: str
    arguments: dict[str, Any]
    outcome: Outcome = "cancelled"
    ms: float = 0.0
    error: str | None = None
    size: int = field(default=0, init=False)
    """Bytes of `arguments` as JSON, measured once when the call is made."""

    def __post_init__(self) -> None:
        self.size = json_size(self.arguments)

    def to_json(self, *, with_error: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "arguments": self.arguments,
            "outcome": self.outcome,
            "ms": round(self.ms, 3),
        }
        if self.error is not None and with_error:
            out["error"] = self.error
        return out


@dataclass
class RunOutcome:
    """What a run produced. `error` is None on success, else names the limit or the exception."""

    result: Any = None
    logs: list[str] = field(default_factory=list[str])
    trace: list[TraceEntry] = field(default_factory=list[TraceEntry])
    images: list[ImageContent] = field(default_factory=list[ImageContent])
    error: str | None = None
    limit: str | None = None
    """Key of `LIMIT_NAMES` when a limit ended the run."""
    cpu_ms: float = 0.0
    heap_bytes: int = 0
    wall_ms: float = 0.0
    max_bytes: int = SandboxLimits.max_output_bytes
    """Cap on the JSON of the whole result (result, logs, trace, error); see `to_result`."""

    def _stated_once(self) -> tuple[str | None, int | None]:
        """The run's error as the model reads it, and the trace entry it came from, if any: a
        tool error nobody caught is the failed call's own words (not "ToolError: ..." beside a
        copy in the trace), stated once, in `error`."""
        if self.error is None or not self.error.startswith(_TOOL_ERROR):
            return self.error, None
        said = self.error[len(_TOOL_ERROR) :]
        for i in range(len(self.trace) - 1, -1, -1):
            if self.trace[i].outcome == "error" and self.trace[i].error == said:
                return said, i
        return self.error, None

    def structured(self) -> dict[str, Any]:
        error, source = self._stated_once()
        out: dict[str, Any] = {} if error is None else {"error": error}
        out["result"] = self.result
        out["logs"] = self.logs
        out["trace"] = [entry.to_json(with_error=i != source) for i, entry in enumerate(self.trace)]
        return out

    def to_result(self) -> CallToolResult:
        """The run as a tool result whose JSON fits `max_bytes` and any transport can send:
        cut to the cap with a `truncated` note (`tool_modes.bounds.bound_run`), lone surrogates
        replaced and over-deep values cut, so even a failed run carries its whole trace. The
        text is that JSON, compact, its error (if any) first and only once."""
        whole = self.structured()
        head = transportable({k: v for k, v in whole.items() if k != "trace"})
        bounded = bound_run({**head, "trace": whole["trace"]}, self.max_bytes, [e.size for e in self.trace])
        structured = cast(dict[str, Any], transportable(bounded))
        text = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
        content: list[ContentBlock] = [TextContent(type="text", text=text), *self.images]
        return CallToolResult(content=content, structured_content=structured, is_error=self.error is not None)


_TOOL_ERROR: Final = "ToolError: "
"""How the sandbox names a tool call's rejection that the script did not catch."""


class CodeRunner:
    """Runs scripts in a pool of sandbox worker processes (an async context manager)."""

    def __init__(self, limits: SandboxLimits | None = None, *, workers: int = 2) -> None:
        self.limits = limits or SandboxLimits()
        self._pool = WorkerPool(self.limits, workers)

    async def __aenter__(self) -> Self:
        await self._pool.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._pool.__aexit__(exc_type, exc, tb)

    @property
    def worker_pids(self) -> frozenset[int]:
        """Process ids of the live workers (for operators, benchmarks and the SIGKILL test)."""
        return self._pool.pids

    def describe(self, tools: Sequence[Tool], *, index_only: bool) -> str:
        return describe_api(tools, index_only=index_only, limits=self.limits)

    async def run(
        self,
        code: str,
        tools: Sequence[Tool],
        call: ToolCall,
        *,
        on_progress: Progress | None = None,
    ) -> RunOutcome:
        """Run `code` with `tools` as async globals; `call` performs each tool call."""
        started = time.perf_counter()
        names = js_names(tools)
        run = _Run(self.limits, call, on_progress)
        with _tracer.start_as_current_span("sandbox.run") as span:  # the inner calls are its children
            async with self._pool.lease() as worker:
                outcome = await run.drive(worker, code, [[js, name] for name, js in names.items()])
            _end_run_span(span, outcome)
        outcome.wall_ms = (time.perf_counter() - started) * 1e3
        outcome.max_bytes = self.limits.max_output_bytes
        metrics.observe_run(outcome.error, outcome.limit, outcome.wall_ms / 1e3)
        if outcome.error is not None:
            log.info("run_code_failed", error=outcome.error.splitlines()[0], limit=outcome.limit)
        return outcome


class _Run:
    """The server's half of one run."""

    def __init__(self, limits: SandboxLimits, call: ToolCall, on_progress: Progress | None) -> None:
        self.limits = limits
        self.call = call
        self.on_progress = on_progress
        self.trace: list[TraceEntry] = []
        self.images: list[ImageContent] = []
        self.finished: list[list[object]] = []
        self.wake = anyio.Event()
        self.awaited_s = 0.0
        self.tool_names: frozenset[str] = frozenset()

    async def drive(self, worker: Worker, code: str, tools: list[list[str]]) -> RunOutcome:
        worker.in_step = False
        self.tool_names = frozenset(name for _, name in tools)
        outcome = RunOutcome(error="the run was abandoned")
        async with anyio.create_task_group() as group:
            try:
                outcome = await self._converse(worker, group, code, tools)
            except WorkerDied as exc:
                outcome = RunOutcome(
                    error=f"the sandbox process died mid-run ({await _status(worker, exc)}); "
                    "the run was abandoned"
                )
            group.cancel_scope.cancel()
        outcome.trace = self.trace
        outcome.images = self.images
        return outcome

    async def _converse(
        self, worker: Worker, group: TaskGroup, code: str, tools: list[list[str]]
    ) -> RunOutcome:
        await worker.send({"op": "run", "code": code, "tools": tools, "limits": self.limits.for_worker()})
        while True:
            message: dict[str, Any] = {}
            with anyio.move_on_after(self.limits.watchdog_s()) as silence:
                message = await worker.receive()
            if silence.cancelled_caught:
                worker.kill()
                return RunOutcome(
                    error=f"script CPU time limit exceeded ({self.limits.exec_s:g} s): "
                    "the sandbox stopped answering and was killed",
                    limit="cpu",
                )
            op = message.get("op")
            if op == "done":
                worker.in_step = True
                return self._done(message)
            if op != "calls":
                raise WorkerDied(f"the worker sent an unexpected {op!r} message")
            for call_id, name, arguments in _calls(message):
                if name not in self.tool_names:
                    raise WorkerDied(f"the worker asked for a tool outside the run's set: {name!r}")
                entry = TraceEntry(name, arguments)
                self.trace.append(entry)
                group.start_soon(self._perform, call_id, entry)
                await self._progress(entry)
            if not await self._wait_for_results():
                return await self._abort(worker)
            results, self.finished = self.finished, []
            self.wake = anyio.Event()
            await worker.send({"op": "settle", "results": results})

    async def _wait_for_results(self) -> bool:
        """Block until a call has finished; False once the tool-await budget is spent."""
        if self.finished:
            return True
        left = self.limits.tool_wait_s - self.awaited_s
        began = time.monotonic()
        with anyio.move_on_after(max(left, 0.0)):
            await self.wake.wait()
        self.awaited_s += time.monotonic() - began
        return bool(self.finished)

    async def _abort(self, worker: Worker) -> RunOutcome:
        await worker.send({"op": "abort"})
        logs: list[str] = []
        with anyio.move_on_after(ABORT_TIMEOUT_S):
            message = await worker.receive()
            worker.in_step = message.get("op") == "done"
            logs = _strings(message.get("logs"))
        if not worker.in_step:
            worker.kill()
        return RunOutcome(
            logs=logs,
            error=f"tool-await time limit exceeded ({self.limits.tool_wait_s:g} s awaiting tool calls); "
            "calls still in flight were cancelled and nothing more was called",
            limit="tool_wait",
        )

    def _done(self, message: dict[str, Any]) -> RunOutcome:
        for name, arguments in ((c[1], c[2]) for c in _calls({"calls": message.get("unsent", [])})):
            self.trace.append(TraceEntry(name, arguments, outcome="not started", error="the run had ended"))
        error = message.get("error")
        limit = message.get("limit")
        outcome = RunOutcome(
            logs=_strings(message.get("logs")),
            error=str(error) if error is not None else None,
            limit=str(limit) if limit is not None else None,
            cpu_ms=float(message.get("cpu_ms", 0.0)),
            heap_bytes=int(message.get("heap_bytes", 0)),
        )
        text = message.get("result")
        if outcome.error is None and isinstance(text, str):
            try:
                outcome.result = json.loads(text)
            except (ValueError, RecursionError):
                outcome.error = "the script's result was not valid JSON (or nested too deep to read)"
        return outcome

    async def _progress(self, entry: TraceEntry) -> None:
        if self.on_progress is None:
            return
        n = len(self.trace)
        message = (
            f"tool call {n}: {entry.name} "
            f"({self.awaited_s:.1f} s of {self.limits.tool_wait_s:g} s tool-await budget used)"
        )
        try:
            await self.on_progress(float(n), message)
        except Exception as exc:  # a lost progress notification must not fail the run
            log.warning("run_code_progress_failed", error=str(exc))

    async def _perform(self, call_id: int, entry: TraceEntry) -> None:
        began = time.perf_counter()
        try:
            with _call_span(entry.name):
                result = await self.call(entry.name, entry.arguments)
            ok, payload = _to_script(result, self.images)
        except Exception as exc:
            ok, payload = False, f"{entry.name} failed: {exc}"
            entry.outcome, entry.error = "error", str(exc)
        else:
            entry.outcome = "ok" if ok else "error"
            if not ok:
                entry.error = payload
        finally:
            entry.ms = (time.perf_counter() - began) * 1e3
        self.finished.append([call_id, ok, payload])
        self.wake.set()


def _call_span(name: str) -> AbstractContextManager[Span]:
    """A script's tool call: the tool's name only (its arguments are the caller's data)."""
    return _tracer.start_as_current_span(
        f"execute_tool {name}", attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    )


def _end_run_span(span: Span, outcome: RunOutcome) -> None:
    """Counts and the limit that ended the run, never the script, its logs or its error text."""
    span.set_attributes(
        {
            "sandbox.outcome": "ok" if outcome.error is None else "error",
            "sandbox.tool_calls": len(outcome.trace),
            "sandbox.cpu_ms": outcome.cpu_ms,
        }
    )
    if outcome.limit is not None:
        span.set_attribute("sandbox.limit", outcome.limit)
    if outcome.error is not None:
        span.set_status(StatusCode.ERROR, outcome.limit or "the script failed")


def _calls(message: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """The worker's call list, validated (the worker is not trusted to be well-formed)."""
    out: list[tuple[int, str, dict[str, Any]]] = []
    raw = message.get("calls")
    if not isinstance(raw, list):
        raise WorkerDied("the worker sent a malformed call list")
    for item in cast(list[object], raw):
        if not isinstance(item, list) or len(cast(list[object], item)) != 3:
            raise WorkerDied("the worker sent a malformed call")
        call_id, name, arguments = cast(list[object], item)
        if not isinstance(call_id, int) or not isinstance(name, str) or not isinstance(arguments, dict):
            raise WorkerDied("the worker sent a malformed call")
        out.append((call_id, name, cast(dict[str, Any], arguments)))
    return out


async def _status(worker: Worker, exc: WorkerDied) -> str:
    if str(exc) != "the worker exited":
        return str(exc)
    with anyio.move_on_after(1):
        return await worker.exit_status()
    return "it stopped answering"


def _strings(value: object) -> list[str]:
    return [str(v) for v in cast(list[object], value)] if isinstance(value, list) else []


def _to_script(result: CallToolResult, images: list[ImageContent]) -> tuple[bool, str]:
    """(ok, JSON of the value the promise resolves to) or (False, the error message)."""
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    if result.is_error:
        return False, "\n".join(texts) or "the tool reported an error"
    if result.structured_content is not None:
        # The script gets the structured value; images beside it (a photo and its metadata)
        # still come back to the caller beside the run's result.
        images.extend(block for block in result.content if isinstance(block, ImageContent))
        return True, json.dumps(result.structured_content)
    values: list[object] = []
    for block in result.content:
        if isinstance(block, TextContent):
            values.append(_maybe_json(block.text))
        elif isinstance(block, ImageContent):
            images.append(block)
            values.append({"type": "image", "mimeType": block.mime_type, "image": len(images) - 1})
        else:
            values.append(block.model_dump(mode="json", by_alias=True, exclude_none=True))
    value = values[0] if len(values) == 1 else (values or None)
    return True, json.dumps(value)


def _maybe_json(text: str) -> object:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return cast(object, json.loads(stripped))
        except ValueError:
            pass
    return text
