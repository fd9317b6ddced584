"""An in-test tool table for `CodeRunner` tests: real async tools, recorded calls, gates.

Limits are small so abuse ends fast: 0.5 s of script CPU, 0.5 s awaiting tools, 8 MiB heap.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
from mcp_types import CallToolResult, ImageContent, TextContent, Tool

from tool_modes.code import CodeRunner, SandboxLimits

TEST_LIMITS: Final = SandboxLimits(
    exec_s=0.5,
    tool_wait_s=0.5,
    memory_bytes=8 * 1024 * 1024,
    stack_bytes=128 * 1024,
    max_tool_calls=10,
    max_output_bytes=16 * 1024,
    max_code_bytes=20_000,
    unresponsive_s=20.0,
)
PIXEL_PNG: Final = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2217bc90000000049454e44ae426082"
    )
).decode()

TOOLS: Final = [
    Tool(
        name="add",
        description="Add two numbers.",
        input_schema={
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    ),
    Tool(name="echo", description="Echo text back.", input_schema={"type": "object"}),
    Tool(name="fail", description="Always fails.", input_schema={"type": "object"}),
    Tool(name="photo", description="A 1x1 PNG.", input_schema={"type": "object"}),
    Tool(name="gate", description="Waits until the test opens the gate.", input_schema={"type": "object"}),
    Tool(name="enter", description="Tells the test the script got here.", input_schema={"type": "object"}),
    Tool(name="get-sum", description="A name that is not a JS identifier.", input_schema={"type": "object"}),
]


@dataclass
class ToolTable:
    """`call` for `CodeRunner.run`, recording every call and how many ran at once."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list[tuple[str, dict[str, Any]]])
    finished: list[str] = field(default_factory=list[str])
    cancelled: list[str] = field(default_factory=list[str])
    running: int = 0
    most_at_once: int = 0
    entered: anyio.Event = field(default_factory=anyio.Event)
    gate_open: anyio.Event = field(default_factory=anyio.Event)
    seconds: float = 0.0
    """How long `echo` takes (a slow tool, as a takeoff is)."""

    async def __call__(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        self.calls.append((name, arguments))
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            result = await self._perform(name, arguments)
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(name)
            raise
        finally:
            self.running -= 1
        self.finished.append(name)
        return result

    async def _perform(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        if name == "add":
            total = arguments["a"] + arguments["b"]
            return CallToolResult(
                content=[TextContent(type="text", text=str(total))], structured_content={"sum": total}
            )
        if name in ("echo", "get-sum"):
            if self.seconds:
                await anyio.sleep(self.seconds)
            return CallToolResult(content=[TextContent(type="text", text=str(arguments.get("text", "")))])
        if name == "fail":
            return CallToolResult(content=[TextContent(type="text", text="it broke")], is_error=True)
        if name == "photo":
            return CallToolResult(
                content=[
                    ImageContent(type="image", data=PIXEL_PNG, mime_type="image/png"),
                    TextContent(type="text", text='{"age_s": 0.1}'),
                ]
            )
        if name == "gate":
            self.entered.set()
            await self.gate_open.wait()
            return CallToolResult(content=[TextContent(type="text", text="open")])
        if name == "enter":
            self.entered.set()
            return CallToolResult(content=[TextContent(type="text", text="entered")])
        raise ValueError(f"no tool {name}")


@contextlib.asynccontextmanager
async def code_runner(limits: SandboxLimits = TEST_LIMITS, workers: int = 2) -> AsyncGenerator[CodeRunner]:
    async with CodeRunner(limits, workers=workers) as runner:
        yield runner


async def run_ok(runner: CodeRunner, code: str, table: ToolTable | None = None) -> Any:
    """Run `code`, assert it succeeded, return its result (bounded well above a normal run)."""
    with anyio.fail_after(10):
        outcome = await runner.run(code, TOOLS, table or ToolTable())
    assert outcome.error is None, outcome.error
    return outcome.result
