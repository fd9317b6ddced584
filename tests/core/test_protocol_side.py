"""Issue 9 in the sans-IO core: side reads beside a pending command, the keepalive counted
from what the drone heard, probes beside a pending command, "already landed", `abandon`."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servers.drone.core import commands
from servers.drone.core.commands import ReplyKind
from servers.drone.core.errors import CommandRejected, LinkBusy, OutcomeUnknown, ProtocolError
from servers.drone.core.protocol import (
    KEEPALIVE_READS,
    CommandFailed,
    CommandSucceeded,
    LinkStatus,
    ProtocolConfig,
    StrayReply,
    reply_forms_collide,
)
from servers.drone.core.replies import parse_reply
from servers.drone.core.verdict import DidNotStart

from .helpers import STATE_PACKET, Driver
from .test_protocol import CFG, FRESH, connected, of_type, resolutions

FLYING = STATE_PACKET.replace(";h:0;", ";h:80;")
MOVING = FLYING.replace("vgx:0;", "vgx:10;")
LONG_MOVE = commands.move("forward", 500)  # 55 s budget at the slowest speed
UP = commands.move("up", 20)
BATTERY = commands.query("battery?")
HEIGHT = commands.query("height?")
LAND = commands.simple("land")

# ---- reply forms ---------------------------------------------------------------------------------

# Every successful reply form, as a grammar for hypothesis (from the real drone's examples).
_NUM = r"-?[0-9]{1,9}"
FORMS: dict[ReplyKind, st.SearchStrategy[str]] = {
    ReplyKind.OK: st.just("ok"),
    ReplyKind.LED_OK: st.just("led ok"),
    ReplyKind.MATRIX_OK: st.just("matrix ok"),
    ReplyKind.INT: st.from_regex(rf"\A{_NUM}\Z"),
    ReplyKind.FLOAT: st.from_regex(rf"\A{_NUM}(\.[0-9]{{1,9}})?\Z"),
    ReplyKind.SECONDS: st.from_regex(rf"\A{_NUM}s\Z"),
    ReplyKind.DECIMETRES: st.from_regex(rf"\A{_NUM}dm\Z"),
    ReplyKind.MILLIMETRES: st.from_regex(rf"\A{_NUM}mm\Z"),
    ReplyKind.EXT_TOF: st.from_regex(rf"\Atof {_NUM}\Z"),
    ReplyKind.TEMPERATURE: st.from_regex(rf"\A{_NUM}~{_NUM}C\Z"),
    ReplyKind.ATTITUDE: st.from_regex(rf"\Apitch:{_NUM};roll:{_NUM};yaw:{_NUM};\Z"),
    ReplyKind.ACCELERATION: st.from_regex(rf"\Aagx:{_NUM}\.00;agy:{_NUM};agz:{_NUM}\.5;\Z"),
    ReplyKind.TEXT: st.from_regex(r"\A[A-Za-z0-9]{1,64}\Z"),
}
KINDS = sorted(FORMS, key=lambda k: k.value)


def _parses(kind: ReplyKind, text: str) -> bool:
    try:
        parse_reply(kind, text)
    except ProtocolError:
        return False
    return True


@given(data=st.data(), pair=st.sampled_from(list(itertools.product(KINDS, KINDS))))
def test_forms_declared_disjoint_never_share_a_reply(
    data: st.DataObject, pair: tuple[ReplyKind, ReplyKind]
) -> None:
    a, b = pair
    text = data.draw(FORMS[a])
    if _parses(a, text) and not reply_forms_collide(a, b):
        assert not _parses(b, text), f"{text!r} is both {a.value} and {b.value}"


@pytest.mark.parametrize(
    ("a", "b", "both"),
    [
        (ReplyKind.INT, ReplyKind.FLOAT, "87"),
        (ReplyKind.TEXT, ReplyKind.SECONDS, "11s"),
        (ReplyKind.TEXT, ReplyKind.DECIMETRES, "15dm"),
        (ReplyKind.TEXT, ReplyKind.MILLIMETRES, "875mm"),
    ],
)
def test_forms_declared_colliding_really_do(a: ReplyKind, b: ReplyKind, both: str) -> None:
    assert reply_forms_collide(a, b)
    assert reply_forms_collide(b, a)
    assert _parses(a, both)
    assert _parses(b, both)


def test_keepalive_reads_collide_with_nothing_but_themselves() -> None:
    for read in KEEPALIVE_READS:
        assert [k for k in ReplyKind if reply_forms_collide(read.reply, k)] == [read.reply]
    assert not reply_forms_collide(ReplyKind.NONE, ReplyKind.NONE)


# ---- a caller's side read --------------------------------------------------------------------------


def test_a_read_goes_out_beside_a_long_move_and_each_gets_its_own_answer() -> None:
    d = connected(FRESH)
    move = send_at(d, LONG_MOVE, 1.0)
    assert not d.proto.can_send(1.2, BATTERY)  # the main wire is taken
    assert not d.proto.can_send_side(BATTERY, 1.2)  # its refusal would come now, if any
    assert d.proto.side_ready_at(BATTERY, 1.2) == pytest.approx(1.0 + CFG.side_after_s)
    read = d.proto.send_side(BATTERY, 1.6)
    d.timer(1.6)
    assert d.sent_texts() == [LONG_MOVE.text, "battery?"]
    assert d.proto.side_pending == (BATTERY,)
    [answer] = of_type(d.reply("87", at=1.65), CommandSucceeded)
    assert (answer.ticket, answer.value) == (read, 87)
    assert d.proto.pending is LONG_MOVE
    [done] = of_type(d.reply("ok", at=20.0), CommandSucceeded)
    assert done.ticket == move


def test_a_number_never_answers_the_move_and_ok_never_answers_the_read() -> None:
    d = connected(FRESH)
    move = send_at(d, LONG_MOVE, 1.0)
    read = d.proto.send_side(HEIGHT, 2.0)
    assert [type(e) for e in d.reply("87", at=2.1)] == [StrayReply]  # neither's form
    [ok] = of_type(d.reply("ok", at=3.0), CommandSucceeded)
    assert ok.ticket == move
    assert d.proto.side_pending == (HEIGHT,)
    [dm] = of_type(d.reply("8dm", at=3.01), CommandSucceeded)
    assert dm.ticket == read


@pytest.mark.parametrize(
    ("main", "side", "allowed"),
    [
        (BATTERY, commands.query("wifi?"), False),  # two integers
        (BATTERY, commands.query("speed?"), False),  # an integer is a number
        (commands.query("sn?"), commands.query("time?"), False),  # "11s" is an identifier
        (commands.query("sn?"), BATTERY, True),
        (LONG_MOVE, commands.simple("streamon"), False),  # not a read
        (LONG_MOVE, commands.query("tof?"), True),
        (commands.set_speed(50), commands.query("tof?"), True),
    ],
)
def test_side_reads_only_beside_a_disjoint_form(
    main: commands.Command, side: commands.Command, allowed: bool
) -> None:
    d = connected(FRESH)
    d.proto.send(main, 1.0)
    assert d.proto.can_send_side(side, 2.0) is allowed
    if not allowed:
        with pytest.raises(LinkBusy):
            d.proto.send_side(side, 2.0)


def test_an_error_goes_to_the_side_read_not_the_move() -> None:
    """It fits both; pinned on the read, the move keeps waiting for what it really gets."""
    d = connected(FRESH)
    move = send_at(d, LONG_MOVE, 1.0)
    read = d.proto.send_side(commands.query("EXT tof?"), 2.0)
    [failed] = of_type(d.reply("error", at=2.05), CommandFailed)
    assert failed.ticket == read
    assert isinstance(failed.error, CommandRejected)
    assert d.proto.pending is LONG_MOVE
    assert resolutions(d.events, move) == []


def test_forced_stop_never_answers_a_side_read() -> None:
    d = connected(FRESH)
    send_at(d, LONG_MOVE, 1.0)
    d.proto.send_priority(commands.simple("stop"), 3.0)
    d.proto.send_side(BATTERY, 3.0)
    assert [type(e) for e in d.reply("forced stop", at=3.05)] == [StrayReply]
    assert d.proto.side_pending == (BATTERY,)


# ---- keepalive ---------------------------------------------------------------------------------------


def send_at(d: Driver, command: commands.Command, at: float) -> int:
    """A caller's command at `at`, on the wire at `at` (the driver's clock moved there first)."""
    d.run_until(at)
    ticket = d.proto.send(command, at)
    d.timer(at)
    return ticket


def drone(d: Driver, until: float, *, answer_reads: bool = True, packet: str = FLYING) -> None:
    """State every 100 ms; keepalives and reads answered 10 ms after they went out."""
    answers = {"command": "ok", "attitude?": "pitch:0;roll:0;yaw:0;", "acceleration?": "agx:1;agy:1;agz:1;"}
    t = d.now
    while t < until:
        t = min(until, t + 0.1)
        before = len(d.wire)
        d.run_until(t)
        for _, data in d.wire[before:]:
            text = data.decode()
            if text in answers and (answer_reads or text == "command"):
                d.reply(answers[text], at=d.now + 0.01)
        d.state(packet, at=max(d.now, t))


def flying(config: ProtocolConfig | None = None) -> Driver:
    """Connected (its `command` answered at t=0), hovering and streaming until 0.9 s."""
    d = connected(config)
    drone(d, 0.9)
    return d


def sends(d: Driver, since: float = 0.0) -> list[float]:
    return [t for t, _ in d.wire if t >= since]


def test_the_drone_hears_from_us_every_keepalive_s_during_a_long_move() -> None:
    d = flying()
    send_at(d, LONG_MOVE, 1.0)
    drone(d, 50.0)
    times = sends(d, 1.0)
    assert max(b - a for a, b in itertools.pairwise([*times, 50.0])) <= CFG.keepalive_s + 1e-6
    side = [data for t, data in d.wire if t > 1.0]
    assert set(side) == {b"attitude?"}  # a read: its answer cannot pass for the move's `ok`
    assert d.proto.pending is LONG_MOVE
    assert d.events
    assert not of_type(d.events, CommandSucceeded)  # our reads concern no caller
    assert d.proto.counters.side_keepalives == len(side)


def test_unanswered_keepalive_reads_go_out_again_at_once() -> None:
    """Counted from what the drone heard: nothing heard, so keep trying (each read's timeout)."""
    d = flying()
    send_at(d, LONG_MOVE, 1.0)
    drone(d, 20.0, answer_reads=False)
    times = sends(d, 4.9)
    assert times[0] == pytest.approx(5.0)  # keepalive_s after the last datagram heard (t=0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) == pytest.approx(commands.READ_TIMEOUT_S)


def test_state_showing_the_move_counts_as_heard() -> None:
    """The drone is busy with what we sent: one read every keepalive_s, as the drone ignores them."""
    d = flying()
    send_at(d, LONG_MOVE, 1.0)
    drone(d, 30.0, answer_reads=False, packet=MOVING)
    gaps = [b - a for a, b in itertools.pairwise(sends(d, 1.0))]
    assert gaps
    assert min(gaps) == pytest.approx(CFG.keepalive_s)
    assert d.proto.heard_age(d.now) == pytest.approx(0.0, abs=0.11)


def test_keepalive_during_the_quarantine_after_a_lost_move() -> None:
    d = flying()
    ticket = send_at(d, UP, 1.0)
    drone(d, 1.0 + UP.timeout_s + CFG.quarantine_s)
    [failed] = resolutions(d.events, ticket)
    assert isinstance(failed, CommandFailed)
    assert isinstance(failed.error, OutcomeUnknown)
    during = [(t, data) for t, data in d.wire if failed.at < t < failed.at + CFG.quarantine_s]
    # Keepalives answered at 0 and 5 s: the next one is due at 10 s, in the quarantine.
    assert during == [(pytest.approx(2 * CFG.keepalive_s), b"attitude?")]


def test_a_caller_asking_the_keepalive_read_takes_it_over() -> None:
    d = flying()
    send_at(d, LONG_MOVE, 1.0)
    drone(d, 5.05, answer_reads=False)  # the keepalive's attitude? went out at 5.0
    assert d.proto.side_pending == (KEEPALIVE_READS[0],)
    ticket = d.proto.send_side(KEEPALIVE_READS[0], 5.05)
    [answer] = of_type(d.reply("pitch:0;roll:0;yaw:7;", at=5.1), CommandSucceeded)
    assert answer.ticket == ticket
    assert d.proto.side_pending == ()


def test_legacy_callers_never_wait_for_a_keepalive_read() -> None:
    d = flying()
    send_at(d, UP, 1.0)
    drone(d, 5.05, answer_reads=False)
    assert d.proto.side_pending == (KEEPALIVE_READS[0],)
    d.reply("ok", at=5.1)
    d.run_until(5.2)
    assert d.proto.can_send(d.now)  # any command at all, though attitude? is in flight


def test_side_keepalives_can_be_switched_off() -> None:
    d = flying(ProtocolConfig(keepalive_beside_pending=False))
    send_at(d, LONG_MOVE, 1.0)
    drone(d, 30.0)
    assert sends(d, 1.0) == [1.0]


# ---- leaving SDK mode ----------------------------------------------------------------------------


def test_state_stopping_sends_a_probe_at_once_beside_the_pending_move() -> None:
    d = flying()
    move = send_at(d, LONG_MOVE, 1.0)
    drone(d, 3.0)
    d.run_until(4.02)  # the state stops at 3.0: stale at 4.0
    assert d.proto.status(d.now) is LinkStatus.STALE
    assert [(t, data) for t, data in d.wire if t > 3.0] == [(pytest.approx(4.0), b"command")]
    # Its `ok` cannot be told from the move's: the probe takes it, the move never does.
    assert of_type(d.reply("ok", at=4.05), CommandSucceeded) == []
    assert [type(e) for e in d.reply("ok", at=4.1)] == [StrayReply]
    d.run_until(1.0 + LONG_MOVE.timeout_s)
    [failed] = resolutions(d.events, move)
    assert isinstance(failed, CommandFailed)
    assert isinstance(failed.error, OutcomeUnknown)


def test_probes_beside_a_pending_command_can_be_switched_off() -> None:
    d = flying(ProtocolConfig(probe_beside_pending=False, keepalive_beside_pending=False))
    send_at(d, LONG_MOVE, 1.0)
    d.run_until(20.0)
    assert sends(d, 1.0) == [1.0]


def test_land_on_a_drone_already_on_the_ground_succeeds_from_the_state() -> None:
    d = flying()
    drone(d, 2.0, packet=STATE_PACKET)  # h:0, still: it came down by itself
    ticket = send_at(d, LAND, 2.0)
    drone(d, 2.25, packet=STATE_PACKET)
    [done] = resolutions(d.events, ticket)
    assert isinstance(done, CommandSucceeded)
    assert done.evidence is not None
    assert done.evidence.startswith("already landed")
    # The drone's own answer (`error Motor stop`) still comes: it lands on the quarantine.
    assert [type(e) for e in d.reply("error Motor stop", at=d.now + 0.01)] == [StrayReply]


def test_a_landing_we_watch_come_down_waits_for_its_ok() -> None:
    d = flying()
    drone(d, 2.0)
    ticket = send_at(d, LAND, 2.0)
    drone(d, 4.0, packet=FLYING.replace("vgz:0;", "vgz:-5;"))
    drone(d, 4.7, packet=STATE_PACKET)  # touched down; motors still stopping
    assert resolutions(d.events, ticket) == []
    [done] = of_type(d.reply("ok", at=4.75), CommandSucceeded)
    assert (done.ticket, done.evidence) == (ticket, None)


def test_a_refused_land_on_the_ground_is_already_landed() -> None:
    d = flying()
    drone(d, 3.0, packet=STATE_PACKET)
    send_at(d, LAND, 3.0)
    [done] = of_type(d.reply("error Motor stop", at=3.02), CommandSucceeded)
    assert done.evidence is not None
    assert "error Motor stop" in done.evidence


def test_a_refused_land_at_the_start_of_a_takeoff_is_refused() -> None:
    """Spinning up looks like standing on the ground: only a second of it counts."""
    d = flying()
    drone(d, 1.0, packet=FLYING)
    drone(d, 1.5, packet=STATE_PACKET)
    send_at(d, LAND, 1.5)
    [failed] = of_type(d.reply("error Not joystick", at=1.52), CommandFailed)
    assert isinstance(failed.error, CommandRejected)


def test_a_timed_out_land_on_the_ground_succeeds_instead_of_retrying() -> None:
    d = flying()
    drone(d, 1.0)
    ticket = send_at(d, LAND, 1.0)
    drone(d, 1.0 + LAND.timeout_s - 2.0)  # still hovering: the land never arrived...
    drone(d, 1.0 + LAND.timeout_s + 0.05, packet=STATE_PACKET)  # ...it came down by itself
    [done] = resolutions(d.events, ticket)
    assert isinstance(done, CommandSucceeded)
    assert d.sent_texts().count("land") == 1


# ---- abandon -------------------------------------------------------------------------------------


def test_abandon_fails_the_move_at_once_and_quarantines_the_wire() -> None:
    d = connected(FRESH)
    ticket = send_at(d, UP, 1.0)
    error = DidNotStart(UP.text, "no motion for 2.0 s")
    assert d.proto.abandon(ticket + 1, error, 3.0) == []  # not the pending one: nothing
    [failed] = d.proto.abandon(ticket, error, 3.0)
    assert isinstance(failed, CommandFailed)
    assert failed.error is error
    assert d.proto.pending is None
    assert d.proto.ready_at(3.0) == pytest.approx(3.0 + CFG.quarantine_s)
    assert [type(e) for e in d.reply("ok", at=4.0)] == [StrayReply]
    assert d.proto.can_send(3.0, BATTERY)  # a number cannot be the lost move's answer


def test_a_read_that_may_have_taken_a_keepalives_answer_holds_its_form_for_a_quarantine() -> None:
    """The answer a caller's attitude? got may have been our keepalive's (same read, as good):
    then its own is still on the way, and must not answer the next attitude?."""
    d = flying()
    send_at(d, LONG_MOVE, 1.0)
    drone(d, 6.5, answer_reads=False)  # keepalive attitude? reads went out unanswered
    ticket = d.proto.send_side(KEEPALIVE_READS[0], 6.5)
    [answer] = of_type(d.reply("pitch:0;roll:0;yaw:1;", at=6.6), CommandSucceeded)
    assert answer.ticket == ticket
    assert not d.proto.can_send_side(KEEPALIVE_READS[0], 6.7)
    assert d.proto.side_ready_at(KEEPALIVE_READS[0], 6.7) == pytest.approx(6.6 + CFG.quarantine_s)
    assert d.proto.can_send_side(BATTERY, 6.7)


def test_a_duplicated_refusal_never_answers_the_probe_beside_it() -> None:
    d = flying()
    up = send_at(d, UP, 0.95)
    d.run_until(1.95)  # the state stopped at 0.9: a probe goes out beside the move at 1.9
    assert "command" in [c.text for c in d.proto.side_pending]
    [refused] = of_type(d.reply("error Motor stop", at=2.0), CommandFailed)  # a late refusal
    assert refused.ticket == up
    assert [type(e) for e in d.reply("error Motor stop", at=2.0)] == [StrayReply]  # its twin
    assert "command" in [c.text for c in d.proto.side_pending]
    assert not d.proto.can_send(2.1, UP)  # an action waits: the probe's `ok` is still to come
