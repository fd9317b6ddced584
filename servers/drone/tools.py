"""The drone tools as MCP tools, one function per group (reads, flight, camera, RMTT): schemas,
descriptions for a model, annotations, and the one place where drone errors become `isError`
results.

Annotations follow the retry table in `servers.drone.core.commands`: a tool is `idempotentHint`
exactly when its command may be safely re-sent, `destructiveHint` only for `emergency`.
"""

from __future__ import annotations

import base64
import functools
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

import structlog
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from servers import metrics
from servers.auth.identity import bound_tool, current_client, current_path
from servers.auth.scopes import declare_scopes
from servers.drone.callers import Callers
from servers.drone.core import commands
from servers.drone.core.errors import DroneError, OutcomeUnknown, OutOfRange, SafetyViolation
from servers.drone.models import (
    ActionResult,
    BatteryResult,
    DroneState,
    EmergencyResult,
    PhotoResult,
    SensorName,
    SensorResult,
)
from servers.drone.pilot import Pilot, Progress
from servers.drone.runtime import DroneRuntime
from servers.drone.scopes import DRONE_SCOPES
from servers.validation import StrictToolsServer

P = ParamSpec("P")
R = TypeVar("R")

_log = structlog.get_logger("drone.tools")


def _annotations(*, read_only: bool, idempotent: bool, destructive: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        # The drone is a physical thing in the world, not a closed data store.
        open_world_hint=True,
    )


READ = _annotations(read_only=True, idempotent=True)
SAFE_REPEAT = _annotations(read_only=False, idempotent=True)
ONCE = _annotations(read_only=False, idempotent=False)
DESTRUCTIVE = _annotations(read_only=False, idempotent=True, destructive=True)


def error_text(exc: DroneError, state: DroneState | None) -> str:
    """The model-facing wording of a failure; `OutcomeUnknown` carries the current state."""
    text = str(exc)
    if isinstance(exc, OutcomeUnknown) and state is not None:
        text += "\nCurrent state: " + state.model_dump_json(exclude_none=True)
    return text


def _tool_call(
    pilot: Callable[[], Pilot], name: str, callers: Callers | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Log every call (name, arguments, outcome, latency), note its caller in `callers`, and map
    drone errors to `isError`."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            arguments = _loggable(kwargs)
            client = current_client()
            if callers is not None and client is not None:
                callers.saw(client, current_path(), name, time.time())
            try:
                with bound_tool(name):
                    result = await fn(*args, **kwargs)
            except DroneError as exc:
                _log.info(
                    "tool_call",
                    tool=name,
                    arguments=arguments,
                    outcome=type(exc).__name__,
                    error=str(exc),
                    latency_ms=round((time.perf_counter() - started) * 1000, 2),
                )
                if isinstance(exc, SafetyViolation):  # every refusal reaches an agent through here
                    metrics.count_refusal(pilot().link.drone_address, exc.limit)
                raise ToolError(error_text(exc, pilot().state())) from exc
            _log.info(
                "tool_call",
                tool=name,
                arguments=arguments,
                outcome="ok",
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            return result

        return call

    return wrap


def _loggable(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A tool call's arguments as they may appear in a log line: the model's plain values only.
    Anything else (the request context, a resolver's elicitation answer) is named by its type,
    never rendered: internal objects and a human's answers stay out of logs."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if isinstance(value, Context):
            continue
        plain = value is None or isinstance(value, str | int | float | bool)
        out[key] = value if plain else f"<{type(value).__name__}>"
    return out


def _progress(ctx: Context) -> Progress:
    async def report(done: float, total: float, message: str) -> None:
        await ctx.report_progress(done, total, message)

    return report


class _Confirm(BaseModel):
    confirm: bool = Field(description="true to stop the motors now; the drone will fall")


Colour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", description="hex colour like #ff8800")]


_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _rgb(field: str, colour: str) -> tuple[int, int, int]:
    if not _HEX_COLOUR.fullmatch(colour):
        raise OutOfRange(field, colour, "a hex colour like #ff8800")
    value = int(colour[1:], 16)
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


ToolDecorator = Callable[[str, ToolAnnotations, str], Callable[[Callable[..., Awaitable[Any]]], None]]


def register_tools(
    server: MCPServer[Any], runtime: DroneRuntime, *, tool_meta: Mapping[str, dict[str, Any]] | None = None
) -> None:
    """Add the drone tools to `server`, all flying `runtime`'s one drone: one group at a time.
    `tool_meta` adds a tool's `_meta` by name (`get_state` opens the flight deck app)."""
    extra_meta = tool_meta or {}

    def pilot() -> Pilot:
        return runtime.pilot

    def tool(
        name: str, annotations: ToolAnnotations, title: str
    ) -> Callable[[Callable[..., Awaitable[Any]]], None]:
        def register(fn: Callable[..., Awaitable[Any]]) -> None:
            server.add_tool(
                _tool_call(pilot, name, runtime.callers)(fn),
                name=name,
                title=title,
                description=fn.__doc__,
                annotations=annotations,
                meta=extra_meta.get(name),
                structured_output=True,
            )

        return register

    declare_scopes(server, DRONE_SCOPES)  # the scope each tool takes (servers/drone/scopes.py)
    if isinstance(server, StrictToolsServer):
        server.add_argument_hint("rotate", _rotate_hint)
    _reads(tool, pilot)
    _flight(tool, pilot)
    _camera(tool, runtime)
    _rmtt(tool, pilot)


def _reads(tool: ToolDecorator, pilot: Callable[[], Pilot]) -> None:
    """State, battery and sensors: read-only, never a flight command."""

    @tool("get_state", READ, "Drone state")
    async def get_state() -> DroneState:
        """Everything known about the drone right now, from the state stream (no radio command).

        Always check `freshness` first: `connected` means the numbers are live (state_age_s is
        how old they are); `stale` means the state stream stopped and the numbers are old;
        `disconnected` means the drone is not answering at all. Also returns flight status
        (flying/landed), telemetry (height, time-of-flight distance, attitude, velocity,
        temperatures, barometer, battery, motor time, mission pad) and the dead-reckoned
        position relative to the takeoff point with its uncertainty.
        """
        return pilot().state()

    @tool("get_battery", READ, "Battery level")
    async def get_battery() -> BatteryResult:
        """Battery percentage, asked from the drone live (`battery?`).

        If the drone cannot answer in time (another command is running, or WiFi is poor) the
        last value from the state stream is returned instead with `source: "state"` and its
        age in seconds. Land before it drops below ~20%.
        """
        return await pilot().battery()

    @tool("get_sensor", READ, "Read one sensor")
    async def get_sensor(
        sensor: Annotated[
            SensorName,
            Field(description="which reading to ask the drone for, live"),
        ],
    ) -> SensorResult:
        """One live reading from the drone: height (cm), tof (distance below, cm; -1 out of
        range), temperature (°C low/high), attitude (deg), barometer (m), acceleration (g),
        speed (cm/s setting), flight_time (motor-on seconds), wifi_snr, sdk_version,
        serial_number or hardware (`RMTT` for a RoboMaster TT). Includes the raw reply.
        """
        return await pilot().sensor(sensor)


def _flight(tool: ToolDecorator, pilot: Callable[[], Pilot]) -> None:
    """Flight actions (never retried), the harmless stop/land/speed, and the emergency stop."""

    @tool("takeoff", ONCE, "Take off")
    async def takeoff(ctx: Context) -> ActionResult:
        """Start the motors and climb to about 80 cm, then hover.

        Refused (nothing sent) when the link is not connected or the live battery is below the
        operator's takeoff minimum. Takes ~5-8 s. Never retried automatically: if the result
        is "outcome unknown", call get_state to see whether the drone is flying.
        """
        return await pilot().takeoff(_progress(ctx))

    @tool("land", SAFE_REPEAT, "Land")
    async def land(ctx: Context) -> ActionResult:
        """Land where the drone is and stop the motors. Safe to call again if unsure."""
        return await pilot().land(_progress(ctx))

    @tool("emergency", DESTRUCTIVE, "EMERGENCY motor stop")
    async def emergency(
        answer: Annotated[ElicitationResult[_Confirm], Resolve(_confirm_emergency)],
        confirm: Annotated[
            bool,
            Field(
                description=(
                    "must be true: this stops all motors at once and the drone FALLS "
                    "(a client that can ask its user is asked whatever this says)"
                )
            ),
        ] = False,
    ) -> EmergencyResult:
        """Kill all motors immediately. The drone drops out of the air wherever it is.

        Only for real danger (about to hit a person or object, flyaway). Prefer `stop` to
        hover or `land` to come down. A client that supports elicitation is always asked and
        its user decides (`confirm` does not skip the question); a client that cannot ask
        must pass `confirm: true`. It is sent at once, even while a move is running, and
        repeated because the drone often does not acknowledge it.
        """
        if not (answer.action == "accept" and answer.data.confirm):
            raise ToolError(
                "emergency NOT sent: it stops the motors and the drone falls. If that is really "
                "intended, call emergency again with confirm=true. To hover use stop; to come down use land."
            )
        return await pilot().emergency()

    @tool("stop", SAFE_REPEAT, "Stop and hover")
    async def stop() -> ActionResult:
        """Stop the current motion at once and hover in place. Sent immediately, even while a
        move is in progress (that move then reports it was cancelled)."""
        return await pilot().stop()

    @tool("move", ONCE, "Move in a straight line")
    async def move(
        ctx: Context,
        direction: Annotated[
            Literal["up", "down", "left", "right", "forward", "back"],
            Field(description="relative to where the drone is facing"),
        ],
        distance_cm: Annotated[int, Field(ge=20, le=500, description="20..500 cm")],
    ) -> ActionResult:
        """Fly in a straight line relative to the drone's heading, then hover.

        Refused before sending if the end point would leave the operator's safety envelope
        (max height, max distance from the takeoff point). Never retried: on "outcome
        unknown" call get_state before deciding what to do next.
        """
        return await pilot().move(direction, distance_cm, _progress(ctx))

    @tool("rotate", ONCE, "Rotate in place")
    async def rotate(
        ctx: Context,
        direction: Annotated[
            Literal["clockwise", "counter-clockwise"],
            Field(description="seen from above"),
        ],
        degrees: Annotated[int, Field(ge=1, le=360, description="1..360 degrees")],
    ) -> ActionResult:
        """Turn in place by the given angle, then hover. Never retried automatically."""
        verb = "cw" if direction == "clockwise" else "ccw"
        return await pilot().rotate(verb, degrees, _progress(ctx))

    @tool("flip", ONCE, "Flip")
    async def flip(
        direction: Annotated[
            Literal["left", "right", "forward", "back"], Field(description="flip direction")
        ],
    ) -> ActionResult:
        """Do a flip in the given direction. Needs room (about 1 m clear all round) and the
        drone refuses it below 50% battery; refused here first in that case."""
        return await pilot().flip(direction)

    @tool("go_to", ONCE, "Fly to a point")
    async def go_to(
        ctx: Context,
        x: Annotated[int, Field(ge=-500, le=500, description="cm forward (+) / back (-)")],
        y: Annotated[int, Field(ge=-500, le=500, description="cm left (+) / right (-)")],
        z: Annotated[int, Field(ge=-500, le=500, description="cm up (+) / down (-)")],
        speed: Annotated[int, Field(ge=10, le=100, description="10..100 cm/s")],
        mission_pad: Annotated[
            Literal["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m-1", "m-2"] | None,
            Field(description="coordinates relative to this mission pad instead of the drone"),
        ] = None,
    ) -> ActionResult:
        """Fly straight to a point x, y, z (cm) relative to the drone (or to a mission pad).

        At least one of x, y, z must be outside -20..20. Checked against the safety envelope
        before sending; never retried automatically.
        """
        return await pilot().go_to(x, y, z, speed, mission_pad, _progress(ctx))

    @tool("set_speed", SAFE_REPEAT, "Set flight speed")
    async def set_speed(
        speed_cm_s: Annotated[int, Field(ge=10, le=100, description="10..100 cm/s")],
    ) -> ActionResult:
        """Set the speed used by move (and the default pace of flight), in cm/s."""
        return await pilot().set_speed(speed_cm_s)


def _camera(tool: ToolDecorator, runtime: DroneRuntime) -> None:
    """The photo: the video stream on demand, one decoded frame as JPEG."""

    @tool("capture_photo", READ, "Capture a photo")
    async def capture_photo() -> Annotated[CallToolResult, PhotoResult]:
        """What the drone's camera sees right now, as a JPEG image with its age.

        Turns the video stream on if needed (the first photo takes a second or two) and off
        again after a period without photos.
        """
        jpeg, info = await runtime.photos.capture()
        return CallToolResult(
            content=[
                ImageContent(
                    type="image", data=base64.b64encode(jpeg).decode("ascii"), mime_type="image/jpeg"
                ),
                TextContent(type="text", text=info.model_dump_json()),
            ],
            structured_content=info.model_dump(mode="json"),
        )


def _rmtt(tool: ToolDecorator, pilot: Callable[[], Pilot]) -> None:
    """The RoboMaster TT's expansion: top LED and 8x8 matrix."""

    @tool("set_led", SAFE_REPEAT, "Set the top LED (RMTT)")
    async def set_led(
        color: Colour,
        mode: Annotated[
            Literal["solid", "breathe", "blink"],
            Field(description="solid colour, breathing (fading) or blinking between two colours"),
        ] = "solid",
        frequency_hz: Annotated[
            float | None,
            Field(ge=0.1, le=10.0, description="breathe: 0.1..2.5 Hz; blink: 0.1..10 Hz"),
        ] = None,
        second_color: Annotated[
            str | None,
            Field(pattern=r"^#[0-9a-fA-F]{6}$", description="blink only: the other colour, hex like #0000ff"),
        ] = None,
    ) -> ActionResult:
        """Set the RoboMaster TT's top LED: a solid colour, a breathing colour, or blinking
        between two colours."""
        rgb = _rgb("color", color)
        match mode:
            case "solid":
                command = commands.led_solid(*rgb)
            case "breathe":
                command = commands.led_breathe(frequency_hz if frequency_hz is not None else 1.0, *rgb)
            case "blink":
                if second_color is None:
                    raise OutOfRange("second_color", None, "a hex colour (required when mode is blink)")
                command = commands.led_blink(
                    frequency_hz if frequency_hz is not None else 2.0, rgb, _rgb("second_color", second_color)
                )
        return await pilot().send(command)

    @tool("show_matrix", SAFE_REPEAT, "Show on the 8x8 matrix (RMTT)")
    async def show_matrix(
        mode: Annotated[
            Literal["pattern", "char", "scroll"],
            Field(description="pattern: 64 pixels; char: one character; scroll: moving text"),
        ],
        pattern: Annotated[
            str | None,
            Field(
                pattern=r"^[rbp0]{64}$",
                description="pattern mode: 64 chars row by row, each r (red), b (blue), p (purple), 0 (off)",
            ),
        ] = None,
        text: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=70,
                description="char mode: one character or 'heart'; scroll mode: up to 70 characters",
            ),
        ] = None,
        color: Annotated[Literal["r", "b", "p"], Field(description="r (red), b (blue) or p (purple)")] = "r",
        direction: Annotated[
            Literal["left", "right", "up", "down"], Field(description="scroll mode: direction")
        ] = "left",
        rate_hz: Annotated[float, Field(ge=0.1, le=2.5, description="scroll mode: 0.1..2.5 Hz")] = 1.0,
    ) -> ActionResult:
        """Show something on the RoboMaster TT's 8x8 LED matrix: a 64-pixel pattern, a single
        character, or scrolling text."""
        match mode:
            case "pattern":
                if pattern is None:
                    raise OutOfRange("pattern", None, "64 characters of r/b/p/0 (required in pattern mode)")
                command = commands.matrix_pattern(pattern)
            case "char":
                if text is None:
                    raise OutOfRange("text", None, "one character or 'heart' (required in char mode)")
                try:
                    command = commands.matrix_char(color, text)
                except OutOfRange as exc:  # the builder's field is the tool's `text`
                    raise OutOfRange("text", exc.value, exc.allowed) from None
            case "scroll":
                if text is None:
                    raise OutOfRange("text", None, "1..70 characters (required in scroll mode)")
                command = commands.matrix_scroll(direction[0], color, rate_hz, text)
        return await pilot().send(command)


def _rotate_hint(arguments: Mapping[str, Any]) -> str | None:
    """A negative angle means the other way round: say which direction that is."""
    degrees = arguments.get("degrees")
    if not isinstance(degrees, int) or isinstance(degrees, bool) or not -360 <= degrees < 0:
        return None
    other = {"clockwise": "counter-clockwise", "counter-clockwise": "clockwise"}.get(
        str(arguments.get("direction")), "the other direction"
    )
    return f"to turn the other way, rotate {other} {-degrees} degrees"


async def _confirm_emergency(confirm: bool, ctx: Context) -> Elicit[_Confirm] | _Confirm:
    """The confirm step, one rule on every path: where the client can elicit, the human is
    always asked, and only their answer counts (`confirm: true` from an agent or a script does
    not skip them); `confirm` is for clients that cannot ask (a gateway, the Inspector CLI).

    As a resolver it asks in either protocol era (a mid-call request in the handshake era, an
    `input_required` round trip in 2026-07-28). The Search and Code modes call this tool with
    the outer request's context, so the same client is asked: `invoke_tool` passes the round
    trip out; inside `run_code` a 2026-07-28 round trip cannot be made, so a script's emergency
    fails there (nothing sent) and tells the agent to call the tool directly.
    """
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        return _Confirm(confirm=confirm)
    return Elicit("EMERGENCY: stop all motors now? The drone will fall from its current height.", _Confirm)
