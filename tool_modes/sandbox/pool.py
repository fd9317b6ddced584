"""Pre-started sandbox worker processes, and the pipes the server talks to them over.

Why processes started with `subprocess.Popen` and raw pipes rather than `anyio.open_process`
or `multiprocessing`: on Python 3.11 asyncio reaps children with a thread per child
(`ThreadedChildWatcher`), and `multiprocessing.Connection` reads block. Here each worker has
two plain pipes set non-blocking on our side and driven with `anyio.wait_readable` /
`wait_writable`, and is reaped through a pidfd that the event loop polls: no thread is added
to the server process, and a worker that dies is noticed as end-of-file on its pipe.

A worker is leased for one run at a time. One that ends the run in step (its `done` message
read) goes back to the pool; any other (killed, crashed, cancelled mid-run, stopped
answering) is killed and a fresh one is started in the background, so one failure costs one
run and never the next.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, cast

import anyio
import structlog
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from servers import metrics
from tool_modes.sandbox.limits import SandboxLimits

log = structlog.get_logger("tool_modes.sandbox")

WORKER_SCRIPT: Final = Path(__file__).resolve().parent / "worker.py"
HEADER: Final = struct.Struct(">I")
MAX_FRAME: Final = 64 * 1024 * 1024
START_TIMEOUT_S: Final = 20.0
RESPAWN_ATTEMPTS: Final = 5


class WorkerDied(Exception):
    """The worker's pipe closed (it crashed or was killed) or it broke the protocol."""


class Worker:
    """One worker process and our ends of its two pipes."""

    def __init__(self, process: subprocess.Popen[bytes], read_fd: int, write_fd: int) -> None:
        self.process = process
        self.pid = process.pid
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._buffer = bytearray()
        self.in_step = True
        """False from sending `run` until its `done` is read: only such a worker can be reused."""
        self.closed = False
        self.runs = 0

    async def send(self, message: dict[str, object]) -> None:
        body = json.dumps(message, separators=(",", ":")).encode()
        data = memoryview(HEADER.pack(len(body)) + body)
        while data:
            if self.closed:
                raise WorkerDied("the worker is gone")
            try:
                written = os.write(self._write_fd, data)
            except BlockingIOError:
                await _wait(anyio.wait_writable, self._write_fd)
                continue
            except OSError as exc:  # EPIPE: the worker is gone
                raise WorkerDied(f"the worker's pipe broke ({exc.strerror})") from exc
            data = data[written:]

    async def receive(self) -> dict[str, Any]:
        while True:
            if len(self._buffer) >= HEADER.size:
                (size,) = HEADER.unpack_from(self._buffer)
                if size > MAX_FRAME:
                    raise WorkerDied(f"the worker sent a {size}-byte frame")
                if len(self._buffer) >= HEADER.size + size:
                    body = bytes(self._buffer[HEADER.size : HEADER.size + size])
                    del self._buffer[: HEADER.size + size]
                    try:
                        message = json.loads(body)
                    except ValueError as exc:
                        raise WorkerDied("the worker sent a malformed frame") from exc
                    if not isinstance(message, dict):
                        raise WorkerDied("the worker sent a malformed frame")
                    return cast(dict[str, Any], message)
            if self.closed:
                raise WorkerDied("the worker is gone")
            await _wait(anyio.wait_readable, self._read_fd)
            try:
                chunk = os.read(self._read_fd, 1 << 16)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise WorkerDied(f"the worker's pipe broke ({exc.strerror})") from exc
            if not chunk:
                raise WorkerDied("the worker exited")
            self._buffer += chunk

    def kill(self) -> None:
        """SIGKILL the process and close our pipe ends (waking any task waiting on them)."""
        self.process.kill()  # a no-op once reaped, so never a recycled pid
        if not self.closed:
            self.closed = True
            for fd in (self._read_fd, self._write_fd):
                anyio.notify_closing(fd)
                os.close(fd)

    async def reap(self) -> int:
        """Wait for the process to exit (after `kill`) and return its exit status."""
        code = self.process.poll()
        if code is not None:
            return code
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            pidfd = -1
        if pidfd >= 0:
            try:
                with anyio.move_on_after(5):
                    await anyio.wait_readable(pidfd)
            finally:
                os.close(pidfd)
        else:  # no pidfd (not Linux): poll, bounded
            for _ in range(500):
                if self.process.poll() is not None:
                    break
                await anyio.sleep(0.01)
        code = self.process.poll()
        return code if code is not None else -signal.SIGKILL

    async def exit_status(self) -> str:
        """How the process ended, in words, for a run that lost its worker."""
        code = await self.reap()
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            return f"killed by {name}" + (" (CPU rlimit)" if name == "SIGXCPU" else "")
        return f"exited with status {code}"


async def _wait(wait: Callable[[int], Awaitable[None]], fd: int) -> None:
    try:
        await wait(fd)
    except anyio.ClosedResourceError as exc:  # `kill` closed it under us (the pool is closing)
        raise WorkerDied("the sandbox pool closed") from exc


def _spawn(limits: SandboxLimits) -> tuple[subprocess.Popen[bytes], int, int]:
    """Fork the worker (no exec wait: Popen returns once the child is running)."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-X",
                "utf8",
                str(WORKER_SCRIPT),
                str(to_child_r),
                str(from_child_w),
                str(limits.worker_address_space_bytes),
                str(limits.worker_nice),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(to_child_r, from_child_w),
            start_new_session=True,
            env={},  # nothing of the server's environment (its secrets) reaches the engine
            cwd="/",
        )
    except BaseException:
        os.close(to_child_w)
        os.close(from_child_r)
        raise
    finally:
        os.close(to_child_r)
        os.close(from_child_w)
    os.set_blocking(from_child_r, False)
    os.set_blocking(to_child_w, False)
    return process, from_child_r, to_child_w


async def start_worker(limits: SandboxLimits) -> Worker:
    """Start one worker and wait for its `ready`."""
    worker = Worker(*_spawn(limits))
    try:
        with anyio.fail_after(START_TIMEOUT_S):
            ready = await worker.receive()
    except BaseException:
        worker.kill()
        with anyio.CancelScope(shield=True):
            await worker.reap()
        raise
    if ready.get("op") != "ready":
        worker.kill()
        raise WorkerDied(f"unexpected first message {ready!r}")
    return worker


class WorkerPool:
    """A fixed number of pre-started workers, leased one run at a time.

    Runs beyond `size` wait for a free worker. Owns a task group for respawning.
    """

    def __init__(self, limits: SandboxLimits, size: int) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one worker")
        self.limits = limits
        self.size = size
        self._workers: set[Worker] = set()
        send, receive = anyio.create_memory_object_stream[Worker](size)
        self._idle_send: MemoryObjectSendStream[Worker] = send
        self._idle_receive: MemoryObjectReceiveStream[Worker] = receive
        self._group: TaskGroup | None = None
        self._closing = False
        self._exit_stack = contextlib.AsyncExitStack()

    @property
    def pids(self) -> frozenset[int]:
        """Live worker processes (busy or idle)."""
        return frozenset(w.pid for w in self._workers if not w.closed)

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            self._group = await stack.enter_async_context(anyio.create_task_group())
            stack.push_async_callback(self._close_all)
            started = await _start_many(self.limits, self.size)
            for worker in started:
                self._workers.add(worker)
                self._idle_send.send_nowait(worker)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._group is not None:
            self._group.cancel_scope.cancel()
        await self._exit_stack.__aexit__(exc_type, exc, tb)

    async def _close_all(self) -> None:
        self._closing = True
        with anyio.CancelScope(shield=True):
            workers = list(self._workers)
            self._workers.clear()
            for worker in workers:
                worker.kill()
            for worker in workers:
                await worker.reap()
            self._idle_send.close()
            self._idle_receive.close()

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncGenerator[Worker]:
        """A worker for one run; it returns to the pool only if the run ended in step."""
        worker = await self._idle_receive.receive()
        try:
            yield worker
        finally:
            if worker.in_step and not worker.closed:
                worker.runs += 1
                self._idle_send.send_nowait(worker)
            else:
                self._retire(worker)

    def _retire(self, worker: Worker) -> None:
        worker.kill()
        if self._closing or self._group is None:
            return  # `_close_all` reaps it
        self._workers.discard(worker)
        self._group.start_soon(self._replace, worker)

    async def _replace(self, worker: Worker) -> None:
        status = await worker.exit_status()
        log.info("sandbox_worker_replaced", pid=worker.pid, status=status)
        for attempt in range(1, RESPAWN_ATTEMPTS + 1):
            try:
                fresh = await start_worker(self.limits)
            except (OSError, WorkerDied, TimeoutError) as exc:
                log.warning("sandbox_worker_start_failed", attempt=attempt, error=str(exc))
                await anyio.sleep(0.2 * attempt)
                continue
            self._workers.add(fresh)
            self._idle_send.send_nowait(fresh)
            metrics.count_worker_restart()
            return


async def _start_many(limits: SandboxLimits, count: int) -> list[Worker]:
    started: list[Worker] = []
    try:
        async with anyio.create_task_group() as group:

            async def one() -> None:
                started.append(await start_worker(limits))

            for _ in range(count):
                group.start_soon(one)
    except BaseException:
        for worker in started:
            worker.kill()
        with anyio.CancelScope(shield=True):
            for worker in started:
                await worker.reap()
        raise
    return started
