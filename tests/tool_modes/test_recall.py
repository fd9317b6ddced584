"""`get_tool` finds tools by what a person means, on the labelled paraphrases of `queries/`.

The queries were written from what a person wants, before reading the tool descriptions, for
the drone and everything servers. Only the tuning part is asserted here; the held-out part is
never scored by a test (so nothing is tuned against it) and its figures are in the README,
from `python -m benchmarks.ranking`.

The floors are what today's ranking (BM25 over names, titles and descriptions) reaches, far
below the goal of recall@1 >= 0.9 and recall@3 >= 0.97: they catch regressions, they do not
claim the goal. A word-vector ranking (WordLlama) reached drone 0.56 / 0.79 and everything
0.88 / 1.00 on these tuning queries but was not adopted: it missed the goal too, loads ~1 s on
the event loop at the first query, and its vectors' licence is unclear.
"""

from __future__ import annotations

from typing import Final

import pytest
from mcp_types import Tool

from benchmarks.ranking import PARTS, SERVERS, load_queries, recall, tool_sets
from tool_modes.ranking import ToolIndex

FLOORS: Final = {"drone": (0.39, 0.50), "everything": (0.70, 0.80)}
"""(recall@1, recall@3) on each server's tuning part, just under today's 0.40 / 0.51 and
0.71 / 0.82 (`python -m benchmarks.ranking` prints both parts)."""


@pytest.fixture(scope="module")
def tools() -> dict[str, list[Tool]]:
    return tool_sets()


def test_the_labelled_set_is_large_and_names_real_tools(tools: dict[str, list[Tool]]) -> None:
    total = 0
    for server in SERVERS:
        names = {t.name for t in tools[server]}
        for part in PARTS:
            rows = load_queries(server, part)
            total += len(rows)
            assert {want for _, want in rows} == names, (server, part)  # every tool, nothing else
            assert len({q for q, _ in rows}) == len(rows), (server, part)
        tune = {q for q, _ in load_queries(server, "tune")}
        assert not tune & {q for q, _ in load_queries(server, "held-out")}
    assert total >= 100


@pytest.mark.parametrize("server", SERVERS)
def test_recall_on_the_tuning_queries(server: str, tools: dict[str, list[Tool]]) -> None:
    figure = recall(ToolIndex(tools[server]), load_queries(server, "tune"))
    at_1, at_3 = FLOORS[server]
    assert figure.at_1 >= at_1, figure.misses
    assert figure.at_3 >= at_3, figure.misses


def test_gibberish_still_matches_nothing(tools: dict[str, list[Tool]]) -> None:
    index = ToolIndex(tools["everything"])
    assert index.search("zzqx wibble", limit=3) == []
    assert index.search("", limit=3) == []


# The generic facades speak about the tools they serve: their examples come from the tool set.


@pytest.mark.anyio
async def test_get_tool_examples_come_from_the_served_tools() -> None:
    import anyio
    from mcp import Client

    from servers.everything.server import build_everything_server
    from tool_modes.modes import build_mode_server

    search = build_mode_server(build_everything_server(), "search")
    with anyio.fail_after(10):
        async with Client(search) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
    description = listed["get_tool"].description or ""
    assert '(e.g. "echo", "get sum")' in description
    assert "battery" not in description


def test_run_code_example_calls_a_served_tool(tools: dict[str, list[Tool]]) -> None:
    from tool_modes.sandbox.api import describe_api

    everything = describe_api(tools["everything"], index_only=False)
    assert "await echo({message: 'text'})" in everything
    assert "move(" not in everything
    drone = describe_api(tools["drone"], index_only=True)
    assert "await get_sensor({sensor: 'height'})" in drone
