"""Tools that ask the client something: sampling, elicitation (form and URL), roots, and the staged
research query.

Each works in both eras without per-process state. Sampling, form elicitation and roots go
through the SDK's resolvers (`Resolve(...)`): a server-to-client request on the session in the
handshake era, an `input_required` round in 2026-07-28. URL elicitation and the research query
drive the 2026-07-28 rounds themselves; what they must remember between rounds travels in
`requestState`, which the SDK seals, so any replica can take the next round.

Every tool is listed whatever the client declared (a gateway lists one tool set for all its
clients); a call from a client without the capability fails with -32021 naming it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final, Literal

import anyio
from mcp.server.elicitation import (
    AcceptedElicitation,
    ElicitationResult,
    render_elicitation_schema,
)
from mcp.server.mcpserver import Context, Elicit, ListRoots, MCPServer, Resolve, Sample
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_REQUEST,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    CallToolResult,
    ClientCapabilities,
    CreateMessageResult,
    ElicitationCapability,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    InputRequiredResult,
    ListRootsResult,
    MissingRequiredClientCapabilityErrorData,
    SamplingMessage,
    TextContent,
    ToolAnnotations,
    UrlElicitationCapability,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field, ValidationError

from servers.everything.settings import EverythingSettings

ASKS: Final = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
ASKS_OPEN: Final = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)

STAGES: Final = ("Gathering sources", "Analyzing content", "Synthesizing findings", "Generating report")
CLARIFY_AT_STAGE: Final = 2
INTERPRETATIONS: Final = ("technical", "historical", "business")
NO_BACK_CHANNEL: Final = (
    "this handshake-era connection has no back-channel for server-to-client requests "
    "(stateless HTTP); use the 2026-07-28 protocol or a stateful session"
)
URL_KEY: Final = "url"
CLARIFY_KEY: Final = "clarify"


class DemoForm(BaseModel):
    """The form `trigger-elicitation-request` shows: one field of each primitive kind."""

    name: str = Field(title="String", description="Your full, legal name")
    check: bool = Field(default=False, title="Boolean", description="Agree to the terms and conditions")
    firstLine: str = Field(
        default="It was a dark and stormy night.",
        title="String with default",
        description="Favorite first line",
    )
    integer: int = Field(default=42, ge=1, le=100, title="Integer", description="Your favorite integer")
    number: float = Field(
        default=3.14, ge=0, le=1000, title="Number in range 0-1000", description="Any number"
    )
    friend: Literal["Monica", "Rachel", "Joey", "Chandler", "Ross", "Phoebe"] = Field(
        default="Monica", title="Single Select Enum", description="Choose your favorite friend"
    )


class Clarification(BaseModel):
    interpretation: Literal["technical", "historical", "business"] = Field(
        title="Clarification", description="Which interpretation of the topic do you mean?"
    )


# ---- resolvers (module level: their qualified names key the 2026-07-28 rounds) ----


async def ask_form() -> Elicit[DemoForm]:
    return Elicit("Please provide inputs for the following fields:", DemoForm)


async def ask_roots() -> ListRoots:
    return ListRoots()


async def ask_model(prompt: str, maxTokens: int) -> Sample:
    return Sample(
        [
            SamplingMessage(
                role="user",
                content=TextContent(type="text", text=f"Resource trigger-sampling-request context: {prompt}"),
            )
        ],
        max_tokens=maxTokens,
        system_prompt="You are a helpful test server.",
        temperature=0.7,
    )


# ---- helpers ----


def is_modern(ctx: Context[Any, Any]) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def _missing(capability: ClientCapabilities, name: str) -> MCPError:
    data = MissingRequiredClientCapabilityErrorData(required_capabilities=capability)
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=f"Client did not declare the {name} capability",
        data=data.model_dump(by_alias=True, mode="json", exclude_none=True),
    )


def _can_elicit_form(ctx: Context[Any, Any]) -> bool:
    elicitation = ctx.client_capabilities.elicitation if ctx.client_capabilities else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _can_elicit_url(ctx: Context[Any, Any]) -> bool:
    elicitation = ctx.client_capabilities.elicitation if ctx.client_capabilities else None
    return elicitation is not None and elicitation.url is not None


def _answer(ctx: Context[Any, Any], key: str) -> ElicitResult | None:
    """This round's answer to the question `key`, if the client sent one."""
    answer = (ctx.input_responses or {}).get(key)
    if answer is None:
        return None
    if not isinstance(answer, ElicitResult):
        raise MCPError(code=-32602, message=f"input response {key!r} is not an elicitation result")
    return answer


def _text(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)])


# ---- registration ----


def register_interactive_tools(server: MCPServer[Any], settings: EverythingSettings) -> None:
    @server.tool(
        name="trigger-sampling-request",
        title="Trigger Sampling Request",
        description="Asks the client's LLM to complete `prompt` (needs the sampling capability)",
        annotations=ASKS_OPEN,
    )
    async def trigger_sampling_request(
        prompt: Annotated[str, Field(description="The prompt to send to the LLM")],
        sampled: Annotated[CreateMessageResult, Resolve(ask_model)],
        maxTokens: Annotated[int, Field(ge=1, le=100_000, description="Maximum tokens to generate")] = 100,
    ) -> CallToolResult:
        reply = (
            sampled.content.text if isinstance(sampled.content, TextContent) else f"[{sampled.content.type}]"
        )
        return CallToolResult(
            content=[
                TextContent(type="text", text=f"LLM sampling result: {reply}"),
                TextContent(type="text", text=sampled.model_dump_json(by_alias=True, exclude_none=True)),
            ]
        )

    @server.tool(
        name="trigger-elicitation-request",
        title="Trigger Elicitation Request",
        description="Asks the user to fill in a form (needs the elicitation capability)",
        annotations=ASKS,
    )
    async def trigger_elicitation_request(
        answer: Annotated[ElicitationResult[DemoForm], Resolve(ask_form)],
    ) -> CallToolResult:
        if isinstance(answer, AcceptedElicitation):
            return CallToolResult(
                content=[
                    TextContent(type="text", text="User provided the requested information!"),
                    TextContent(type="text", text=answer.data.model_dump_json()),
                ],
                structured_content={"action": "accept", "content": answer.data.model_dump()},
            )
        return CallToolResult(
            content=[TextContent(type="text", text=f"User {answer.action}d the elicitation.")],
            structured_content={"action": answer.action},
        )

    @server.tool(
        name="get-roots-list",
        title="Get Roots List",
        description="Lists the roots the client exposes (needs the roots capability)",
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def get_roots_list(roots: Annotated[ListRootsResult, Resolve(ask_roots)]) -> CallToolResult:
        if not roots.roots:
            return _text("The client exposes no roots.")
        lines = [f"- {root.name or '(unnamed)'}: {root.uri}" for root in roots.roots]
        return _text(f"The client exposes {len(roots.roots)} root(s):\n" + "\n".join(lines))

    @server.tool(
        name="trigger-url-elicitation",
        title="Trigger URL Elicitation",
        description=(
            "Asks the client to send the user to `url` (URL-mode elicitation; needs elicitation.url). "
            "The server never fetches the URL"
        ),
        annotations=ASKS_OPEN,
    )
    async def trigger_url_elicitation(
        ctx: Context[Any, Any],
        url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", description="The URL the user should open")],
        message: str = "Please open the link to complete this action.",
        elicitationId: str | None = None,
    ) -> CallToolResult | InputRequiredResult:
        if not is_modern(ctx) and not ctx.session.can_send_request:
            raise MCPError(code=INVALID_REQUEST, message=NO_BACK_CHANNEL)
        if not _can_elicit_url(ctx):
            raise _missing(
                ClientCapabilities(elicitation=ElicitationCapability(url=UrlElicitationCapability())),
                "elicitation.url",
            )
        if not is_modern(ctx):
            elicitation_id = elicitationId or str(uuid.uuid4())
            outcome = await ctx.elicit_url(message, url, elicitation_id)
            return _url_outcome(outcome.action, elicitation_id, url)
        answer = _answer(ctx, URL_KEY)
        # The id rides the sealed requestState: an answer counts only for the question we asked.
        if answer is not None and ctx.request_state is not None:
            return _url_outcome(answer.action, ctx.request_state, url)
        elicitation_id = elicitationId or str(uuid.uuid4())
        request = ElicitRequest(
            params=ElicitRequestURLParams(mode="url", message=message, url=url, elicitation_id=elicitation_id)
        )
        return InputRequiredResult(input_requests={URL_KEY: request}, request_state=elicitation_id)

    @server.tool(
        name="simulate-research-query",
        title="Simulate Research Query",
        description=(
            "A staged research operation (four stages, progress after each). With ambiguous=true it asks "
            "the user to clarify the topic when the client can elicit. In 2026-07-28 each stage is its "
            "own round: the call returns input_required with sealed state and the client retries, so "
            "any replica can continue the work"
        ),
        annotations=ASKS,
    )
    async def simulate_research_query(
        ctx: Context[Any, Any],
        topic: Annotated[str, Field(min_length=1, max_length=500, description="The research topic")],
        ambiguous: Annotated[bool, Field(description="Ask for a clarification midway")] = False,
    ) -> CallToolResult | InputRequiredResult:
        if is_modern(ctx):
            return await _research_round(ctx, topic, ambiguous, settings)
        clarification: str | None = None
        for stage, label in enumerate(STAGES):
            if stage == CLARIFY_AT_STAGE and ambiguous:
                clarification = await _clarify_legacy(ctx, topic)
            await ctx.report_progress(stage, len(STAGES), f"{label}...")
            await anyio.sleep(settings.research_stage_s)
        await ctx.report_progress(len(STAGES), len(STAGES), "Done")
        return _report(topic, clarification)

    _ = (
        trigger_sampling_request,
        trigger_elicitation_request,
        get_roots_list,
        trigger_url_elicitation,
        simulate_research_query,
    )


def _url_outcome(action: str, elicitation_id: str, url: str) -> CallToolResult:
    text = {
        "accept": f"User completed the URL elicitation flow.\nElicitation ID: {elicitation_id}\nURL: {url}",
        "decline": f"User declined to open the URL (Elicitation ID: {elicitation_id}).",
        "cancel": f"User cancelled the URL elicitation (Elicitation ID: {elicitation_id}).",
    }[action]
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content={"action": action, "elicitationId": elicitation_id},
    )


def _clarify_message(topic: str) -> str:
    return f'The research query "{topic}" could have multiple interpretations. Please clarify:'


def _clarification_of(action: str, content: Any) -> str:
    if action == "accept":
        try:
            return Clarification.model_validate(content).interpretation
        except ValidationError:
            return "technical (default - invalid clarification)"
    return f"technical (default - user {action}d)"


async def _clarify_legacy(ctx: Context[Any, Any], topic: str) -> str:
    if not _can_elicit_form(ctx) or not ctx.session.can_send_request:
        return "technical (default - elicitation unavailable)"
    outcome = await ctx.elicit(_clarify_message(topic), Clarification)
    if isinstance(outcome, AcceptedElicitation):
        return outcome.data.interpretation
    return _clarification_of(outcome.action, None)


class _ResearchState(BaseModel):
    stage: int = 0
    clarification: str | None = None
    asked: bool = False


async def _research_round(
    ctx: Context[Any, Any], topic: str, ambiguous: bool, settings: EverythingSettings
) -> CallToolResult | InputRequiredResult:
    """One stage per round; the state between rounds is the sealed `requestState`."""
    state = (
        _ResearchState()
        if ctx.request_state is None
        else _ResearchState.model_validate_json(ctx.request_state)
    )
    if state.stage == CLARIFY_AT_STAGE and ambiguous and state.clarification is None:
        answer = _answer(ctx, CLARIFY_KEY) if state.asked else None
        if answer is not None:
            state.clarification = _clarification_of(answer.action, answer.content)
        elif not _can_elicit_form(ctx):
            state.clarification = "technical (default - elicitation unavailable)"
        else:
            await ctx.report_progress(state.stage, len(STAGES), "Waiting for a clarification...")
            question = ElicitRequest(
                params=ElicitRequestFormParams(
                    message=_clarify_message(topic), requested_schema=render_elicitation_schema(Clarification)
                )
            )
            state.asked = True
            return InputRequiredResult(
                input_requests={CLARIFY_KEY: question}, request_state=state.model_dump_json()
            )
    await ctx.report_progress(state.stage, len(STAGES), f"{STAGES[state.stage]}...")
    await anyio.sleep(settings.research_stage_s)
    state.stage += 1
    if state.stage < len(STAGES):
        return InputRequiredResult(request_state=state.model_dump_json())
    await ctx.report_progress(len(STAGES), len(STAGES), "Done")
    return _report(topic, state.clarification)


def _report(topic: str, clarification: str | None) -> CallToolResult:
    heading = f"{topic} ({clarification})" if clarification else topic
    stages = "\n".join(f"- Stage {i + 1}: {label} \u2713" for i, label in enumerate(STAGES))
    lines = [f"# Research Report: {heading}", "", "## Research Parameters", f"- **Topic**: {topic}"]
    if clarification:
        lines.append(f"- **Clarification**: {clarification}")
    lines += ["", "## Synthesis", f"This research query was processed through {len(STAGES)} stages:", stages]
    return CallToolResult(
        content=[TextContent(type="text", text="\n".join(lines))],
        structured_content={"topic": topic, "clarification": clarification, "stages": list(STAGES)},
    )
