"""Code modes on virtual time: hold the clock still while the sandbox computes.

A `run_code` script runs in a worker process on the wall clock while the drone flies on the
loop's `MockClock`. That clock jumps to the next deadline whenever every task waits, and a task
waiting on a worker's pipe is waiting: left alone, virtual time would race ahead (and the
runner's own start-up and watchdog deadlines would expire) while the worker merely computes.

`ClockHold` keeps one task runnable (a checkpoint loop) exactly while the sandbox is at work:
while a worker starts or stops, and while a script runs with none of its tool calls in flight.
Once a tool call is in flight the hold lets go, so the drone's own waits (a move, a takeoff)
pass in virtual time as usual. Computing in the sandbox therefore takes no virtual time at all,
which is what a snippet's judgement by ground truth needs: the drone only sees the tool calls.

A hold is bounded in real time (`MAX_HOLD_S` at a stretch): past that the clock is let go for
good (`expired`), so a wedged worker meets the runner's watchdog and the test's own virtual
deadline instead of spinning until the suite's timeout.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer

_Handler = Callable[[ServerRequestContext[Any], Any], Awaitable[Any]]

MAX_HOLD_S = 30.0
"""Real seconds the clock may be held at a stretch (a worker starts or runs a snippet's
JavaScript in well under a second)."""


class ClockHold:
    def __init__(self) -> None:
        self._holds = 0
        self._tool_calls = 0
        self._changed = anyio.Event()
        self.expired = False
        """Set once a hold outlasted `MAX_HOLD_S`: the clock runs freely from then on."""

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    @property
    def holding(self) -> bool:
        return self._holds > 0 and self._tool_calls == 0 and not self.expired

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Virtual time stands still in the block, but while a tool call of `watch` is in flight."""
        self._holds += 1
        self._notify()
        try:
            yield
        finally:
            self._holds -= 1
            self._notify()

    @contextlib.contextmanager
    def tool_call(self) -> Iterator[None]:
        self._tool_calls += 1
        self._notify()
        try:
            yield
        finally:
            self._tool_calls -= 1
            self._notify()

    def watch(self, inner: MCPServer[Any]) -> None:
        """Count `inner`'s tool calls (the drone tools a script calls through the catalog)."""
        low = inner._lowlevel_server  # pyright: ignore[reportPrivateUsage]
        entry = low.get_request_handler("tools/call")
        assert entry is not None, "MCPServer always serves tools/call"
        handler: _Handler = entry.handler

        async def counted(ctx: ServerRequestContext[Any], params: Any) -> Any:
            with self.tool_call():
                return await handler(ctx, params)

        low.add_request_handler("tools/call", entry.params_type, counted)

    async def _run(self) -> None:
        began: float | None = None
        while True:
            changed = self._changed
            if not self.holding:
                began = None
                await changed.wait()
                continue
            began = time.monotonic() if began is None else began
            if time.monotonic() - began > MAX_HOLD_S:
                self.expired = True
                continue
            await anyio.lowlevel.checkpoint()


@contextlib.asynccontextmanager
async def clock_hold() -> AsyncGenerator[ClockHold]:
    hold = ClockHold()
    async with anyio.create_task_group() as tg:
        tg.start_soon(hold._run)  # pyright: ignore[reportPrivateUsage]
        try:
            yield hold
        finally:
            tg.cancel_scope.cancel()
