"""The drone-operations prompts check their arguments, through a real MCP client: a value outside
what the prompt declares is refused as invalid params naming the argument and its range (not an
"Internal server error"), and the square's last step asks for what `get_state` can report."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, TextContent

from servers.drone.runtime import DroneRuntime
from servers.drone.server import build_drone_server
from tests.drone_server.harness import drone_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # nothing here waits on time: the prompts need no running drone


@pytest.mark.parametrize(
    ("prompt", "arguments", "refusal"),
    [
        (
            "square_pattern",
            {"side_cm": "abc"},
            "prompt 'square_pattern': side_cm must be an integer between 20 and 200 (got 'abc')",
        ),
        (
            "square_pattern",
            {"side_cm": "5000"},
            "prompt 'square_pattern': side_cm must be an integer between 20 and 200 (got '5000')",
        ),
        (
            "square_pattern",
            {"side_cm": "19"},
            "prompt 'square_pattern': side_cm must be an integer between 20 and 200 (got '19')",
        ),
        (
            "hover_test",
            {"seconds": "-3"},
            "prompt 'hover_test': seconds must be an integer between 5 and 60 (got '-3')",
        ),
        (
            "hover_test",
            {"seconds": "2.5"},
            "prompt 'hover_test': seconds must be an integer between 5 and 60 (got '2.5')",
        ),
    ],
)
async def test_a_prompt_refuses_an_argument_outside_its_range(
    prompt: str, arguments: dict[str, str], refusal: str
) -> None:
    server, _ = build_drone_server(DroneRuntime(drone_settings()))
    async with Client(server) as client:
        with pytest.raises(MCPError) as raised:
            await client.get_prompt(prompt, arguments)
    assert raised.value.error.code == INVALID_PARAMS
    assert raised.value.error.message == refusal


async def _rendered(prompt: str, arguments: dict[str, str]) -> str:
    server, _ = build_drone_server(DroneRuntime(drone_settings()))
    async with Client(server) as client:
        got = await client.get_prompt(prompt, arguments)
    (message,) = got.messages
    assert isinstance(message.content, TextContent)
    return message.content.text


@pytest.mark.parametrize(
    ("prompt", "arguments", "says"),
    [
        ("square_pattern", {"side_cm": "20"}, "sides of 20 cm"),
        ("square_pattern", {"side_cm": "200"}, "sides of 200 cm"),
        ("hover_test", {"seconds": "60"}, "hover test of 60 seconds"),
        ("hover_test", {}, "default 10 if empty"),
    ],
)
async def test_a_prompt_renders_an_argument_in_range(
    prompt: str, arguments: dict[str, str], says: str
) -> None:
    assert says in await _rendered(prompt, arguments)


async def test_the_square_reads_its_final_position_before_landing() -> None:
    """On the ground `get_state` reports `position_estimate: null`: the last step reads it while
    hovering, then lands."""
    text = await _rendered("square_pattern", {"side_cm": "100"})
    last = text[text.index("4. ") :]
    assert last.index("`get_state`") < last.index("`land`")
    assert "position_estimate" in last
    assert "null" in last
    assert "final position estimate" not in text
