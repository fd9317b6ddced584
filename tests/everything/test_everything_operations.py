"""Progress, cancellation and logging with levels - in memory and over HTTP, in both eras."""

from __future__ import annotations

import random
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, get_args

import anyio
import mcp_types as types
import pytest
import structlog
from mcp.shared.exceptions import MCPDeprecationWarning

from tests.everything.harness import TRANSPORTS, WAIT, call, connect, mode_of, texts

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("transport", TRANSPORTS)]

LEVELS: tuple[types.LoggingLevel, ...] = get_args(types.LoggingLevel)


async def test_long_running_operation_reports_each_step(transport: str, everything_url: str) -> None:
    steps = random.randint(3, 8)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connect(transport, everything_url) as client:
        with anyio.fail_after(WAIT):
            result = await client.call_tool(
                "trigger-long-running-operation",
                {"duration": 0.02, "steps": steps},
                progress_callback=on_progress,
            )
        too_long = await client.call_tool("trigger-long-running-operation", {"duration": 10_000})
    assert not result.is_error, texts(result)
    assert [(p, t) for p, t, _ in seen] == [(float(i), float(steps)) for i in range(1, steps + 1)]
    assert seen[-1][2] == f"step {steps} of {steps}"
    assert f"Steps: {steps}" in texts(result)[0]
    assert too_long.is_error
    assert "capped" in texts(too_long)[0]


@contextmanager
def watching(event_name: str) -> Iterator[anyio.Event]:
    """An event set when the server logs `event_name` (structlog, captured for the block)."""
    seen = anyio.Event()

    def spot(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if event.get("event") == event_name:
            seen.set()
        return event

    with structlog.testing.capture_logs(processors=[spot]):
        yield seen


async def test_cancelling_the_call_stops_the_operation_on_the_server(
    transport: str, everything_url: str
) -> None:
    started = anyio.Event()
    finished = False

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    with watching("long_running_cancelled") as server_cancelled:
        async with connect(transport, everything_url) as client:
            async with anyio.create_task_group() as tg:

                async def run() -> None:
                    nonlocal finished
                    await client.call_tool(
                        "trigger-long-running-operation",
                        {"duration": 60, "steps": 600},
                        progress_callback=on_progress,
                    )
                    finished = True

                tg.start_soon(run)
                with anyio.fail_after(WAIT):
                    await started.wait()
                tg.cancel_scope.cancel()
            with anyio.fail_after(WAIT):
                await server_cancelled.wait()
            # The connection is still usable after a cancelled call.
            assert texts(await call(client, "echo", {"message": "still here"})) == ["Echo: still here"]
    assert not finished


async def _log_levels_received(
    transport: str, url: str, level: types.LoggingLevel | None
) -> tuple[list[str], Any]:
    received: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        received.append(params.level)

    modern = mode_of(transport) == "2026-07-28"
    options: dict[str, Any] = {"logging_callback": on_log}
    if modern and level is not None:
        options["log_level"] = level
    async with connect(transport, url, **options) as client:
        if not modern and level is not None:
            with pytest.warns(MCPDeprecationWarning):
                await client.set_logging_level(level)
        result = await call(client, "trigger-log-messages")
    assert result.structured_content is not None
    return received, result.structured_content["sent"]


async def test_log_messages_respect_the_clients_level(transport: str, everything_url: str) -> None:
    level = random.choice(LEVELS[1:-1])
    received, sent = await _log_levels_received(transport, everything_url, level)
    expected = list(LEVELS[LEVELS.index(level) :])
    assert sent == expected
    assert received == expected


async def test_log_messages_without_a_level(transport: str, everything_url: str) -> None:
    received, sent = await _log_levels_received(transport, everything_url, None)
    # Handshake era: everything until the client sets a level. 2026-07-28: nothing unless it opts in.
    expected = [] if mode_of(transport) == "2026-07-28" else list(LEVELS)
    assert sent == expected
    assert received == expected
