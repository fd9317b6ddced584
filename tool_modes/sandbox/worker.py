"""The sandbox worker process: runs one QuickJS script at a time for `tool_modes.sandbox.pool`.

Started as ``python -I worker.py READ_FD WRITE_FD ADDRESS_SPACE_BYTES NICE`` and run as a plain
script, so it imports only the standard library and ``_quickjs``, the C extension of
`quickjs-ng` (the ``quickjs`` wrapper module starts an executor thread at import, which a
process that only ever runs one context at a time on its main thread does not need).

Wire format, both ways: a 4-byte big-endian length, then that many bytes of UTF-8 JSON. The
conversation is strictly alternating, so neither side ever needs to read and write at once:

    server -> {"op": "run", "code", "tools": [[js_name, tool_name], ...], "limits": {...}}
    worker -> {"op": "calls", "calls": [[id, tool_name, arguments], ...]}   (script is blocked)
    server -> {"op": "settle", "results": [[id, ok, json_or_message], ...]} | {"op": "abort"}
    ...
    worker -> {"op": "done", "result": json_text | null, "logs", "error", "limit", "unsent", ...}

A run gets a fresh context (its own QuickJS runtime, so its own heap cap) and drops it at the
end: nothing survives from one run to the next. User code is first rewritten by a long-lived
parser context (acorn, see parser.js) that never executes it. Every entry into the run's
context (eval, a call, one pending job) gets the CPU time the run has left as QuickJS's
interrupt limit, and the process's soft RLIMIT_CPU is moved to just past the run's budget
as a backstop for native code that never polls the interrupt (a huge sort, say): SIGXCPU
then kills the worker and the server reports the limit. Memory beyond the heap cap is bounded
by RLIMIT_AS.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import resource
import signal
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol, cast

HERE: Final = Path(__file__).resolve().parent
HEADER: Final = struct.Struct(">I")
MAX_FRAME: Final = 256 * 1024 * 1024
PARSER_MEMORY: Final = 256 * 1024 * 1024
DESCRIBE_CPU_S: Final = 0.5
"""CPU allowed for turning an uncaught value into text (its getters or toString may loop)."""
DESCRIBE_HEADROOM: Final = 1024 * 1024
MAX_LOG_LINES: Final = 10_000
"""Log lines a run keeps (then a truncation note). The server handles each line on its event
loop (sanitising, measuring, cutting to the output cap): 300,000 one-character lines, well
inside the character cap, held the loop 140 ms; 10,000 lines take a few milliseconds."""
"""Heap granted beyond the cap to describe an out-of-memory error or serialise the result."""


class JSContext(Protocol):
    def eval(self, source: str, /) -> object: ...
    def set_memory_limit(self, limit: int, /) -> None: ...
    def set_max_stack_size(self, limit: int, /) -> None: ...
    def set_time_limit(self, limit: float, /) -> None: ...
    def execute_pending_job(self) -> bool: ...
    def memory(self) -> dict[str, int]: ...


JSFunction = Callable[..., object]

_quickjs = importlib.import_module("_quickjs")
new_context = cast(Callable[[], JSContext], _quickjs.Context)
JSException = cast(type[Exception], _quickjs.JSException)
StackOverflow = cast(type[Exception], _quickjs.StackOverflow)


class RunError(Exception):
    """Ends a run: `limit` names the limit hit ("" for an error of the script itself)."""

    def __init__(self, message: str, limit: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


class Aborted(Exception):
    """The server gave up on the run (its tool-await budget ran out, or it is shutting down)."""


# ---- framing ----------------------------------------------------------------------------------


class Channel:
    """Blocking framed JSON over two pipe descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    def send(self, message: dict[str, object]) -> None:
        body = json.dumps(message, separators=(",", ":")).encode()
        data = memoryview(HEADER.pack(len(body)) + body)
        while data:
            data = data[os.write(self.write_fd, data) :]

    def _read_exactly(self, size: int) -> bytes | None:
        chunks: list[bytes] = []
        while size:
            chunk = os.read(self.read_fd, min(size, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None once the server has closed the pipe."""
        header = self._read_exactly(HEADER.size)
        if header is None:
            return None
        (size,) = HEADER.unpack(header)
        if size > MAX_FRAME:
            raise SystemExit("frame too large")
        body = self._read_exactly(size)
        if body is None:
            return None
        message = json.loads(body)
        if not isinstance(message, dict):
            raise SystemExit("malformed frame")
        return cast(dict[str, Any], message)


# ---- the engine -------------------------------------------------------------------------------


class Engine:
    """What a worker keeps between runs: the prelude source and the parser context."""

    def __init__(self) -> None:
        self.prelude = (HERE / "prelude.js").read_text()
        self._parser_source = (HERE / "acorn.js").read_text() + "\n;\n" + (HERE / "parser.js").read_text()
        self._parser: tuple[JSContext, JSFunction] | None = None
        self._ensure_parser()

    def _ensure_parser(self) -> tuple[JSContext, JSFunction]:
        if self._parser is None:
            context = new_context()
            context.set_memory_limit(PARSER_MEMORY)
            rewrite = cast(JSFunction, context.eval(self._parser_source))
            self._parser = (context, rewrite)
        return self._parser

    def rewrite(self, code: str, cpu_left: float) -> str:
        """`code` as the source of an async function whose result is its last expression."""
        context, rewrite = self._ensure_parser()
        context.set_time_limit(max(cpu_left, 0.001))
        try:
            source = rewrite(code)
        except StackOverflow as exc:
            self._parser = None
            raise RunError("the code is nested too deeply to parse", "stack") from exc
        except JSException as exc:
            text = str(exc)
            if text.startswith("SyntaxError: Not enough stack space"):
                raise RunError("the code is nested too deeply to parse", "stack") from exc
            if text.startswith("SyntaxError"):
                raise RunError(text.splitlines()[0] + " (line:column)") from exc
            self._parser = None
            if "interrupted" in text:
                raise RunError("CPU time ran out while parsing the code", "cpu") from exc
            raise RunError(f"the code could not be parsed: {text.splitlines()[0]}", "memory") from exc
        finally:
            context.set_time_limit(-1)
        if not isinstance(source, str):
            raise RunError("the code could not be parsed")
        return source


class Run:
    """One script from `run` to `done`."""

    def __init__(self, engine: Engine, channel: Channel, message: dict[str, Any]) -> None:
        self.engine = engine
        self.channel = channel
        self.code = str(message["code"])
        self.tools = cast(list[list[str]], message["tools"])
        limits = cast(dict[str, Any], message["limits"])
        self.exec_s = float(limits["exec_s"])
        self.memory_bytes = int(limits["memory_bytes"])
        self.stack_bytes = int(limits["stack_bytes"])
        self.max_tool_calls = int(limits["max_tool_calls"])
        self.max_output_bytes = int(limits["max_output_bytes"])
        self.max_code_bytes = int(limits["max_code_bytes"])
        self.cpu_start = time.process_time()
        self.context: JSContext | None = None
        self.control: JSFunction | None = None
        self.outstanding: set[int] = set()
        self.heap_bytes = 0

    # -- CPU accounting

    def cpu_used(self) -> float:
        return time.process_time() - self.cpu_start

    def cpu_left(self) -> float:
        left = self.exec_s - self.cpu_used()
        if left <= 0:
            raise RunError(f"script CPU time limit exceeded ({self.exec_s:g} s of execution)", "cpu")
        return left

    def enter(self, fn: JSFunction, *args: object) -> object:
        """Call into the run's context with the CPU it has left, mapping engine limits to errors."""
        context = self.context
        assert context is not None
        context.set_time_limit(self.cpu_left())
        try:
            return fn(*args)
        except StackOverflow as exc:
            raise RunError(
                f"stack limit exceeded ({self.stack_bytes // 1024} KiB): {first_line(exc)}", "stack"
            ) from exc
        except JSException as exc:
            raise self.classify(str(exc)) from exc
        finally:
            context.set_time_limit(-1)

    def classify(self, text: str) -> RunError:
        head = first_line(text)
        if head.startswith("InternalError: interrupted"):
            return RunError(f"script CPU time limit exceeded ({self.exec_s:g} s of execution)", "cpu")
        if head.startswith("InternalError: out of memory") or head.startswith(
            "InternalError: string too long"
        ):
            return RunError(
                f"memory limit exceeded ({self.memory_bytes // (1024 * 1024)} MiB): {head}", "memory"
            )
        if head.startswith("RangeError: Maximum call stack size exceeded"):
            return RunError(f"stack limit exceeded ({self.stack_bytes // 1024} KiB): {head}", "stack")
        return RunError(text.rstrip())

    def check_call_limit(self) -> None:
        assert self.control is not None
        if self.control("limit") == "tool_calls":
            raise RunError(f"tool call limit exceeded ({self.max_tool_calls} calls per run)", "tool_calls")

    # -- the run

    def execute(self) -> dict[str, object]:
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        cpu_now = resource.getrusage(resource.RUSAGE_SELF)
        ceiling = int(cpu_now.ru_utime + cpu_now.ru_stime + self.exec_s) + 2
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CPU, (ceiling if hard < 0 else min(ceiling, hard), hard))
        done: dict[str, object] = {"op": "done", "result": None, "logs": [], "error": None, "limit": None}
        try:
            done["result"] = self.script()
        except RunError as exc:
            done["error"], done["limit"] = exc.message, exc.limit or None
        except Aborted:
            done["aborted"] = True
        except Exception as exc:  # the engine surprised us: fail this run, keep the worker
            done["error"] = f"internal sandbox error: {type(exc).__name__}: {first_line(exc)}"
        done["logs"] = self.collect_logs()
        done["unsent"] = self.collect_unsent()
        done["cpu_ms"] = round(self.cpu_used() * 1e3, 3)
        done["heap_bytes"] = self.heap_bytes
        self.control = None
        self.context = None
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        return done

    def script(self) -> str:
        if len(self.code.encode()) > self.max_code_bytes:
            raise RunError(f"code size limit exceeded ({self.max_code_bytes} bytes)", "code_size")
        source = self.engine.rewrite(self.code, self.cpu_left())
        context = new_context()
        context.set_memory_limit(self.memory_bytes)
        context.set_max_stack_size(self.stack_bytes)
        self.context = context
        config = json.dumps(
            {
                "tools": self.tools,
                "maxCalls": self.max_tool_calls,
                "maxArgChars": self.max_output_bytes,
                "maxLogChars": self.max_output_bytes,
                "maxLogLines": MAX_LOG_LINES,
            }
        )
        setup = cast(JSFunction, self.enter(context.eval, self.engine.prelude))
        control = cast(JSFunction, self.enter(setup, config))
        self.control = control
        main = self.enter(context.eval, source)
        self.enter(control, "start", main)
        while True:
            while self.enter(context.execute_pending_job):
                pass
            self.check_call_limit()
            state = control("state")
            if state != 0:
                break
            calls = self.drain()
            if not calls and not self.outstanding:
                raise RunError(
                    "the script is awaiting a promise that can never settle (no tool call is pending)",
                    "never_settles",
                )
            self.channel.send({"op": "calls", "calls": calls})
            self.apply_settlements()
        self.heap_bytes = context.memory().get("malloc_size", 0)
        context.set_memory_limit(self.memory_bytes + DESCRIBE_HEADROOM)
        if state == 2:
            raise RunError(self.describe_error())
        text = self.enter(control, "result")
        if not isinstance(text, str):
            raise RunError("the script's result could not be serialised")
        if len(text.encode()) > self.max_output_bytes:
            raise RunError(
                f"output size limit exceeded ({self.max_output_bytes} bytes of JSON result)", "output"
            )
        return text

    def drain(self) -> list[object]:
        assert self.control is not None
        calls = json.loads(cast(str, self.control("drain")))
        for _id, _name, _args in calls:
            self.outstanding.add(int(_id))
        return cast(list[object], calls)

    def apply_settlements(self) -> None:
        message = self.channel.receive()
        if message is None:
            raise SystemExit(0)
        if message.get("op") == "abort":
            raise Aborted
        assert self.control is not None
        for call_id, ok, payload in cast(list[list[Any]], message["results"]):
            self.outstanding.discard(int(call_id))
            self.enter(self.control, "settle", int(call_id), bool(ok), str(payload))

    def describe_error(self) -> str:
        context, control = self.context, self.control
        assert context is not None
        assert control is not None
        context.set_time_limit(DESCRIBE_CPU_S)
        try:
            text = control("error")
        except StackOverflow:
            text = "uncaught value (describing it overflowed the stack)"
        except JSException as exc:
            text = f"uncaught value (describing it failed: {first_line(exc)})"
        finally:
            context.set_time_limit(-1)
        text = tidy_stack(str(text))
        limited = self.classify(text)
        if limited.limit:
            raise limited
        return text[: self.max_output_bytes]

    def collect_logs(self) -> list[str]:
        if self.context is None or self.control is None:
            return []
        self.context.set_memory_limit(self.memory_bytes + 2 * DESCRIBE_HEADROOM + 2 * self.max_output_bytes)
        self.context.set_time_limit(DESCRIBE_CPU_S)
        try:
            logs = json.loads(cast(str, self.control("logs")))
        except Exception:  # a broken context cannot take the logs away from the error report
            return ["[logs lost: the sandbox could not read them back]"]
        finally:
            self.context.set_time_limit(-1)
        return [str(line) for line in cast(list[object], logs)]

    def collect_unsent(self) -> list[object]:
        if self.control is None:
            return []
        try:
            return self.drain()
        except Exception:
            return []


def tidy_stack(text: str) -> str:
    """Drop the prelude's own frames (and a ToolError's whole stack, which is all prelude)."""
    lines = text.rstrip().splitlines()
    if lines and lines[0].startswith("ToolError: "):
        return text.rstrip()
    return "\n".join(line for line in lines if not line.lstrip().startswith(("at control (", "at setup (")))


def first_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else ""


# ---- process set-up ---------------------------------------------------------------------------


def confine(address_space: int, nice: int) -> None:
    """Rlimits and parent-death signal: this process only computes, and dies with the server."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    for limit, value in (
        (resource.RLIMIT_AS, address_space),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_NOFILE, 64),
    ):
        with contextlib.suppress(ValueError, OSError):
            _soft, hard = resource.getrlimit(limit)
            resource.setrlimit(limit, (value if hard < 0 else min(value, hard), hard))
    with contextlib.suppress(OSError):
        os.nice(nice)


def main(argv: list[str]) -> int:
    read_fd, write_fd, address_space, nice = (int(arg) for arg in argv[1:5])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    confine(address_space, nice)
    channel = Channel(read_fd, write_fd)
    engine = Engine()
    channel.send({"op": "ready", "pid": os.getpid()})
    while True:
        message = channel.receive()
        if message is None:
            return 0
        if message.get("op") == "run":
            channel.send(Run(engine, channel, message).execute())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
