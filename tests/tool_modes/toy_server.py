"""A small MCP server for the tool-mode tests: 12 workshop tools covering every result shape
(text, image, structured, error), progress, elicitation, plus resources, a resource template,
a subscribable resource and prompts.

`python -m tests.tool_modes.toy_server` serves it over stdio (the proxy tests' upstream).
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from servers.resource_updates import ResourceUpdates

COUNTER_URI = "toy://counter"
README_URI = "toy://readme"
README = "The toy workshop: a few tools to exercise every MCP result shape."

# A 1x1 transparent PNG.
PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class Weather(BaseModel):
    city: str
    temperature_c: float
    sky: Literal["clear", "cloudy", "rain"]


class _Confirm(BaseModel):
    confirm: bool = Field(description="true to shred every file")


async def _confirm_shred(confirm: bool, ctx: Context) -> Elicit[_Confirm] | _Confirm:
    if confirm:
        return _Confirm(confirm=True)
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        return _Confirm(confirm=False)
    return Elicit("Really shred every file in the workshop?", _Confirm)


def build_toy_server(name: str = "toy") -> tuple[MCPServer[Any], ResourceUpdates]:
    updates = ResourceUpdates()
    server: MCPServer[Any] = MCPServer(
        name=name, instructions="A toy workshop. Start with echo.", version="1.0", subscriptions=updates.bus
    )
    updates.attach(server)
    counter = {"value": 0}

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def echo(text: Annotated[str, Field(description="what to say back")]) -> str:
        """Say the given text back, unchanged."""
        return text

    @server.tool(structured_output=True)
    async def add_numbers(
        a: Annotated[int, Field(description="first addend")],
        b: Annotated[int, Field(description="second addend")],
    ) -> int:
        """Add two integers and return their sum."""
        return a + b

    @server.tool(structured_output=True)
    async def get_weather(city: Annotated[str, Field(description="city name, e.g. Lisbon")]) -> Weather:
        """Today's weather forecast for a city: temperature and sky."""
        return Weather(city=city, temperature_c=21.5, sky="clear")

    @server.tool()
    async def slow_count(
        ctx: Context, steps: Annotated[int, Field(ge=1, le=50, description="how many steps, 1..50")]
    ) -> str:
        """Count up slowly, one progress notification per step (a long-running job)."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step} of {steps}")
            await anyio.lowlevel.checkpoint()
        return f"counted to {steps}"

    @server.tool(structured_output=False)
    async def draw_pixel() -> CallToolResult:
        """Draw a picture: a tiny PNG image of one pixel."""
        return CallToolResult(
            content=[
                ImageContent(type="image", data=base64.b64encode(PIXEL_PNG).decode(), mime_type="image/png"),
                TextContent(type="text", text="1x1 pixel"),
            ]
        )

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    async def shred_files(
        answer: Annotated[ElicitationResult[_Confirm], Resolve(_confirm_shred)],
        confirm: Annotated[bool, Field(description="must be true to shred")] = False,
    ) -> str:
        """Shred every file in the workshop for good. Asks the user to confirm when it can."""
        if not (answer.action == "accept" and answer.data.confirm):
            raise ToolError("shred_files NOT done: call again with confirm=true if you really mean it")
        return "shredded"

    @server.tool()
    async def always_fails(reason: Annotated[str, Field(description="the error to report")]) -> str:
        """A tool that always fails with the given reason."""
        raise ToolError(f"failed on purpose: {reason}")

    @server.tool()
    async def set_volume(
        level: Annotated[int, Field(ge=0, le=11, description="speaker loudness 0..11")],
        mute: Annotated[bool, Field(description="silence the speaker instead")] = False,
    ) -> str:
        """Set the workshop speaker's volume level."""
        return "muted" if mute else f"volume {level}"

    @server.tool()
    async def convert_temperature(
        value: Annotated[float, Field(description="the temperature to convert")],
        unit: Annotated[Literal["celsius", "fahrenheit"], Field(description="the unit of value")],
    ) -> str:
        """Convert a temperature between Celsius and Fahrenheit degrees."""
        if unit == "celsius":
            return f"{value * 9 / 5 + 32:.1f} F"
        return f"{(value - 32) * 5 / 9:.1f} C"

    @server.tool()
    async def list_files(
        folder: Annotated[str, Field(description="directory path")],
        pattern: Annotated[str | None, Field(description="glob like *.txt")] = None,
    ) -> list[str]:
        """List the files in a workshop folder, optionally filtered by a glob pattern."""
        return [f"{folder}/notes.txt"] if pattern in (None, "*.txt") else []

    @server.tool()
    async def translate_text(
        text: Annotated[str, Field(description="text to translate")],
        target_language: Annotated[str, Field(description="language code such as fr or de")],
    ) -> str:
        """Translate text into another language."""
        return f"[{target_language}] {text}"

    @server.tool()
    async def bump_counter() -> int:
        """Increase the shared counter by one and notify subscribers of toy://counter."""
        counter["value"] += 1
        await updates.publish(COUNTER_URI)
        return counter["value"]

    @server.resource(README_URI, name="readme", mime_type="text/plain")
    def readme() -> str:  # pyright: ignore[reportUnusedFunction]
        return README

    @server.resource(COUNTER_URI, name="counter", mime_type="application/json")
    def counter_value() -> str:  # pyright: ignore[reportUnusedFunction]
        return str(counter["value"])

    @server.resource("toy://notes/{topic}", name="note", mime_type="text/plain")
    def note(topic: str) -> str:  # pyright: ignore[reportUnusedFunction]
        return f"notes about {topic}"

    @server.prompt(title="Greet someone")
    def greet(person: str) -> str:  # pyright: ignore[reportUnusedFunction]
        """Write a greeting."""
        return f"Please greet {person} warmly."

    return server, updates


TOOL_COUNT = 12


if __name__ == "__main__":
    toy, _ = build_toy_server()
    anyio.run(toy.run_stdio_async)
