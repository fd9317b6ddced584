"""Tools that need nothing from the client: content kinds, progress, logging, resource updates.

Every tool is `async`: the SDK runs a sync tool on a worker thread, which costs more than
`echo` itself.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from typing import Annotated, Any, Final, Literal, get_args

import anyio
import structlog
from mcp.server.connection import allowed_log_levels
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import (
    Annotations,
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    LoggingLevel,
    LoggingMessageNotification,
    LoggingMessageNotificationParams,
    ResourceLink,
    Role,
    SetLevelRequestParams,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel, Field

from servers.everything.media import PNG_MIME, WAV_MIME, b64, tiny_png, tiny_wav
from servers.everything.resources import (
    BLOB_MIME,
    GZIP_MIME,
    TEXT_MIME,
    blob_contents,
    blob_uri,
    gzip_link_uri,
    text_contents,
    text_uri,
)
from servers.everything.settings import EverythingSettings
from servers.resource_updates import ResourceUpdates
from servers.sdk import connection_of, lowlevel

_log = structlog.get_logger("everything.tools")

READ_ONLY: Final = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
ACTS: Final = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)

LOG_LEVELS: Final[tuple[LoggingLevel, ...]] = get_args(LoggingLevel)
"""Severity-ascending (RFC 5424 order, as the SDK declares them)."""
_LEVEL_KEY: Final = "everything.log_level"
_URL: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

ANNOTATED: Final[dict[str, tuple[str, float, list[Role]]]] = {
    "error": ("Error: Operation failed", 1.0, ["user", "assistant"]),
    "success": ("Operation completed successfully", 0.7, ["user"]),
    "debug": ("Debug: Cache hit ratio 0.95, latency 150ms", 0.3, ["assistant"]),
}
"""Text, priority and audience of `get-annotated-message`, by message type."""

WEATHER: Final = {
    "New York": (33.0, "Cloudy", 82.0),
    "Chicago": (36.0, "Light rain / drizzle", 82.0),
    "Los Angeles": (73.0, "Sunny / Clear", 48.0),
}


class Weather(BaseModel):
    """Weather at a location (the reference's `get-structured-content` output)."""

    temperature: float = Field(description="Temperature in Fahrenheit")
    conditions: str = Field(description="Weather conditions description")
    humidity: float = Field(description="Humidity percentage")


class LogReport(BaseModel):
    sent: list[LoggingLevel] = Field(description="The levels sent to this client, severity-ascending")


def _connection_state(ctx: ServerRequestContext[Any]) -> dict[str, Any]:
    """Per-connection scratch space (a handshake-era session lives exactly as long)."""
    return connection_of(ctx).state


async def send_log(
    ctx: Context[Any, Any], level: LoggingLevel, data: Any, logger: str = "everything"
) -> bool:
    """Send one `notifications/message` on this request's stream if the client wants that level.

    2026-07-28: the request's `_meta` opt-in decides (the SDK's rule). Handshake era: the level
    set by `logging/setLevel` on this session, everything when none was set. Returns whether it
    was sent. Sent as a plain notification: the SDK's `log` helpers carry a deprecation warning
    for the whole capability.
    """
    request = ctx.request_context
    allowed = allowed_log_levels(request.protocol_version, request.meta)
    minimum: LoggingLevel | None = _connection_state(request).get(_LEVEL_KEY)
    if level not in allowed or (minimum is not None and LOG_LEVELS.index(level) < LOG_LEVELS.index(minimum)):
        return False
    notification = LoggingMessageNotification(
        params=LoggingMessageNotificationParams(level=level, data=data, logger=logger)
    )
    await request.session.send_notification(notification, related_request_id=request.request_id)
    return True


def register_tools(server: MCPServer[Any], settings: EverythingSettings, updates: ResourceUpdates) -> None:
    _register_content_tools(server)
    _register_resource_tools(server, settings, updates)
    _register_operation_tools(server, settings)
    _serve_set_level(server)


def _register_content_tools(server: MCPServer[Any]) -> None:
    @server.tool(
        name="echo",
        title="Echo",
        description="Echoes back the input string",
        annotations=READ_ONLY,
        structured_output=False,
    )
    async def echo(message: Annotated[str, Field(description="Message to echo")]) -> str:
        return f"Echo: {message}"

    @server.tool(
        name="get-sum",
        title="Get Sum",
        description="Returns the sum of two numbers",
        annotations=READ_ONLY,
        structured_output=False,
    )
    async def get_sum(
        a: Annotated[float, Field(description="First number")],
        b: Annotated[float, Field(description="Second number")],
    ) -> str:
        return f"The sum of {a:g} and {b:g} is {a + b:g}."

    @server.tool(
        name="get-structured-content",
        title="Get Structured Content",
        description="Returns structured content (with an output schema) and its JSON as text",
        annotations=READ_ONLY,
        structured_output=True,
    )
    async def get_structured_content(
        location: Annotated[Literal["New York", "Chicago", "Los Angeles"], Field(description="Choose city")],
    ) -> Weather:
        temperature, conditions, humidity = WEATHER[location]
        return Weather(temperature=temperature, conditions=conditions, humidity=humidity)

    @server.tool(
        name="get-annotated-message",
        title="Get Annotated Message",
        description="Content annotated with priority and audience, by message type",
        annotations=READ_ONLY,
    )
    async def get_annotated_message(
        messageType: Annotated[
            Literal["error", "success", "debug"],
            Field(description="Type of message to demonstrate different annotation patterns"),
        ],
        includeImage: Annotated[bool, Field(description="Whether to include an example image")] = False,
    ) -> CallToolResult:
        text, priority, audience = ANNOTATED[messageType]
        content: list[ContentBlock] = [
            TextContent(type="text", text=text, annotations=Annotations(priority=priority, audience=audience))
        ]
        if includeImage:
            content.append(
                ImageContent(
                    type="image",
                    data=b64(tiny_png()),
                    mime_type=PNG_MIME,
                    annotations=Annotations(priority=0.5, audience=["user"]),
                )
            )
        return CallToolResult(content=content)

    @server.tool(
        name="get-tiny-image",
        title="Get Tiny Image",
        description="Returns a tiny PNG image",
        annotations=READ_ONLY,
    )
    async def get_tiny_image() -> CallToolResult:
        return CallToolResult(
            content=[
                TextContent(type="text", text="Here's an image:"),
                ImageContent(type="image", data=b64(tiny_png()), mime_type=PNG_MIME),
                TextContent(type="text", text="The image above is a 16x16 gradient."),
            ]
        )

    @server.tool(
        name="get-tiny-audio",
        title="Get Tiny Audio",
        description="Returns a quarter-second 440 Hz tone as WAV audio",
        annotations=READ_ONLY,
    )
    async def get_tiny_audio() -> CallToolResult:
        return CallToolResult(
            content=[
                TextContent(type="text", text="Here's a tone:"),
                AudioContent(type="audio", data=b64(tiny_wav()), mime_type=WAV_MIME),
            ]
        )

    _ = (echo, get_sum, get_structured_content, get_annotated_message, get_tiny_image, get_tiny_audio)


def _register_resource_tools(
    server: MCPServer[Any], settings: EverythingSettings, updates: ResourceUpdates
) -> None:
    @server.tool(
        name="get-resource-links",
        title="Get Resource Links",
        description="Returns up to ten links to the dynamic text (even ids) and blob (odd ids) resources",
        annotations=READ_ONLY,
    )
    async def get_resource_links(
        count: Annotated[
            int, Field(ge=1, le=10, description="Number of resource links to return (1-10)")
        ] = 3,
    ) -> CallToolResult:
        content: list[ContentBlock] = [
            TextContent(
                type="text", text=f"Here are {count} resource links to resources available in this server:"
            )
        ]
        for resource_id in range(1, count + 1):
            is_text = resource_id % 2 == 0
            content.append(
                ResourceLink(
                    type="resource_link",
                    uri=text_uri(resource_id) if is_text else blob_uri(resource_id),
                    name=f"{'Text' if is_text else 'Blob'} Resource {resource_id}",
                    description=f"Resource {resource_id}: {'plaintext' if is_text else 'binary blob'}",
                    mime_type=TEXT_MIME if is_text else BLOB_MIME,
                )
            )
        return CallToolResult(content=content)

    @server.tool(
        name="get-resource-reference",
        title="Get Resource Reference",
        description="Returns a dynamic resource embedded in the result",
        annotations=READ_ONLY,
    )
    async def get_resource_reference(
        resourceType: Literal["Text", "Blob"] = "Text",
        resourceId: Annotated[int, Field(ge=1, description="ID of the resource to embed")] = 1,
    ) -> CallToolResult:
        contents = text_contents(resourceId) if resourceType == "Text" else blob_contents(resourceId)
        return CallToolResult(
            content=[
                TextContent(type="text", text=f"Returning resource reference for Resource {resourceId}:"),
                EmbeddedResource(type="resource", resource=contents),
                TextContent(type="text", text=f"You can access this resource using the URI: {contents.uri}"),
            ]
        )

    @server.tool(
        name="gzip-file-as-resource",
        title="Gzip File as Resource",
        description=(
            "Compresses `data` (text, or a base64 `data:` URI; URLs are never fetched) and returns it "
            "as an embedded resource or as a resource link whose URI carries the bytes"
        ),
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def gzip_file_as_resource(
        data: Annotated[str, Field(description="Text to compress, or a data: URI (data:...;base64,...)")],
        name: Annotated[
            str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Name of the output file")
        ] = ("data.txt.gz"),
        outputType: Annotated[
            Literal["resource", "resourceLink"], Field(description="Embed the bytes, or link to them")
        ] = "resource",
    ) -> CallToolResult:
        raw = _decode_data(data)
        if len(raw) > settings.max_gzip_input_bytes:
            raise ToolError(f"data is {len(raw)} bytes; the limit is {settings.max_gzip_input_bytes}")
        compressed = gzip.compress(raw, mtime=0)
        if outputType == "resourceLink":
            if len(compressed) > settings.max_link_payload_bytes:
                raise ToolError(
                    f"compressed size {len(compressed)} exceeds {settings.max_link_payload_bytes} bytes, "
                    "the most a link can carry; use outputType=resource"
                )
            link = ResourceLink(
                type="resource_link", uri=gzip_link_uri(name, compressed), name=name, mime_type=GZIP_MIME
            )
            return CallToolResult(content=[link])
        blob = BlobResourceContents(
            uri=gzip_link_uri(name, compressed), mime_type=GZIP_MIME, blob=b64(compressed)
        )
        return CallToolResult(content=[EmbeddedResource(type="resource", resource=blob)])

    @server.tool(
        name="trigger-resource-update",
        title="Trigger Resource Update",
        description=(
            "Notifies subscribers of `uri` that it changed (resources/subscribe in the handshake era, "
            "subscriptions/listen in 2026-07-28)"
        ),
        annotations=ACTS,
        structured_output=False,
    )
    async def trigger_resource_update(
        uri: Annotated[str, Field(pattern=r"^demo://resource/", description="A resource of this server")],
    ) -> str:
        subscribers = updates.subscribers(uri)
        await updates.publish(uri)
        return f"Published an update of {uri} ({subscribers} handshake-era subscriber(s) on this replica)"

    _ = (get_resource_links, get_resource_reference, gzip_file_as_resource, trigger_resource_update)


def _decode_data(data: str) -> bytes:
    if not data.startswith("data:"):
        if _URL.match(data):
            raise ToolError("URLs are not fetched: pass the content itself or a data: URI")
        return data.encode()
    header, sep, body = data.partition(",")
    if not sep:
        raise ToolError("malformed data: URI (no comma)")
    if header.endswith(";base64"):
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise ToolError("data: URI is not valid base64") from exc
    return body.encode()


def _register_operation_tools(server: MCPServer[Any], settings: EverythingSettings) -> None:
    @server.tool(
        name="trigger-long-running-operation",
        title="Trigger Long Running Operation",
        description="Runs `duration` seconds in `steps` steps, reporting progress after each; cancellable",
        annotations=READ_ONLY,
        structured_output=False,
    )
    async def trigger_long_running_operation(
        ctx: Context[Any, Any],
        duration: Annotated[float, Field(ge=0, description="Duration of the operation in seconds")] = (
            settings.long_running_duration_s
        ),
        steps: Annotated[int, Field(ge=1, le=1000, description="Number of steps in the operation")] = (
            settings.long_running_steps
        ),
    ) -> str:
        if duration > settings.max_long_running_duration_s:
            raise ToolError(f"duration is capped at {settings.max_long_running_duration_s:g} s")
        log = _log.bind(request_id=ctx.request_id, duration=duration, steps=steps)
        log.info("long_running_started")
        step = 0
        try:
            for step in range(1, steps + 1):
                await anyio.sleep(duration / steps)
                await ctx.report_progress(step, steps, f"step {step} of {steps}")
        except anyio.get_cancelled_exc_class():
            log.info("long_running_cancelled", completed_steps=step - 1)
            raise
        log.info("long_running_finished")
        return f"Long running operation completed. Duration: {duration:g} seconds, Steps: {steps}."

    @server.tool(
        name="trigger-log-messages",
        title="Trigger Log Messages",
        description=(
            "Sends one log message at each level (debug ... emergency) during the call; the client gets "
            "those at or above its level (logging/setLevel, or the 2026-07-28 per-request log level)"
        ),
        annotations=READ_ONLY,
    )
    async def trigger_log_messages(ctx: Context[Any, Any]) -> LogReport:
        sent: list[LoggingLevel] = [
            level
            for level in LOG_LEVELS
            if await send_log(ctx, level, {"message": f"a {level}-level message", "level": level})
        ]
        return LogReport(sent=sent)

    _ = (trigger_long_running_operation, trigger_log_messages)


def _serve_set_level(server: MCPServer[Any]) -> None:
    """Handshake-era `logging/setLevel`: remembered on the session, applied by `send_log`.

    Registering it also makes the server advertise the logging capability.
    """

    async def set_level(ctx: ServerRequestContext[Any], params: SetLevelRequestParams) -> EmptyResult:
        _connection_state(ctx)[_LEVEL_KEY] = params.level
        return EmptyResult()

    low = lowlevel(server)
    low.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
