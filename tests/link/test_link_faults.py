"""The fault matrix: one scripted flight per fault, judged by the simulator's ground truth.

Each case flies a session a careful caller would fly under that fault (look before acting
again after an unknown outcome), then lifts the fault and checks the link recovers. The
common verdict (`_verdict`) is the same for every case:

- every call ended with a reply or a documented error (`Rig.call` rejects anything else);
- no flight action reached the drone twice, and a reported success is backed by the drone's
  own record of that very command, finished before the caller heard `ok` (`verify_calls`);
- a `wait_changed` watcher learned of every connected -> stale change no later than
  `stale_after_s` + one state interval after the last state packet;
- once the fault is lifted the link is connected again and a live read matches the truth.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio
import pytest

from drone_sim import EventKind, FlightState, Outcome
from servers.drone.core import commands
from servers.drone.core.commands import Command
from servers.drone.core.errors import CommandTimeout, NotConnected, OutcomeUnknown
from servers.drone.core.protocol import LinkStatus, ProtocolConfig
from tests.link.rig import STATE_INTERVAL_S, Call, Rig, executions, make_rig, verify_calls

pytestmark = pytest.mark.virtual_time

STALE_BOUND_S = ProtocolConfig().stale_after_s + STATE_INTERVAL_S

READS: tuple[Command, ...] = tuple(
    commands.query(q) for q in ("battery?", "height?", "attitude?", "tof?", "baro?", "temp?", "speed?")
)


def _moves() -> list[Command]:
    # Distinct texts, so every call can be traced to the drone's record of it.
    return [
        commands.move("forward", 60, speed_cm_s=100),
        commands.rotate("cw", 90),
        commands.move("right", 40, speed_cm_s=100),
        commands.rotate("ccw", 45),
        commands.move("back", 30, speed_cm_s=100),
        commands.move("up", 30, speed_cm_s=100),
    ]


# ---- a careful caller -------------------------------------------------------------------------


def _airborne(rig: Rig) -> bool | None:
    """What fresh telemetry says (None: no fresh state to judge by)."""
    reading = rig.link.reading()
    if reading.status is not LinkStatus.CONNECTED or reading.telemetry is None:
        return None
    return reading.telemetry.height_cm >= 10


async def _look(rig: Rig) -> bool | None:
    """After an unknown outcome: wait (bounded) for fresh state, then judge by it."""
    with anyio.move_on_after(rig.clock.to_real(15.0)):
        await rig.connected(timeout_s=60.0)  # the outer 15 s ends the wait first
    return _airborne(rig)


async def take_off(rig: Rig, attempts: int = 3) -> bool:
    for _ in range(attempts):
        call = await rig.call(commands.simple("takeoff"))
        if call.ok:
            return True
        if isinstance(call.error, OutcomeUnknown | CommandTimeout) and await _look(rig):
            return True  # it ran; the reply was lost
    return False


async def land(rig: Rig, attempts: int = 4) -> None:
    for _ in range(attempts):
        call = await rig.call(commands.simple("land"))
        if call.ok or await _look(rig) is False:
            return


async def fly(rig: Rig, moves: Sequence[Command], reads: Sequence[Command] = READS) -> list[Call]:
    """Take off, alternate moves and reads, land. Returns the move calls."""
    done: list[Call] = []
    if not await take_off(rig):
        return done
    for i, move in enumerate(moves):
        done.append(await rig.call(move))
        await rig.call(reads[i % len(reads)])
    await land(rig)
    return done


# ---- the verdict ------------------------------------------------------------------------------


async def _verdict(rig: Rig, move_calls: Sequence[Call]) -> None:
    rig.faults_off()
    await rig.connected()
    recovered = await rig.call(commands.query("battery?"))
    assert recovered.ok, f"no read after the fault was lifted: {recovered}"
    assert recovered.reply is not None
    assert abs(int(recovered.reply.raw) - rig.sim.truth.battery_pct) <= 1

    for call in move_calls:
        ran = executions(rig.sim, call.command.text)
        assert len(ran) <= 1, f"{call}: ran {ran}"
        if call.ok:
            assert ran == [Outcome.DONE], f"{call}: success but the drone recorded {ran}"
    verify_calls(rig.sim, rig.calls)

    late = [age for age in rig.stale_latencies() if age > STALE_BOUND_S]
    assert not late, f"stale reported {late} s after the last state packet (bound {STALE_BOUND_S} s)"


async def _stale_seen(rig: Rig, seen: int) -> None:
    """Wait until a `wait_changed` watcher has seen the stream stop (more than `seen` times; the
    bound on how late it learned of it is checked in `_verdict`)."""
    await rig.until(
        lambda: len(rig.stale_latencies()) > seen, 10.0, "a wait_changed watcher to see the link go stale"
    )


# ---- the cases ----------------------------------------------------------------------------------


async def _lossy(rig: Rig, loss: float) -> list[Call]:
    rig.sim.faults.loss = loss
    moves = await fly(rig, _moves())
    if loss == 0.0:
        assert all(c.ok for c in rig.calls), [str(c) for c in rig.calls if not c.ok]
        assert len(moves) == 6
        assert rig.sim.truth.flight_state is FlightState.LANDED
    return moves


async def _duplicates(rig: Rig) -> list[Call]:
    rig.sim.faults.dup = 1.0
    strays = rig.link.counters["strays"]
    moves = await fly(rig, _moves())
    assert all(c.ok for c in rig.calls), [str(c) for c in rig.calls if not c.ok]

    # Every reply came twice; every second copy was dropped, none was handed to a caller.
    # The last reply's copy may still be on its way when the last call returns.
    def settled() -> bool:
        doubled = sum(1 for r in rig.sim.truth.replies if r.duplicate)
        return doubled >= len(rig.calls) and rig.link.counters["strays"] - strays >= len(rig.calls)

    await rig.until(settled, 5.0, "every reply doubled and every copy dropped")
    return moves


async def _jittery(rig: Rig) -> list[Call]:
    rig.sim.faults.delay_s, rig.sim.faults.jitter_s = 0.3, 0.25
    moves = await fly(rig, _moves())
    assert all(c.ok for c in rig.calls), [str(c) for c in rig.calls if not c.ok]
    return moves


async def _late(rig: Rig, delay_s: float) -> list[Call]:
    rig.sim.faults.delay_s = delay_s
    return await fly(rig, _moves())


async def _very_late(rig: Rig) -> list[Call]:
    # Later than a read's three attempts (1 + 0.1 + 1 + 0.1 + 1 s): every read times out and its
    # replies land in the quarantine; flight actions (longer budgets) still get theirs in time.
    rig.sim.faults.delay_s = 5.0
    # Budgets that cover 5 s of delay: takeoff 12 s, forward 50 sized for 10 cm/s (10 s), a
    # half turn (9 s).
    moves = await fly(rig, [commands.move("forward", 50, speed_cm_s=10), commands.rotate("cw", 180)])
    reads = [c for c in rig.calls if c.command.verb.endswith("?")]
    assert reads
    assert all(isinstance(c.error, CommandTimeout | NotConnected) for c in reads), [str(c) for c in reads]
    return moves


async def _state_dropout(rig: Rig) -> list[Call]:
    assert await take_off(rig)
    seen = len(rig.stale_latencies())
    rig.sim.faults.state_dropout = True
    await _stale_seen(rig, seen)
    assert rig.link.status() is LinkStatus.STALE
    # Replies still flow: reads work, the numbers in `reading()` are marked old.
    moves = [await rig.call(commands.move("forward", 40, speed_cm_s=100))]
    call = await rig.call(commands.query("battery?"))
    assert call.ok
    age = rig.link.reading().state_age_s
    assert age is not None
    assert age > 1.0
    rig.sim.faults.state_dropout = False
    await rig.connected()
    await land(rig)
    return moves


async def _reboot_mid_flight(rig: Rig) -> list[Call]:
    assert await take_off(rig)
    move = commands.move("forward", 300, speed_cm_s=100)
    result: list[Call] = []
    async with anyio.create_task_group() as tg:

        async def mover() -> None:
            result.append(await rig.call(move))

        tg.start_soon(mover)
        await rig.until(lambda: executions(rig.sim, move.text) == [Outcome.RUNNING], 5.0, "the move to start")
        seen = len(rig.stale_latencies())
        rig.sim.reboot()
        await _stale_seen(rig, seen)
    (call,) = result
    assert isinstance(call.error, OutcomeUnknown), call
    assert executions(rig.sim, move.text) == [Outcome.INTERRUPTED]
    assert rig.sim.truth.events_of(EventKind.CRASH)
    await rig.connected()
    # Fresh state shows it on the ground: the link must not keep claiming it flies.
    await rig.until(lambda: not rig.link.is_flying(), 5.0, "is_flying() to follow the state after a reboot")
    moves = [call, *await fly(rig, [commands.move("left", 50, speed_cm_s=100)])]
    assert rig.sim.truth.flight_state is FlightState.LANDED
    return moves


async def _off_for_20s(rig: Rig) -> list[Call]:
    assert await take_off(rig)
    moves = [await rig.call(commands.move("forward", 50, speed_cm_s=100))]
    assert moves[0].ok
    seen = len(rig.stale_latencies())
    rig.sim.power_off()
    off_at = rig.clock.now()
    await _stale_seen(rig, seen)
    # Stale: reconnect probes go before callers, so a read and a move wait behind them and are
    # refused once the probes fail, with nothing sent.
    unsent = await rig.call(commands.query("height?"))
    assert isinstance(unsent.error, NotConnected), unsent
    lost = await rig.call(commands.move("back", 50, speed_cm_s=100))
    moves.append(lost)
    assert isinstance(lost.error, NotConnected), lost
    assert not any(r.data in (b"height?", b"back 50") for r in rig.sim.truth.received)
    assert rig.link.status() is LinkStatus.DISCONNECTED
    refused = await rig.call(commands.move("up", 50, speed_cm_s=100))
    moves.append(refused)
    assert isinstance(refused.error, NotConnected), refused
    assert isinstance((await rig.call(commands.query("battery?"))).error, NotConnected)
    await rig.until(lambda: rig.clock.now() >= off_at + 20.0, 25.0, "20 s off")
    assert rig.link.status() is LinkStatus.DISCONNECTED
    rig.sim.power_on()
    on_at = rig.clock.now()
    back = await rig.connected(timeout_s=10.0)
    # Probes go out every reconnect_s while disconnected (test_link_reconnect.py).
    config = ProtocolConfig()
    assert back - on_at <= config.reconnect_s + config.retry_backoff_s + STATE_INTERVAL_S + 0.3
    assert executions(rig.sim, "back 50") == executions(rig.sim, "up 50") == []
    moves += await fly(rig, [commands.rotate("ccw", 30)])
    assert rig.sim.truth.flight_state is FlightState.LANDED
    return moves


Case = Callable[[Rig], Awaitable[list[Call]]]

CASES: list[object] = [
    pytest.param(lambda rig: _lossy(rig, 0.0), None, id="loss-0"),
    pytest.param(lambda rig: _lossy(rig, 0.1), None, id="loss-10"),
    pytest.param(lambda rig: _lossy(rig, 0.3), None, id="loss-30"),
    pytest.param(lambda rig: _lossy(rig, 0.5), None, id="loss-50"),
    pytest.param(_duplicates, None, id="duplicates"),
    pytest.param(_jittery, None, id="delay-jitter"),
    pytest.param(lambda rig: _late(rig, 1.5), None, id="late-after-read-timeout"),
    # A caller's read: its copies' replies come at 5.0, 6.1 and 7.2 s, all after its final
    # timeout (3.2 s) and inside a 6 s quarantine (until 9.2 s), wide margins whatever the load.
    pytest.param(_very_late, ProtocolConfig(quarantine_s=6.0, keepalive_s=60.0), id="late-after-all-retries"),
    pytest.param(_state_dropout, None, id="state-dropout"),
    pytest.param(_reboot_mid_flight, None, id="reboot-mid-flight"),
    pytest.param(_off_for_20s, None, id="off-20s"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("case", "protocol"), CASES)
async def test_fault_matrix(case: Case, protocol: ProtocolConfig | None, anyio_backend: str) -> None:
    async with make_rig(protocol=protocol) as rig:
        moves = await case(rig)
        await _verdict(rig, moves)
