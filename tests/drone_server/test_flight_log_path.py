"""The flight log (and so the deck's "who flies") names the path each call came in on: the
tool mode an agent uses, beside its identity."""

from __future__ import annotations

import json

import anyio
import pytest
from mcp import Client
from mcp_types import TextResourceContents

from servers.deck.hub import Deck
from tests.drone_server.harness import serving, text_of

pytestmark = pytest.mark.anyio


async def test_each_flight_log_entry_names_its_path() -> None:
    async with serving() as served:
        with anyio.fail_after(60):
            async with Client(f"{served.base}/drone-search") as search:
                took_off = await search.call_tool("invoke_tool", {"name": "takeoff", "arguments": {}})
                assert not took_off.is_error, text_of(took_off)
            async with Client(served.url) as standard:
                landed = await standard.call_tool("land", {})
                assert not landed.is_error, text_of(landed)
                log = await standard.read_resource("drone://flight-log")
    assert isinstance(log.contents[0], TextResourceContents)
    entries = {e["command"]: e for e in json.loads(log.contents[0].text)}
    assert entries["takeoff"]["path"] == "/drone-search"
    assert entries["takeoff"]["tool"] == "takeoff"
    assert entries["land"]["tool"] == "land"
    assert entries["battery?"]["tool"] == "takeoff"  # the read a takeoff makes first
    assert entries["land"]["path"] == "/drone"
    assert entries["takeoff"]["client"] == entries["land"]["client"] == "127.0.0.1"


async def test_who_flies_lists_an_agent_that_only_reads() -> None:
    """An agent that never sends the drone a flight command is still in the room: the deck's
    "who flies" lists every client that called a drone tool, by path, with its last tool."""
    async with serving() as served:
        with anyio.fail_after(60):
            async with Client(f"{served.base}/drone-search") as reader:
                for _ in range(3):
                    read = await reader.call_tool("invoke_tool", {"name": "get_state", "arguments": {}})
                    assert not read.is_error, text_of(read)
            async with Client(served.url) as flier:
                assert not (await flier.call_tool("get_battery", {})).is_error
            agents = Deck(served.runtime).snapshot()["agents"]
    assert [(a["client"], a["path"], a["calls"], a["last_call"]) for a in agents] == [
        ("127.0.0.1", "/drone", 1, "get_battery"),
        ("127.0.0.1", "/drone-search", 3, "get_state"),
    ]
