"""The fixtures the official MCP conformance suite (`@modelcontextprotocol/conformance`) calls.

The suite's server scenarios call tools, resources and prompts by name (`test_simple_text`,
`test://static-text`, `test_prompt_with_arguments`, ...) and check their contents; its own
fixture server is `examples/servers/typescript/everything-server.ts` in the suite's repository.
They live here, beside the reference-parity features, so `/everything` is both the reference's
twin and the suite's fixture; `tests/conformance/` runs the suite against it.

Like the rest of the server they keep no per-process state: a multi-round (2026-07-28
`input_required`) fixture keeps what it must remember in `requestState`, which the SDK seals
(`RequestStateSecurity`), so a tampered state is refused before a fixture sees it. A fixture
never asks for input the client did not declare a capability for: the call fails with -32021
naming it. Handshake-era fixtures that ask the client something (sampling, elicitation) send
the request on the session's back-channel; in 2026-07-28 they return `input_required` and
complete when the client retries with the answer.

`test_reconnection` (SEP-1699 SSE polling) answers on the open stream: closing a stream
mid-call needs an event store to replay from, and the suite serves every path without one
(a replica-local store would tie a call to one replica).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    INVALID_REQUEST,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    CallToolResult,
    ClientCapabilities,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitationCapability,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    ImageContent,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    MissingRequiredClientCapabilityErrorData,
    RootsCapability,
    SamplingCapability,
    SamplingMessage,
    TextContent,
    TextResourceContents,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from servers.everything.interactive import ASKS
from servers.everything.media import PNG_MIME, WAV_MIME, b64, tiny_png, tiny_wav
from servers.everything.tools import ACTS, READ_ONLY, send_log
from servers.sdk import set_tool_input_schema

_Answer = TypeVar("_Answer", ElicitResult, CreateMessageResult, ListRootsResult)

JSON_SCHEMA_2020_12: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}
"""`json_schema_2020_12_tool`'s input schema, listed as written (SEP-1613, SEP-2106): `$schema`,
`$defs`, `$anchor`, composition and conditional keywords that a schema generated from a
signature never has."""

SEP1034_DEFAULTS: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}
"""A form with a default for every primitive kind (SEP-1034)."""

SEP1330_ENUMS: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "untitledSingle": {
            "type": "string",
            "description": "Select one option",
            "enum": ["option1", "option2", "option3"],
        },
        "titledSingle": {
            "type": "string",
            "description": "Select one option with titles",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "description": "Select one option (legacy)",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "description": "Select multiple options",
            "minItems": 1,
            "maxItems": 3,
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "description": "Select multiple options with titles",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}
"""The five enum forms of SEP-1330: untitled, titled (`oneOf`), legacy `enumNames`, and the two
multi-select arrays."""

TOOLS: Final = (
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_error_handling",
    "test_reconnection",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "json_schema_2020_12_tool",
    "test_x_mcp_header",
    "test_missing_capability",
    "test_input_required_result_elicitation",
    "test_input_required_result_sampling",
    "test_input_required_result_list_roots",
    "test_input_required_result_request_state",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_multi_round",
    "test_input_required_result_tampered_state",
    "test_input_required_result_capabilities",
    "test_streaming_elicitation",
    "test_logging_tool",
    "test_trigger_tool_change",
    "test_trigger_prompt_change",
    "greet",
)
PROMPTS: Final = (
    "test_simple_prompt",
    "test_prompt_with_arguments",
    "test_prompt_with_embedded_resource",
    "test_prompt_with_image",
    "test_input_required_result_prompt",
)
RESOURCES: Final = ("test://static-text", "test://static-binary", "test://watched-resource")
TEMPLATES: Final = ("test://template/{id}/data",)

MODERN_ONLY: Final = (
    "is a 2026-07-28 fixture: it answers with input_required, which this protocol version lacks"
)
NO_BACK_CHANNEL: Final = (
    "this handshake-era connection has no back-channel for server-to-client requests (stateless HTTP)"
)


class Address(BaseModel):
    street: str | None = None
    city: str | None = None


# ---- asking the client something, in either era ----


def is_modern(ctx: Context[Any, Any]) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def _capability(request: InputRequest) -> tuple[ClientCapabilities, str]:
    if isinstance(request, ElicitRequest):
        return ClientCapabilities(elicitation=ElicitationCapability()), "elicitation"
    if isinstance(request, CreateMessageRequest):
        return ClientCapabilities(sampling=SamplingCapability()), "sampling"
    return ClientCapabilities(roots=RootsCapability()), "roots"


def _declares(ctx: Context[Any, Any], name: str) -> bool:
    declared = ctx.client_capabilities
    return declared is not None and getattr(declared, name) is not None


def _require(ctx: Context[Any, Any], request: InputRequest) -> None:
    needed, name = _capability(request)
    if not _declares(ctx, name):
        data = MissingRequiredClientCapabilityErrorData(required_capabilities=needed)
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message=f"Client did not declare the {name} capability",
            data=data.model_dump(by_alias=True, mode="json", exclude_none=True),
        )


def _modern_only(ctx: Context[Any, Any], name: str) -> None:
    if not is_modern(ctx):
        raise MCPError(code=INVALID_REQUEST, message=f"{name} {MODERN_ONLY}")


def _answer(ctx: Context[Any, Any], key: str, kind: type[_Answer]) -> _Answer | None:
    answer = (ctx.input_responses or {}).get(key)
    return answer if isinstance(answer, kind) else None


async def ask(
    ctx: Context[Any, Any], key: str, request: InputRequest, kind: type[_Answer]
) -> _Answer | InputRequiredResult:
    """The client's answer to `request`: asked on the session (handshake era), or this round's
    answer under `key` (2026-07-28), else an `input_required` result asking for it."""
    _require(ctx, request)
    if is_modern(ctx):
        answer = _answer(ctx, key, kind)
        return answer if answer is not None else InputRequiredResult(input_requests={key: request})
    if not ctx.session.can_send_request:
        raise MCPError(code=INVALID_REQUEST, message=NO_BACK_CHANNEL)
    metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
    return await ctx.session.send_request(request, kind, metadata=metadata)


def form(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def one_field(name: str, kind: str = "string") -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": kind}}, "required": [name]}


def sample(text: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


def field(answer: ElicitResult | None, name: str) -> str:
    value = (answer.content or {}).get(name) if answer is not None else None
    return value if isinstance(value, str) else "unknown"


def sampled_text(answer: CreateMessageResult | None) -> str:
    if answer is not None and isinstance(answer.content, TextContent):
        return answer.content.text
    return "no response"


def text(value: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=value)])


def _state(ctx: Context[Any, Any]) -> dict[str, Any]:
    """This round's `requestState` as the fixture wrote it (the SDK has already checked its seal)."""
    if ctx.request_state is None:
        return {}
    try:
        state: object = json.loads(ctx.request_state)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}  # pyright: ignore[reportUnknownVariableType]


# ---- registration ----


def register_conformance_fixtures(server: MCPServer[Any]) -> None:
    _register_content_tools(server)
    _register_asking_tools(server)
    _register_schema_tools(server)
    _register_multi_round_tools(server)
    _register_diagnostic_tools(server)
    _register_resources(server)
    _register_prompts(server)


def _register_content_tools(server: MCPServer[Any]) -> None:
    @server.tool(
        annotations=READ_ONLY, name="test_simple_text", description="Tests simple text content response"
    )
    async def simple_text() -> CallToolResult:
        return text("This is a simple text response for testing.")

    @server.tool(annotations=READ_ONLY, name="test_image_content", description="Tests image content response")
    async def image_content() -> CallToolResult:
        return CallToolResult(content=[ImageContent(type="image", data=b64(tiny_png()), mime_type=PNG_MIME)])

    @server.tool(annotations=READ_ONLY, name="test_audio_content", description="Tests audio content response")
    async def audio_content() -> CallToolResult:
        return CallToolResult(content=[AudioContent(type="audio", data=b64(tiny_wav()), mime_type=WAV_MIME)])

    @server.tool(
        annotations=READ_ONLY,
        name="test_embedded_resource",
        description="Tests embedded resource content response",
    )
    async def embedded_resource() -> CallToolResult:
        resource = TextResourceContents(
            uri="test://embedded-resource",
            mime_type="text/plain",
            text="This is an embedded resource content.",
        )
        return CallToolResult(content=[EmbeddedResource(type="resource", resource=resource)])

    @server.tool(
        annotations=READ_ONLY,
        name="test_multiple_content_types",
        description="Tests response with multiple content types (text, image, resource)",
    )
    async def multiple_content_types() -> CallToolResult:
        resource = TextResourceContents(
            uri="test://mixed-content-resource",
            mime_type="application/json",
            text=json.dumps({"test": "data", "value": 123}),
        )
        return CallToolResult(
            content=[
                TextContent(type="text", text="Multiple content types test:"),
                ImageContent(type="image", data=b64(tiny_png()), mime_type=PNG_MIME),
                EmbeddedResource(type="resource", resource=resource),
            ]
        )

    @server.tool(
        annotations=READ_ONLY,
        name="test_tool_with_logging",
        description="Tests tool that emits log messages during execution",
    )
    async def tool_with_logging(ctx: Context[Any, Any]) -> CallToolResult:
        for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
            await send_log(ctx, "info", message, logger="conformance")
        return text("Tool with logging executed successfully")

    @server.tool(
        annotations=READ_ONLY,
        name="test_tool_with_progress",
        description="Tests tool that reports progress notifications",
    )
    async def tool_with_progress(ctx: Context[Any, Any]) -> CallToolResult:
        for step in (0, 50, 100):
            await ctx.report_progress(step, 100, f"Completed step {step} of 100")
        meta = ctx.request_context.meta
        token = meta.get("progress_token") if meta is not None else None
        return text(str(token if token is not None else 0))

    @server.tool(
        annotations=READ_ONLY, name="test_error_handling", description="Tests error response handling"
    )
    async def error_handling() -> CallToolResult:
        raise ToolError("This tool intentionally returns an error for testing")

    @server.tool(
        annotations=READ_ONLY,
        name="test_reconnection",
        description=(
            "Tests SSE polling (SEP-1699). This server keeps no event store to replay from, so it "
            "answers on the open stream instead of closing it mid-call"
        ),
    )
    async def reconnection() -> CallToolResult:
        return text(
            "Reconnection test completed: answered on the open stream (no event store to resume from)."
        )

    @server.tool(
        annotations=READ_ONLY,
        name="greet",
        description="Greets `name` (the tasks scenarios' synchronous tool)",
    )
    async def greet(name: Annotated[str, Field(description="Who to greet")]) -> CallToolResult:
        return text(f"Hello, {name}!")

    _ = (
        greet,
        simple_text,
        image_content,
        audio_content,
        embedded_resource,
        multiple_content_types,
        tool_with_logging,
        tool_with_progress,
        error_handling,
        reconnection,
    )


def _register_asking_tools(server: MCPServer[Any]) -> None:
    @server.tool(
        annotations=ASKS,
        name="test_sampling",
        description="Tests server-initiated sampling (LLM completion request)",
    )
    async def sampling(
        ctx: Context[Any, Any], prompt: Annotated[str, Field(description="The prompt to send to the LLM")]
    ) -> CallToolResult | InputRequiredResult:
        answer = await ask(ctx, "sampling", sample(prompt, 100), CreateMessageResult)
        if isinstance(answer, InputRequiredResult):
            return answer
        return text(f"LLM response: {sampled_text(answer)}")

    @server.tool(
        annotations=ASKS,
        name="test_elicitation",
        description="Tests server-initiated elicitation (user input request)",
    )
    async def elicitation(
        ctx: Context[Any, Any], message: Annotated[str, Field(description="The message to show the user")]
    ) -> CallToolResult | InputRequiredResult:
        schema = {
            "type": "object",
            "properties": {"response": {"type": "string", "description": "User's response"}},
            "required": ["response"],
        }
        answer = await ask(ctx, "elicitation", form(message, schema), ElicitResult)
        if isinstance(answer, InputRequiredResult):
            return answer
        return text(f"User response: action={answer.action}, content={json.dumps(answer.content or {})}")

    @server.tool(
        annotations=ASKS,
        name="test_elicitation_sep1034_defaults",
        description="Tests elicitation with default values per SEP-1034",
    )
    async def elicitation_defaults(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        question = form("Please review and update the form fields with defaults", SEP1034_DEFAULTS)
        answer = await ask(ctx, "defaults", question, ElicitResult)
        if isinstance(answer, InputRequiredResult):
            return answer
        return text(
            f"Elicitation completed: action={answer.action}, content={json.dumps(answer.content or {})}"
        )

    @server.tool(
        annotations=ASKS,
        name="test_elicitation_sep1330_enums",
        description="Tests elicitation with enum schema improvements per SEP-1330",
    )
    async def elicitation_enums(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        answer = await ask(
            ctx, "enums", form("Please select options from the enum fields", SEP1330_ENUMS), ElicitResult
        )
        if isinstance(answer, InputRequiredResult):
            return answer
        return text(
            f"Elicitation completed: action={answer.action}, content={json.dumps(answer.content or {})}"
        )

    _ = (sampling, elicitation, elicitation_defaults, elicitation_enums)


def _register_schema_tools(server: MCPServer[Any]) -> None:
    @server.tool(
        annotations=READ_ONLY,
        name="json_schema_2020_12_tool",
        description="Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
    )
    async def json_schema_2020_12_tool(
        name: str | None = None, address: Address | None = None
    ) -> CallToolResult:
        arguments = {"name": name, "address": address.model_dump() if address else None}
        return text(f"JSON Schema 2020-12 tool called with: {json.dumps(arguments)}")

    set_tool_input_schema(server, "json_schema_2020_12_tool", JSON_SCHEMA_2020_12)

    @server.tool(
        annotations=READ_ONLY,
        name="test_x_mcp_header",
        description="Echoes `region`, which the client also sends as the Mcp-Param-Region header (SEP-2243)",
    )
    async def x_mcp_header(
        region: Annotated[
            str,
            Field(
                description="A region name, mirrored in Mcp-Param-Region",
                json_schema_extra={"x-mcp-header": "Region"},
            ),
        ],
    ) -> CallToolResult:
        return text(f"region: {region}")

    _ = (json_schema_2020_12_tool, x_mcp_header)


def _register_multi_round_tools(server: MCPServer[Any]) -> None:
    @server.tool(
        annotations=READ_ONLY,
        name="test_missing_capability",
        description="Needs the sampling capability: without it the call fails with -32021 (2026-07-28)",
    )
    async def missing_capability(ctx: Context[Any, Any]) -> CallToolResult:
        _require(ctx, sample("unused", 1))
        return text("Success")

    @server.tool(
        annotations=ASKS,
        name="test_input_required_result_elicitation",
        description="MRTR: returns InputRequiredResult with elicitation request",
    )
    async def mrtr_elicitation(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        _modern_only(ctx, "test_input_required_result_elicitation")
        answer = await ask(ctx, "user_name", form("What is your name?", one_field("name")), ElicitResult)
        if isinstance(answer, InputRequiredResult):
            return answer
        return text(f"Hello, {field(answer, 'name')}!")

    @server.tool(
        annotations=ASKS,
        name="test_input_required_result_sampling",
        description="MRTR: returns InputRequiredResult with sampling request",
    )
    async def mrtr_sampling(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        _modern_only(ctx, "test_input_required_result_sampling")
        answer = await ask(
            ctx, "sample_request", sample("What is the capital of France?", 100), CreateMessageResult
        )
        if isinstance(answer, InputRequiredResult):
            return answer
        return text(f"Sampling result: {sampled_text(answer)}")

    @server.tool(
        annotations=ASKS,
        name="test_input_required_result_list_roots",
        description="MRTR: returns InputRequiredResult with roots/list request",
    )
    async def mrtr_list_roots(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        _modern_only(ctx, "test_input_required_result_list_roots")
        answer = await ask(ctx, "roots_request", ListRootsRequest(), ListRootsResult)
        if isinstance(answer, InputRequiredResult):
            return answer
        return text(f"Found {len(answer.roots)} root(s)")

    @server.tool(
        annotations=ASKS,
        name="test_input_required_result_request_state",
        description="MRTR: returns InputRequiredResult with requestState",
    )
    async def mrtr_request_state(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        _modern_only(ctx, "test_input_required_result_request_state")
        answer = _answer(ctx, "confirm", ElicitResult)
        if (
            _state(ctx).get("kind") == "request-state"
            and answer is not None
            and (answer.content or {}).get("ok")
        ):
            return text("state-ok: requestState validated")
        question = form("Please confirm", one_field("ok", "boolean"))
        _require(ctx, question)
        return InputRequiredResult(
            input_requests={"confirm": question}, request_state=json.dumps({"kind": "request-state"})
        )

    @server.tool(
        annotations=ASKS,
        name="test_input_required_result_multiple_inputs",
        description="MRTR: returns InputRequiredResult with multiple input requests",
    )
    async def mrtr_multiple_inputs(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        _modern_only(ctx, "test_input_required_result_multiple_inputs")
        name = _answer(ctx, "user_name", ElicitResult)
        greeting = _answer(ctx, "greeting", CreateMessageResult)
        roots = _answer(ctx, "client_roots", ListRootsResult)
        if _state(ctx).get("kind") == "multiple-inputs" and name and greeting and roots:
            return text(
                f"Name: {field(name, 'name')}; Greeting: {sampled_text(greeting)}; Roots: {len(roots.roots)}"
            )
        questions: dict[str, InputRequest] = {
            "user_name": form("What is your name?", one_field("name")),
            "greeting": sample("Generate a greeting", 50),
            "client_roots": ListRootsRequest(),
        }
        for question in questions.values():
            _require(ctx, question)
        return InputRequiredResult(
            input_requests=questions, request_state=json.dumps({"kind": "multiple-inputs"})
        )

    @server.tool(
        annotations=ASKS,
        name="test_input_required_result_multi_round",
        description="MRTR: multi-round InputRequiredResult workflow",
    )
    async def mrtr_multi_round(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        _modern_only(ctx, "test_input_required_result_multi_round")
        state = _state(ctx)
        step1 = _answer(ctx, "step1", ElicitResult)
        step2 = _answer(ctx, "step2", ElicitResult)
        if state.get("round") == 2 and step2 is not None:
            return text(
                f"Multi-round complete for {state.get('name', 'friend')} who likes {field(step2, 'color')}"
            )
        if state.get("round") == 1 and step1 is not None:
            question = form("Step 2: What is your favorite color?", one_field("color"))
            _require(ctx, question)
            next_state = {"round": 2, "name": field(step1, "name")}
            return InputRequiredResult(
                input_requests={"step2": question}, request_state=json.dumps(next_state)
            )
        question = form("Step 1: What is your name?", one_field("name"))
        _require(ctx, question)
        return InputRequiredResult(input_requests={"step1": question}, request_state=json.dumps({"round": 1}))

    @server.tool(
        annotations=ASKS,
        name="test_input_required_result_tampered_state",
        description="MRTR: requestState integrity test (the SDK seals the state and refuses a tampered one)",
    )
    async def mrtr_tampered_state(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        _modern_only(ctx, "test_input_required_result_tampered_state")
        if _state(ctx).get("kind") == "tamper-test" and _answer(ctx, "confirm", ElicitResult) is not None:
            return text("integrity-ok: state verified")
        question = form("Please confirm", one_field("ok", "boolean"))
        _require(ctx, question)
        return InputRequiredResult(
            input_requests={"confirm": question}, request_state=json.dumps({"kind": "tamper-test"})
        )

    @server.tool(
        annotations=ASKS,
        name="test_input_required_result_capabilities",
        description="MRTR: asks only for what the client declared it can answer (elicitation, sampling)",
    )
    async def mrtr_capabilities(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        _modern_only(ctx, "test_input_required_result_capabilities")
        if ctx.input_responses:
            return text(f"capabilities-ok: received {','.join(sorted(ctx.input_responses))}")
        questions: dict[str, InputRequest] = {}
        if _declares(ctx, "elicitation"):
            questions["elicit_input"] = form("Elicitation input", one_field("value"))
        if _declares(ctx, "sampling"):
            questions["sample_input"] = sample("Sample request", 50)
        if not questions:
            return text("No supported capabilities declared")
        return InputRequiredResult(
            input_requests=questions, request_state=json.dumps({"kind": "capabilities-test"})
        )

    _ = (
        missing_capability,
        mrtr_elicitation,
        mrtr_sampling,
        mrtr_list_roots,
        mrtr_request_state,
        mrtr_multiple_inputs,
        mrtr_multi_round,
        mrtr_tampered_state,
        mrtr_capabilities,
    )


def _register_diagnostic_tools(server: MCPServer[Any]) -> None:
    @server.tool(
        annotations=ASKS,
        name="test_streaming_elicitation",
        description=(
            "Reports progress, then asks for a value: in 2026-07-28 the request's stream carries "
            "notifications and an input_required result, never a server-to-client request"
        ),
    )
    async def streaming_elicitation(ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        await ctx.report_progress(50, 100, "Asking for a value")
        answer = await ask(ctx, "value", form("Please provide a value", one_field("value")), ElicitResult)
        if isinstance(answer, InputRequiredResult):
            return answer
        return text(f"Streaming complete: {field(answer, 'value')}")

    @server.tool(
        annotations=READ_ONLY,
        name="test_logging_tool",
        description="Logs one info message, sent only to a client that asked for logs (per-request level)",
    )
    async def logging_tool(ctx: Context[Any, Any]) -> CallToolResult:
        await send_log(ctx, "info", "Diagnostic trace logging activated", logger="conformance")
        return text("Logging evaluated")

    @server.tool(
        annotations=ACTS,
        name="test_trigger_tool_change",
        description="Announces a tools list change to subscribers (the list itself stays the same)",
    )
    async def trigger_tool_change(ctx: Context[Any, Any]) -> CallToolResult:
        await ctx.notify_tools_changed()
        if not is_modern(ctx) and ctx.session.can_send_request:
            await ctx.session.send_tool_list_changed()
        return text("Announced a tools list change")

    @server.tool(
        annotations=ACTS,
        name="test_trigger_prompt_change",
        description="Announces a prompts list change to subscribers (the list itself stays the same)",
    )
    async def trigger_prompt_change(ctx: Context[Any, Any]) -> CallToolResult:
        await ctx.notify_prompts_changed()
        if not is_modern(ctx) and ctx.session.can_send_request:
            await ctx.session.send_prompt_list_changed()
        return text("Announced a prompts list change")

    _ = (streaming_elicitation, logging_tool, trigger_tool_change, trigger_prompt_change)


def _register_resources(server: MCPServer[Any]) -> None:
    @server.resource(
        "test://static-text",
        name="static-text",
        title="Static Text Resource",
        description="A static text resource for testing",
        mime_type="text/plain",
    )
    async def static_text() -> str:
        return "This is the content of the static text resource."

    @server.resource(
        "test://static-binary",
        name="static-binary",
        title="Static Binary Resource",
        description="A static binary resource (image) for testing",
        mime_type=PNG_MIME,
    )
    async def static_binary() -> bytes:
        return tiny_png()

    @server.resource(
        "test://template/{id}/data",
        name="template",
        title="Resource Template",
        description="A resource template with parameter substitution",
        mime_type="application/json",
    )
    async def template(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @server.resource(
        "test://watched-resource",
        name="watched-resource",
        title="Watched Resource",
        description="A resource to subscribe to (resources/subscribe, subscriptions/listen)",
        mime_type="text/plain",
    )
    async def watched_resource() -> str:
        return "Watched resource content"

    _ = (static_text, static_binary, template, watched_resource)


def _register_prompts(server: MCPServer[Any]) -> None:
    @server.prompt(
        name="test_simple_prompt", title="Simple Test Prompt", description="A simple prompt without arguments"
    )
    async def simple_prompt() -> list[Message]:
        return [UserMessage("This is a simple prompt for testing.")]

    @server.prompt(
        name="test_prompt_with_arguments",
        title="Prompt With Arguments",
        description="A prompt with required arguments",
    )
    async def prompt_with_arguments(
        arg1: Annotated[str, Field(description="First test argument")],
        arg2: Annotated[str, Field(description="Second test argument")],
    ) -> list[Message]:
        return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]

    @server.prompt(
        name="test_prompt_with_embedded_resource",
        title="Prompt With Embedded Resource",
        description="A prompt that includes an embedded resource",
    )
    async def prompt_with_embedded_resource(
        resourceUri: Annotated[str, Field(description="URI of the resource to embed")],
    ) -> list[Message]:
        resource = TextResourceContents(
            uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
        )
        return [
            UserMessage(EmbeddedResource(type="resource", resource=resource)),
            UserMessage("Please process the embedded resource above."),
        ]

    @server.prompt(
        name="test_prompt_with_image",
        title="Prompt With Image",
        description="A prompt that includes image content",
    )
    async def prompt_with_image() -> list[Message]:
        return [
            UserMessage(ImageContent(type="image", data=b64(tiny_png()), mime_type=PNG_MIME)),
            UserMessage("Please analyze the image above."),
        ]

    @server.prompt(
        name="test_input_required_result_prompt",
        title="Prompt Needing Input",
        description="MRTR: prompt that requires elicitation input",
    )
    async def input_required_prompt(ctx: Context[Any, Any]) -> list[Message] | InputRequiredResult:
        _modern_only(ctx, "test_input_required_result_prompt")
        question = form("What context should the prompt use?", one_field("context"))
        answer = await ask(ctx, "user_context", question, ElicitResult)
        if isinstance(answer, InputRequiredResult):
            return answer
        return [UserMessage(f"Prompt with context: {field(answer, 'context')}")]

    _ = (
        simple_prompt,
        prompt_with_arguments,
        prompt_with_embedded_resource,
        prompt_with_image,
        input_required_prompt,
    )
