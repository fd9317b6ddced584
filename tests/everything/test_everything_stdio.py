"""`python -m servers.everything` over stdio, in both eras, with a client callback."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import StdioServerParameters

from servers.everything import conformance_fixtures
from tests.everything.harness import ERAS, call, texts

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
SPAWN_WAIT = 30.0
"""Seconds to start a Python process and import the SDK on a loaded 2-core box."""


@pytest.mark.parametrize("mode", ERAS)
async def test_stdio_serves_tools_and_asks_the_client(mode: str) -> None:
    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=f"over stdio in {mode}"), model="m"
        )

    params = StdioServerParameters(command=sys.executable, args=["-m", "servers.everything"], cwd=str(REPO))
    with anyio.fail_after(SPAWN_WAIT):
        async with Client(params, mode=mode, sampling_callback=sampling) as client:
            echoed = await call(client, "echo", {"message": mode})
            sampled = await call(client, "trigger-sampling-request", {"prompt": "hello"})
            listed = await client.list_resource_templates()
    assert texts(echoed) == [f"Echo: {mode}"]
    assert texts(sampled)[0] == f"LLM sampling result: over stdio in {mode}"
    assert len(listed.resource_templates) == 3 + len(conformance_fixtures.TEMPLATES)
