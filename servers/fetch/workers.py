"""Conversion worker processes: decoding and HTML extraction off the event loop, under a deadline.

Why processes: readability + markdownify take about 120 ms a megabyte of HTML (seconds at
the 10 MiB cap) and a thread holding that work could not be stopped at the deadline; a
process can. Each worker runs one `convert` at a time; the loop hands a job to a pool thread
that writes it to a worker's stdin and blocks (without the GIL) on its stdout, so the loop
itself only awaits. When the call's deadline passes, or the call is cancelled, the worker is
killed (SIGKILL) and a fresh one is started for the next job: work past the deadline stops.

The pool is not tied to an event loop (threads and `subprocess`, no loop objects), so one
pool serves every server in the process. Workers start on first use (about 0.3 s: Python,
lxml, readability), stay until killed or the parent exits, and exit by themselves when the
parent goes away (their stdin closes). A worker imports only the conversion modules, not the
MCP stack (`servers.fetch` loads its submodules lazily for that reason).

Frames are length-prefixed: a JSON header and the raw body to the worker, JSON back. Nothing
is unpickled on either side, so a worker compromised by a hostile page cannot run code in
the server through the reply.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import struct
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import anyio

from servers.fetch.convert import Converted, Job, convert

PROCESSES: Final = 2
"""Workers per pool: conversions that run at once; more wait for one (under their deadline)."""
_HEADER: Final = struct.Struct("!II")
_REPLY: Final = struct.Struct("!I")
_ROOT: Final = str(Path(__file__).resolve().parents[2])
_BOOT: Final = f"import sys; sys.path.insert(0, {_ROOT!r}); from servers.fetch.workers import serve; serve()"


class ConversionTimeout(Exception):
    """The deadline passed before the conversion finished; its worker was killed."""


class ConversionFailed(Exception):
    """The worker died or answered nonsense (not a timeout); the message says what happened."""


@dataclass(slots=True, eq=False)
class _Worker:
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls) -> _Worker:
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True
        )
        return cls(process)

    def call(self, job: Job) -> dict[str, Any]:
        header = {k: v for k, v in asdict(job).items() if k != "body"}
        encoded = json.dumps(header).encode()
        stdin, stdout = self._pipes()
        stdin.write(_HEADER.pack(len(encoded), len(job.body)) + encoded)
        stdin.write(job.body)
        stdin.flush()
        (length,) = _REPLY.unpack(_read_exactly(stdout, _REPLY.size))
        reply: dict[str, Any] = json.loads(_read_exactly(stdout, length))
        return reply

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        return stdin, stdout

    def signal(self) -> None:
        """SIGKILL, without waiting; safe from any thread."""
        if self.process.poll() is None:
            self.process.kill()

    def kill(self) -> None:
        """SIGKILL, close the pipes and reap; only from the thread that talks to the worker."""
        self.signal()
        for pipe in self._pipes():
            with contextlib.suppress(OSError):
                pipe.close()
        self.process.wait()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the conversion worker exited")
    return data


@dataclass(slots=True)
class _Call:
    """One conversion, shared by the awaiting task and the thread that talks to the worker."""

    cancelled: bool = False
    worker: _Worker | None = None
    """The worker while it runs this job."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, worker: _Worker) -> bool:
        with self.lock:
            if self.cancelled:
                return False
            self.worker = worker
            return True

    def release(self) -> bool:
        """The job is over; True unless it was cancelled."""
        with self.lock:
            self.worker = None
            return not self.cancelled

    def cancel(self) -> _Worker | None:
        """Stop the job: its worker (if one runs it) gets SIGKILL and is returned for reaping."""
        with self.lock:
            self.cancelled = True
            worker = self.worker
        if worker is not None:
            worker.signal()
        return worker


class ConverterPool:
    """Up to `processes` conversion workers, started on demand; see the module docstring."""

    def __init__(self, processes: int = PROCESSES) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        self._slots = threading.BoundedSemaphore(processes)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self.killed = 0
        """Workers killed at a deadline or a cancellation, over the pool's life."""
        atexit.register(self.close)

    def pids(self) -> list[int]:
        """The process ids of the workers started and not yet reaped."""
        with self._lock:
            return sorted(w.process.pid for w in self._all)

    async def convert(self, job: Job, *, deadline: float) -> Converted:
        """`convert(job)` in a worker; `ConversionTimeout` at `deadline` (the loop's clock).

        A worker still running the job at the deadline, or when the caller is cancelled, is
        killed and reaped before this returns."""
        call = _Call()
        reply: dict[str, Any] | None = None
        finished = False
        with anyio.CancelScope(deadline=deadline):
            try:
                budget = max(0.0, deadline - anyio.current_time())
                reply = await anyio.to_thread.run_sync(self._run, job, call, budget, abandon_on_cancel=True)
                finished = True
            finally:
                if not finished:
                    worker = call.cancel()
                    if worker is not None:
                        with self._lock:
                            self.killed += 1
                        with anyio.CancelScope(shield=True):
                            await anyio.to_thread.run_sync(worker.process.wait)
        if reply is None:
            raise ConversionTimeout
        if "error" in reply:
            raise ConversionFailed(str(reply["error"]))
        return Converted(str(reply["prefix"]), str(reply["text"]))

    def _run(self, job: Job, call: _Call, budget: float) -> dict[str, Any] | None:
        """The worker's reply; None when the job was cancelled or no worker was free in time."""
        if not self._slots.acquire(timeout=budget):
            return None
        try:
            worker = self._take()
            if not call.claim(worker):
                self._put(worker)
                return None
            try:
                reply = worker.call(job)
            except Exception as exc:  # EOF, a broken pipe, a garbled reply: the worker is unusable
                cancelled = not call.release()
                self._replace(worker)
                if cancelled:
                    return None
                return {"error": f"the conversion worker failed: {type(exc).__name__}: {exc}"}
            if call.release():
                self._put(worker)
            else:
                self._replace(worker)
            return reply
        finally:
            self._slots.release()

    def _put(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                self._all.discard(worker)
                worker.kill()
        worker = _Worker.start()
        with self._lock:
            self._all.add(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        """Reap a killed or failed worker and start its successor now, so that the next job
        does not wait for a cold start (about 0.3 s of imports)."""
        worker.kill()
        successor = _Worker.start()
        with self._lock:
            self._all.discard(worker)
            self._all.add(successor)
            self._idle.append(successor)

    def close(self) -> None:
        """Kill every worker (at exit; the pool starts new ones if used again)."""
        with self._lock:
            workers, self._all, self._idle = list(self._all), set(), []
        for worker in workers:
            worker.kill()


_shared: ConverterPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ConverterPool:
    """The process-wide pool the fetch servers use unless given their own."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ConverterPool()
        return _shared


def serve() -> None:
    """The worker's loop: a job from stdin, its reply to stdout, until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Anything the conversion libraries print must not corrupt the replies.
    sys.stdout = sys.stderr
    while True:
        head = stdin.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return
        header_length, body_length = _HEADER.unpack(head)
        header = json.loads(stdin.read(header_length))
        body = stdin.read(body_length)
        try:
            converted = convert(Job(body=body, **header))
            reply: dict[str, Any] = {"prefix": converted.prefix, "text": converted.text}
        except Exception as exc:  # the parent turns it into a tool error
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        encoded = json.dumps(reply).encode()
        stdout.write(_REPLY.pack(len(encoded)) + encoded)
        stdout.flush()
