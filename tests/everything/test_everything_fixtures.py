"""The conformance suite's fixtures (`servers/everything/conformance_fixtures.py`) through a real
`mcp.Client`, in memory, in both eras: the fast half of what `tests/conformance/` checks with
the suite itself over HTTP."""

from __future__ import annotations

import random
import uuid

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError

from servers.everything.conformance_fixtures import JSON_SCHEMA_2020_12
from tests.everything.harness import WAIT, call, connect, texts

pytestmark = pytest.mark.anyio

MEMORY = ("memory-legacy", "memory-2026-07-28")


@pytest.mark.parametrize("transport", MEMORY)
async def test_unknown_prompt_and_missing_arguments_are_invalid_params(transport: str) -> None:
    """Both are the client's mistake: -32602 naming it, in both eras (2026-07-28 used to say
    "Internal server error")."""
    name = f"no-such-prompt-{uuid.uuid4().hex[:6]}"
    async with connect(transport) as client:
        with anyio.fail_after(WAIT):
            with pytest.raises(MCPError) as unknown:
                await client.get_prompt(name)
            with pytest.raises(MCPError) as missing:
                await client.get_prompt("test_prompt_with_arguments", {"arg1": "only one"})
            with pytest.raises(MCPError) as bad_value:
                await client.get_prompt("resource-prompt", {"resourceType": "Video", "resourceId": "1"})
    assert unknown.value.error.code == types.INVALID_PARAMS
    assert name in unknown.value.error.message
    assert missing.value.error.code == types.INVALID_PARAMS
    assert "arg2" in missing.value.error.message
    assert bad_value.value.error.code == types.INVALID_PARAMS
    assert "resourceType" in bad_value.value.error.message


@pytest.mark.parametrize("transport", MEMORY)
async def test_prompt_arguments_are_substituted(transport: str) -> None:
    arg1, arg2 = uuid.uuid4().hex[:6], uuid.uuid4().hex[:6]
    async with connect(transport) as client:
        with anyio.fail_after(WAIT):
            result = await client.get_prompt("test_prompt_with_arguments", {"arg1": arg1, "arg2": arg2})
    (message,) = result.messages
    assert isinstance(message.content, types.TextContent)
    assert message.content.text == f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@pytest.mark.parametrize("transport", MEMORY)
async def test_json_schema_2020_12_tool_lists_its_schema_verbatim(transport: str) -> None:
    async with connect(transport) as client:
        with anyio.fail_after(WAIT):
            tools = {t.name: t for t in (await client.list_tools()).tools}
            called = await call(
                client, "json_schema_2020_12_tool", {"name": "Ada", "address": {"city": "Paris"}}
            )
    schema = tools["json_schema_2020_12_tool"].input_schema
    assert schema == JSON_SCHEMA_2020_12
    assert schema["$defs"]["address"]["$anchor"] == "addressDef"
    assert "Paris" in texts(called)[0]


@pytest.mark.parametrize("transport", MEMORY)
async def test_template_fixture_substitutes_its_id(transport: str) -> None:
    resource_id = str(random.randint(1, 10**6))
    async with connect(transport) as client:
        with anyio.fail_after(WAIT):
            read = await client.read_resource(f"test://template/{resource_id}/data")
    (content,) = read.contents
    assert isinstance(content, types.TextResourceContents)
    assert f'"id": "{resource_id}"' in content.text


async def test_multi_round_fixture_carries_its_state_between_rounds() -> None:
    """Round two's question depends on round one's answer, which only the sealed requestState
    carries back (the server keeps nothing)."""
    name, color = f"user-{uuid.uuid4().hex[:4]}", random.choice(["red", "green", "blue"])
    asked: list[str] = []

    async def answer(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        asked.append(params.message)
        field = next(iter(params.requested_schema["properties"]))
        return types.ElicitResult(action="accept", content={field: name if field == "name" else color})

    async with connect("memory-2026-07-28", elicitation_callback=answer) as client:
        result = await call(client, "test_input_required_result_multi_round")
    assert asked == ["Step 1: What is your name?", "Step 2: What is your favorite color?"]
    assert texts(result) == [f"Multi-round complete for {name} who likes {color}"]


async def test_missing_capability_fixture_names_the_capability() -> None:
    async with connect("memory-2026-07-28") as client:
        with anyio.fail_after(WAIT), pytest.raises(MCPError) as refused:
            await client.call_tool("test_missing_capability", {})
    assert refused.value.error.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY
    assert "sampling" in refused.value.error.message


async def test_multi_round_fixtures_refuse_the_handshake_era() -> None:
    async with connect("memory-legacy") as client:
        with anyio.fail_after(WAIT), pytest.raises(MCPError) as refused:
            await client.call_tool("test_input_required_result_elicitation", {})
    assert refused.value.error.code == types.INVALID_REQUEST
    assert "2026-07-28" in refused.value.error.message
