"""Admission's turns (`servers.admission.Turns`) on virtual time: at most `size` requests are
processed at once, the rest wait in arrival order, and a turn ends when it is given back or
`hold_s` after it began, so a request that waits (a move, a question to the human) can neither
hold the others back for long nor deadlock them."""

from __future__ import annotations

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from servers.admission import Admission, AdmissionSettings, Turns

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]


async def test_at_most_size_hold_a_turn_and_the_rest_enter_in_arrival_order() -> None:
    turns = Turns(2, hold_s=10.0)
    entered: list[int] = []
    tickets: dict[int, int] = {}

    async def request(i: int) -> None:
        tickets[i] = await turns.take()
        entered.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(request, i)
            await anyio.sleep(0.001)  # arrive in this order
        assert entered == [0, 1]
        assert (turns.holding, turns.waiting) == (2, 3)
        turns.give(tickets[1])
        await anyio.sleep(0.001)
        assert entered == [0, 1, 2]
        turns.give(tickets[0])
        await anyio.sleep(0.001)
        assert entered == [0, 1, 2, 3]
        turns.give(tickets[2])
        await anyio.sleep(0.001)
        assert entered == [0, 1, 2, 3, 4]
    turns.give(tickets[3])
    turns.give(tickets[4])
    assert (turns.holding, turns.waiting) == (0, 0)


async def test_a_turn_never_given_back_ends_after_hold_s() -> None:
    turns = Turns(1, hold_s=0.05)
    await turns.take()  # a request that waits on something for a long time, holding its turn
    began = anyio.current_time()
    with anyio.fail_after(1.0):
        second = await turns.take()
    assert anyio.current_time() - began == pytest.approx(0.05)
    turns.give(second)
    assert turns.holding == 0


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    turns = Turns(1, hold_s=10.0)
    first = await turns.take()
    with anyio.move_on_after(1.0):
        await turns.take()
    assert (turns.holding, turns.waiting) == (1, 0)
    turns.give(first)
    with anyio.fail_after(0.001):
        await turns.take()  # free at once: the cancelled waiter took nothing


def test_turn_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="turn_s"):
        AdmissionSettings(turn_s=0)
    with pytest.raises(ValueError, match="0 \\(off\\) or positive"):
        AdmissionSettings(turns=-1)


async def test_the_slot_is_free_before_the_answer_leaves() -> None:
    """A keep-alive client sends its next request the moment it has the answer: by then it
    must no longer be counted, or a client at its bound is shed for a request already done."""
    counted_when_answered: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    admission = Admission(app, settings=AdmissionSettings(total=1, per_client=1), mounts=["/mcp"])

    async def outer_send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            counted_when_answered.append(admission.in_flight + sum(admission.by_client.values()))

    async def receive() -> Message:
        return {"type": "http.request", "body": b'{"jsonrpc":"2.0","id":1,"method":"ping"}'}

    scope: Scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": []}
    scope["client"] = ("10.0.0.1", 1)
    for _ in range(3):
        await admission(scope, receive, outer_send)
    assert counted_when_answered == [0, 0, 0]
    assert admission.in_flight == 0
    assert not admission.by_client
