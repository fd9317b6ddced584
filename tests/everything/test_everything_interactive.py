"""Tools that ask the client: sampling, form and URL elicitation, roots, and the staged research
query - with real client callbacks, in memory and over HTTP, in both eras (the handshake era over
the session's back-channel, 2026-07-28 through `input_required` rounds)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import FileUrl

from servers.everything import EverythingSettings, build_everything_server
from servers.http import HttpSettings
from tests.everything.harness import FAST, TRANSPORTS, WAIT, call, connect, mode_of, serving, texts

pytestmark = pytest.mark.anyio

ElicitParams = types.ElicitRequestFormParams | types.ElicitRequestURLParams


class Recorder:
    """Client callbacks that answer as a scripted user and remember what they were asked."""

    def __init__(self, *, action: str = "accept", interpretation: str = "historical") -> None:
        self.action = action
        self.interpretation = interpretation
        self.reply = f"model-says-{uuid.uuid4().hex[:8]}"
        self.sampled: list[types.CreateMessageRequestParams] = []
        self.elicited: list[ElicitParams] = []
        self.roots = [
            types.Root(uri=FileUrl(f"file:///work/{uuid.uuid4().hex[:6]}"), name="work"),
            types.Root(uri=FileUrl("file:///tmp"), name="tmp"),
        ]

    async def sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.sampled.append(params)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=self.reply), model="scripted"
        )

    async def elicitation(self, context: ClientRequestContext, params: ElicitParams) -> types.ElicitResult:
        self.elicited.append(params)
        if self.action != "accept" or isinstance(params, types.ElicitRequestURLParams):
            return types.ElicitResult(action=self.action)  # type: ignore[arg-type]
        if "interpretation" in params.requested_schema["properties"]:
            return types.ElicitResult(action="accept", content={"interpretation": self.interpretation})
        return types.ElicitResult(
            action="accept", content={"name": "Ada Lovelace", "integer": 7, "check": True}
        )

    async def list_roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(roots=self.roots)

    def options(self) -> dict[str, Any]:
        return {
            "sampling_callback": self.sampling,
            "elicitation_callback": self.elicitation,
            "list_roots_callback": self.list_roots,
        }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sampling_request_reaches_the_client_model(transport: str, everything_url: str) -> None:
    user = Recorder()
    prompt = f"tell me about {uuid.uuid4().hex[:6]}"
    async with connect(transport, everything_url, **user.options()) as client:
        result = await call(client, "trigger-sampling-request", {"prompt": prompt, "maxTokens": 33})
    (asked,) = user.sampled
    assert asked.max_tokens == 33
    assert isinstance(asked.messages[0].content, types.TextContent)
    assert prompt in asked.messages[0].content.text
    assert texts(result)[0] == f"LLM sampling result: {user.reply}"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_form_elicitation(transport: str, everything_url: str) -> None:
    for action in ("accept", "decline", "cancel"):
        user = Recorder(action=action)
        async with connect(transport, everything_url, **user.options()) as client:
            result = await call(client, "trigger-elicitation-request")
        (asked,) = user.elicited
        assert isinstance(asked, types.ElicitRequestFormParams)
        schema = asked.requested_schema
        assert schema["required"] == ["name"]
        kinds = {prop["type"] for prop in schema["properties"].values()}
        assert kinds == {"string", "boolean", "integer", "number"}
        assert result.structured_content is not None
        assert result.structured_content["action"] == action
        if action == "accept":
            content = result.structured_content["content"]
            assert (content["name"], content["integer"], content["check"]) == ("Ada Lovelace", 7, True)
            assert content["firstLine"] == "It was a dark and stormy night."  # the default filled in


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_url_elicitation_hands_the_url_over(transport: str, everything_url: str) -> None:
    user = Recorder()
    url = f"https://example.com/authorize/{uuid.uuid4().hex}"
    elicitation_id = uuid.uuid4().hex
    async with connect(transport, everything_url, **user.options()) as client:
        result = await call(client, "trigger-url-elicitation", {"url": url, "elicitationId": elicitation_id})
        refused = await client.call_tool("trigger-url-elicitation", {"url": "file:///etc/passwd"})
    (asked,) = user.elicited
    assert isinstance(asked, types.ElicitRequestURLParams)
    assert asked.url == url
    # 2026-07-28 dropped elicitationId from the wire (no completion notification to correlate).
    assert asked.elicitation_id == (None if mode_of(transport) == "2026-07-28" else elicitation_id)
    assert result.structured_content == {"action": "accept", "elicitationId": elicitation_id}
    assert refused.is_error


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_roots_list(transport: str, everything_url: str) -> None:
    user = Recorder()
    async with connect(transport, everything_url, **user.options()) as client:
        result = await call(client, "get-roots-list")
    text = texts(result)[0]
    assert f"{len(user.roots)} root(s)" in text
    for root in user.roots:
        assert str(root.uri) in text


NEEDS = [
    ("trigger-sampling-request", {"prompt": "hi"}, "sampling"),
    ("trigger-elicitation-request", {}, "elicitation"),
    ("trigger-url-elicitation", {"url": "https://example.com/"}, "elicitation"),
    ("get-roots-list", {}, "roots"),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_missing_client_capability_is_named(transport: str, everything_url: str) -> None:
    async with connect(transport, everything_url) as client:
        for tool, arguments, capability in NEEDS:
            with anyio.fail_after(WAIT), pytest.raises(MCPError) as raised:
                await client.call_tool(tool, arguments)
            assert raised.value.error.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY
            assert capability in raised.value.error.message
            assert isinstance(raised.value.error.data, dict)
            assert capability in raised.value.error.data["requiredCapabilities"]


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("ambiguous", [False, True])
async def test_research_query_runs_its_stages(transport: str, ambiguous: bool, everything_url: str) -> None:
    user = Recorder(interpretation=random.choice(["technical", "historical", "business"]))
    topic = f"topic {uuid.uuid4().hex[:6]}"
    progress = Progress()
    async with connect(transport, everything_url, **user.options()) as client:
        with anyio.fail_after(WAIT):
            result = await client.call_tool(
                "simulate-research-query",
                {"topic": topic, "ambiguous": ambiguous},
                progress_callback=progress,
            )
    assert not result.is_error, texts(result)
    assert result.structured_content is not None
    assert result.structured_content["topic"] == topic
    stages = [message for _, _, message in progress.seen]
    assert stages[-1] == "Done"
    for label in (
        "Gathering sources...",
        "Analyzing content...",
        "Synthesizing findings...",
        "Generating report...",
    ):
        assert label in stages
    assert [p for p, _, _ in progress.seen] == sorted(p for p, _, _ in progress.seen)
    if ambiguous:
        (asked,) = user.elicited
        assert isinstance(asked, types.ElicitRequestFormParams)
        assert topic in asked.message
        assert result.structured_content["clarification"] == user.interpretation
        assert f"({user.interpretation})" in texts(result)[0]
    else:
        assert user.elicited == []
        assert result.structured_content["clarification"] is None


@pytest.mark.parametrize("transport", ["memory-legacy", "memory-2026-07-28"])
async def test_research_query_without_elicitation_uses_a_default(transport: str, everything_url: str) -> None:
    async with connect(transport, everything_url) as client:
        result = await call(client, "simulate-research-query", {"topic": "tides", "ambiguous": True})
    assert result.structured_content is not None
    assert "elicitation unavailable" in result.structured_content["clarification"]


async def test_any_replica_continues_a_2026_call() -> None:
    """Two replicas sharing the requestState key: round one on A, every later round on B."""
    keys = (uuid.uuid4().hex,)
    settings = EverythingSettings(research_stage_s=FAST.research_stage_s, request_state_keys=keys)
    stranger = EverythingSettings(research_stage_s=FAST.research_stage_s)
    user = Recorder(interpretation="business")
    arguments = {"topic": "replicas", "ambiguous": True}
    servers = [build_everything_server(s) for s in (settings, settings, stranger)]
    async with (
        serving(*servers) as (url_a, url_b, url_c),
        Client(url_a, mode="2026-07-28", **user.options()) as a,
        Client(url_b, mode="2026-07-28", **user.options()) as b,
        Client(url_c, mode="2026-07-28", **user.options()) as c,
    ):
        with anyio.fail_after(WAIT):
            first = await a.session.call_tool("simulate-research-query", arguments, allow_input_required=True)
            assert isinstance(first, types.InputRequiredResult)
            assert first.request_state
            assert not first.input_requests  # stage one done, nothing to ask yet
            finished = await b.call_tool(
                "simulate-research-query", arguments, request_state=first.request_state
            )
            with pytest.raises(MCPError) as forged:
                await c.call_tool("simulate-research-query", arguments, request_state=first.request_state)
    assert not finished.is_error, texts(finished)
    assert finished.structured_content is not None
    assert finished.structured_content["clarification"] == "business"
    assert forged.value.error.code == types.INVALID_PARAMS  # a replica without the key refuses it


async def test_stateless_handshake_http_has_no_back_channel() -> None:
    """`HttpSettings(stateless=True)`: handshake-era calls that need the client fail clearly or degrade."""
    user = Recorder()
    http = HttpSettings(port=0, shutdown_timeout=1.0, stateless=True)
    failures: list[str] = []
    async with (
        serving(build_everything_server(FAST), http=http) as (url,),
        Client(url, mode="legacy", **user.options()) as client,
    ):
        with anyio.fail_after(WAIT):
            research = await call(client, "simulate-research-query", {"topic": "tides", "ambiguous": True})
            for tool, arguments, _ in NEEDS:
                with pytest.raises(MCPError) as raised:
                    await client.call_tool(tool, arguments)
                failures.append(raised.value.error.message)
    assert research.structured_content is not None
    assert "elicitation unavailable" in research.structured_content["clarification"]
    assert len(failures) == len(NEEDS)
    assert all("back-channel" in message for message in failures), failures
    assert user.sampled == []
    assert user.elicited == []
