"""The sans-IO `TelloProtocol`: every rule in its module docstring, driven with plain floats."""

from __future__ import annotations

import itertools
import math
from typing import TypeVar

import pytest

from servers.drone.core import commands
from servers.drone.core.commands import Command, Motion
from servers.drone.core.errors import (
    CommandRejected,
    CommandTimeout,
    LinkBusy,
    OutcomeUnknown,
    Preempted,
)
from servers.drone.core.protocol import (
    BadDatagram,
    CommandFailed,
    CommandRetried,
    CommandSucceeded,
    Event,
    LinkStatus,
    ProtocolConfig,
    StatusChanged,
    StrayReply,
    TelemetryReceived,
    TelloProtocol,
)
from servers.drone.core.replies import Attitude, TemperatureRange

from .helpers import STATE_PACKET, Driver

CFG = ProtocolConfig()
FRESH = ProtocolConfig(stale_after_s=1000.0)
"""For tests about something else: state never goes stale, so no reconnect probe cuts in."""
BATTERY = commands.query("battery?")
UP = commands.move("up", 20)  # timeout 20/10 + 5 = 7 s
TAKEOFF = commands.simple("takeoff")
EMERGENCY = commands.simple("emergency")
STOP = commands.simple("stop")


E = TypeVar("E", bound=Event)


def of_type(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def connected(config: ProtocolConfig | None = None) -> Driver:
    """A core that has sent its first `command`, had it answered and seen a state packet; t=0.05."""
    d = Driver.create(config)
    d.timer(0.0)
    assert d.drain_wire() == [b"command"]
    d.reply("ok", at=0.01)
    d.state(at=0.01)
    d.now = 0.05
    assert d.proto.status(d.now) is LinkStatus.CONNECTED
    d.events.clear()
    return d


def wait_until_free(d: Driver, limit: float = 1000.0) -> None:
    """Run timers (nobody answers) until the core accepts a send; the caller wins a tie with a
    keepalive that falls due at the same instant, as a caller awaiting `ready_at` would."""
    while not d.proto.can_send(d.now):
        assert d.now < limit
        ready = d.proto.ready_at(d.now)
        if ready is None:
            deadline = d.proto.next_deadline()
            assert deadline is not None
            d.run_until(max(deadline, d.now))
        else:
            d.run_until(math.nextafter(ready, -math.inf))
            d.now = max(d.now, ready)


def outcomes(events: list[Event]) -> list[CommandSucceeded | CommandFailed]:
    return [e for e in events if isinstance(e, CommandSucceeded | CommandFailed)]


def resolutions(events: list[Event], ticket: int) -> list[Event]:
    return [e for e in events if isinstance(e, CommandSucceeded | CommandFailed) and e.ticket == ticket]


# ---- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keepalive_s": -1.0},
        {"stale_after_s": -0.1},
        {"quarantine_s": -1.0},
        {"settle_s": -0.01},
        {"retries": -1},
        {"disconnect_after": 0},
        {"emergency_repeats": 0},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must be|required"):
        ProtocolConfig(**kwargs)  # type: ignore[arg-type]


# ---- one command in flight -----------------------------------------------------------------------


def test_only_one_command_in_flight() -> None:
    d = connected()
    t = d.proto.send(BATTERY, 1.0)
    d.timer(1.0)
    assert d.proto.pending is BATTERY
    assert not d.proto.can_send(1.0)
    assert d.proto.ready_at(d.now) is None
    for cmd in (UP, BATTERY, commands.rc(0, 0, 0, 0)):
        with pytest.raises(LinkBusy, match=r"battery\?"):
            d.proto.send(cmd, 1.5)
    assert d.proto.pending is BATTERY
    assert d.drain_wire() == [b"battery?"]
    d.reply("87", at=1.5)
    assert [e.ticket for e in of_type(d.events, CommandSucceeded)] == [t]


def test_a_pending_keepalive_also_holds_the_wire() -> None:
    d = Driver.create()
    d.timer(0.0)
    assert d.proto.pending is not None
    assert d.proto.pending.text == "command"
    with pytest.raises(LinkBusy):
        d.proto.send(BATTERY, 0.5)


def test_nothing_may_be_sent_before_the_link_starts() -> None:
    proto = TelloProtocol(connect_at=10.0)
    assert not proto.can_send(9.0)
    with pytest.raises(LinkBusy):
        proto.send(BATTERY, 9.0)
    assert proto.datagrams_to_send() == []


def test_tickets_are_unique_and_increasing() -> None:
    d = connected(FRESH)
    tickets: list[int] = []
    now = 1.0
    for _ in range(5):
        tickets.append(d.proto.send(BATTERY, now))
        d.reply("50", at=now + 0.01)
        now += 1.0
    assert tickets == sorted(set(tickets))


def test_rc_is_fire_and_forget() -> None:
    d = connected()
    rc = commands.rc(10, 0, 0, 0)
    d.proto.send(rc, 1.0)
    assert d.proto.pending is None
    assert d.proto.can_send(1.0)
    d.proto.send(rc, 1.0)
    d.timer(1.0)
    assert d.drain_wire() == [b"rc 10 0 0 0", b"rc 10 0 0 0"]
    d.run_until(30.0)
    assert not outcomes(d.events)  # an rc ticket is never resolved: nothing will answer it
    assert set(d.drain_wire()) <= {b"command"}  # and it is never re-sent


# ---- reply matching ------------------------------------------------------------------------------


REAL_READS = [
    ("battery?", "87", 87),
    ("speed?", "100.0", 100.0),
    ("time?", "11s", 11),
    ("height?", "15dm", 15),
    ("temp?", "85~88C", TemperatureRange(85, 88)),
    ("attitude?", "pitch:0;roll:-1;yaw:0;", Attitude(0, -1, 0)),
    ("baro?", "220.16", 220.16),
    ("tof?", "875mm", 875),
    ("wifi?", "90", 90),
    ("sdk?", "30", 30),
    ("sn?", "0TQDG7R0010D0B", "0TQDG7R0010D0B"),
    ("hardware?", "RMTT", "RMTT"),
    ("EXT tof?", "tof 1234", 1234),
]


@pytest.mark.parametrize(("query", "raw", "value"), REAL_READS)
def test_read_resolves_with_its_real_reply(query: str, raw: str, value: object) -> None:
    d = connected()
    ticket = d.proto.send(commands.query(query), 1.0)
    events = d.reply(raw + "\r\n", at=1.03)
    [ok] = of_type(events, CommandSucceeded)
    assert (ok.ticket, ok.value, ok.raw, ok.attempts) == (ticket, value, raw, 1)
    assert ok.latency_s == pytest.approx(0.03)
    assert d.proto.pending is None
    assert d.proto.counters.replies == 2  # the connect keepalive and this one


@pytest.mark.parametrize(("query", "raw", "value"), REAL_READS)
def test_ok_for_a_read_is_stray_and_the_read_stays_pending(query: str, raw: str, value: object) -> None:
    d = connected()
    cmd = commands.query(query)
    d.proto.send(cmd, 1.0)
    events = d.reply("ok", at=1.01)
    assert [type(e) for e in events] == [StrayReply]
    assert d.proto.pending is cmd
    [ok] = of_type(d.reply(raw, at=1.02), CommandSucceeded)
    assert ok.value == value


@pytest.mark.parametrize("cmd", [UP, TAKEOFF, commands.rotate("cw", 90), commands.set_speed(50)], ids=str)
@pytest.mark.parametrize("raw", ["87", "100.0", "15dm", "led ok", "tof 1234", "RMTT", "", "ok ok"])
def test_wrong_form_for_an_action_is_stray(cmd: Command, raw: str) -> None:
    d = connected()
    d.proto.send(cmd, 1.0)
    events = d.reply(raw, at=2.0)
    assert [type(e) for e in events] == [StrayReply]
    assert d.proto.pending is cmd
    [ok] = of_type(d.reply("ok", at=3.0), CommandSucceeded)
    assert ok.value is True


def test_led_and_matrix_want_their_own_ok() -> None:
    d = connected(FRESH)
    d.proto.send(commands.led_solid(1, 2, 3), 1.0)
    assert of_type(d.reply("ok", at=1.01), StrayReply)
    assert of_type(d.reply("matrix ok", at=1.02), StrayReply)
    assert of_type(d.reply("led ok", at=1.03), CommandSucceeded)
    d.proto.send(commands.matrix_char("r", "a"), 2.0)
    assert of_type(d.reply("led ok", at=2.01), StrayReply)
    assert of_type(d.reply("matrix ok", at=2.02), CommandSucceeded)


ERROR_REPLIES = ["error", "error Not joystick", "error Motor stop", "error No valid imu", "error Auto land",
                 "out of range", "forced stop", "unknown command: X"]  # fmt: skip


@pytest.mark.parametrize(
    ("cmd", "raw"),
    [
        pytest.param(cmd, raw, id=f"{cmd.text}-{raw}")
        for cmd in (BATTERY, UP, TAKEOFF, commands.led_solid(0, 0, 0))
        for raw in ERROR_REPLIES
        # Only a flight action can be stopped (see test_forced_stop_of_a_preempted_move_*).
        if raw != "forced stop" or cmd.motion is Motion.FLIGHT
    ],
)
def test_error_reply_fails_the_command_verbatim(cmd: Command, raw: str) -> None:
    d = connected()
    ticket = d.proto.send(cmd, 1.0)
    events = d.reply(raw + "\r\n", at=1.001)  # refusals come at once, even for flight actions
    [failed] = of_type(events, CommandFailed)
    assert failed.ticket == ticket
    assert isinstance(failed.error, CommandRejected)
    assert (failed.error.command, failed.error.reply, failed.raw) == (cmd.text, raw, raw)
    assert d.proto.pending is None


def test_non_ascii_reply_is_a_bad_datagram_and_changes_nothing() -> None:
    d = connected()
    d.proto.send(BATTERY, 1.0)
    events = d.reply(b"\xff\xfe87", at=1.01)
    assert [type(e) for e in events] == [BadDatagram]
    assert isinstance(events[0], BadDatagram)
    assert events[0].channel == "command"
    assert d.proto.pending is BATTERY


def test_reply_with_nothing_pending_is_stray() -> None:
    d = connected()
    strays = d.proto.counters.strays
    for i, raw in enumerate(["ok", "87", "error", "forced stop", "led ok"]):
        events = d.reply(raw, at=1.0 + i)
        assert [type(e) for e in events] == [StrayReply]
        assert isinstance(events[0], StrayReply)
        assert events[0].raw == raw
    assert d.proto.counters.strays == strays + 5
    assert d.proto.can_send(10.0)


def test_duplicate_within_settle_is_dropped_and_next_send_waits_for_settle() -> None:
    d = connected(FRESH)
    d.proto.send(BATTERY, 1.0)
    assert of_type(d.reply("87", at=1.05), CommandSucceeded)
    ready = d.proto.ready_at(d.now)
    assert ready == pytest.approx(1.05 + CFG.settle_s)
    assert ready is not None
    assert [type(e) for e in d.reply("87", at=1.06)] == [StrayReply]
    assert not d.proto.can_send(1.06)
    with pytest.raises(LinkBusy, match="settle"):
        d.proto.send(BATTERY, 1.06)
    assert d.proto.can_send(ready)
    d.proto.send(BATTERY, ready)
    # the duplicate did not resolve anything: only one success so far
    assert len(of_type(d.events, CommandSucceeded)) == 1


def test_late_reply_after_final_timeout_is_dropped_during_quarantine() -> None:
    d = connected(FRESH)
    ticket = d.proto.send(UP, 1.0)
    d.run_until(1.0 + UP.timeout_s)
    [failed] = resolutions(d.events, ticket)
    assert isinstance(failed, CommandFailed)
    assert isinstance(failed.error, OutcomeUnknown)
    assert failed.at == pytest.approx(1.0 + UP.timeout_s)
    end = failed.at + CFG.quarantine_s
    assert d.proto.ready_at(d.now) == pytest.approx(end)
    assert [type(e) for e in d.reply("ok", at=failed.at + 0.5)] == [StrayReply]
    assert not d.proto.can_send(end - 0.01)
    with pytest.raises(LinkBusy):
        d.proto.send(UP, end - 0.01)
    # A read's answer cannot pass for the `ok` still owed: it need not wait.
    assert d.proto.can_send(end - 0.01, BATTERY)
    d.run_until(end - 0.01)
    # Only keepalive side reads went out beside the move and during its quarantine.
    assert set(d.drain_wire()) == {b"up 20", b"attitude?"}
    assert d.proto.can_send(end)
    assert len(resolutions(d.events, ticket)) == 1


# ---- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("retries", [0, 1, 2, 4])
def test_idempotent_command_is_retried_with_backoff_then_times_out(retries: int) -> None:
    cfg = ProtocolConfig(retries=retries, stale_after_s=1000.0)
    d = connected(cfg)
    ticket = d.proto.send(BATTERY, 1.0)
    d.timer(1.0)
    step = BATTERY.timeout_s + cfg.retry_backoff_s
    d.run_until(1.0 + retries * step + BATTERY.timeout_s)
    sends = [t for t, data in d.wire if data == b"battery?"]
    assert sends == pytest.approx([1.0 + i * step for i in range(retries + 1)])
    retried = of_type(d.events, CommandRetried)
    assert [(e.ticket, e.attempt) for e in retried] == [(ticket, i + 2) for i in range(retries)]
    [failed] = resolutions(d.events, ticket)
    assert isinstance(failed, CommandFailed)
    assert isinstance(failed.error, CommandTimeout)
    assert failed.error.attempts == retries + 1
    assert failed.error.waited_s == pytest.approx(sends[-1] + BATTERY.timeout_s - 1.0)
    assert d.proto.counters.retries == retries
    assert d.proto.counters.timeouts == 1


def test_reply_during_backoff_resolves_without_resend() -> None:
    d = connected()
    ticket = d.proto.send(BATTERY, 1.0)
    d.timer(1.0)
    d.run_until(2.0)  # deadline passed: backing off until 2.1
    assert d.proto.pending is BATTERY
    [ok] = of_type(d.reply("90", at=2.05), CommandSucceeded)
    assert (ok.ticket, ok.attempts, ok.value) == (ticket, 1, 90)
    d.run_until(2.5)
    assert [data for _, data in d.wire].count(b"battery?") == 1


def test_retried_reply_reports_attempts_and_latency_from_first_send() -> None:
    d = connected()
    d.proto.send(BATTERY, 1.0)
    d.timer(1.0)
    d.run_until(2.2)
    [ok] = of_type(d.reply("77", at=2.3), CommandSucceeded)
    assert ok.attempts == 2
    assert ok.latency_s == pytest.approx(1.3)


NEVER_RETRIED = [
    TAKEOFF,
    commands.simple("motoron"),
    commands.simple("reboot"),
    *(commands.move(d, 20) for d in ("up", "down", "left", "right", "forward", "back")),
    commands.rotate("cw", 1),
    commands.rotate("ccw", 360),
    commands.flip("l"),
    commands.go(100, 0, 0, 100),
    commands.curve(100, 100, 0, 200, 0, 0, 60),
]


@pytest.mark.parametrize("cmd", NEVER_RETRIED, ids=lambda c: c.text)
def test_non_idempotent_is_sent_exactly_once_then_outcome_unknown(cmd: Command) -> None:
    d = connected(ProtocolConfig(retries=5))
    ticket = d.proto.send(cmd, 1.0)
    d.timer(1.0)
    d.run_until(1.0 + cmd.timeout_s + 200.0)
    assert [data for _, data in d.wire].count(cmd.encode()) == 1
    [failed] = resolutions(d.events, ticket)
    assert isinstance(failed, CommandFailed)
    assert isinstance(failed.error, OutcomeUnknown)
    assert failed.at == pytest.approx(1.0 + cmd.timeout_s)
    assert failed.error.waited_s == pytest.approx(cmd.timeout_s)
    assert "NOT re-sent" in str(failed.error)
    assert not [e for e in of_type(d.events, CommandRetried) if e.ticket == ticket]
    assert [data for _, data in d.wire if data != b"command"] == [cmd.encode()]


# ---- motion timing -------------------------------------------------------------------------------


def test_motion_ok_faster_than_physically_possible_is_stray() -> None:
    d = connected()
    ticket = d.proto.send(UP, 1.0)
    soon = 1.0 + CFG.motion_min_reply_s / 2
    assert [type(e) for e in d.reply("ok", at=soon)] == [StrayReply]
    assert d.proto.pending is UP
    [ok] = of_type(d.reply("ok", at=1.0 + 2 * CFG.motion_min_reply_s), CommandSucceeded)
    assert ok.ticket == ticket


@pytest.mark.parametrize("cmd", [TAKEOFF, commands.simple("land"), UP, commands.flip("b")], ids=str)
def test_motion_error_is_accepted_at_once(cmd: Command) -> None:
    d = connected()
    d.state(STATE_PACKET.replace(";h:0;", ";h:80;"), at=0.5)  # flying: a refused land is refused
    d.proto.send(cmd, 1.0)
    [failed] = of_type(d.reply("error Motor stop", at=1.0), CommandFailed)
    assert isinstance(failed.error, CommandRejected)


def test_non_motion_reply_is_accepted_at_once() -> None:
    d = connected()
    d.proto.send(commands.set_speed(50), 1.0)
    assert of_type(d.reply("ok", at=1.0), CommandSucceeded)


# ---- priority path -------------------------------------------------------------------------------


def test_send_priority_refuses_other_verbs() -> None:
    d = connected()
    for cmd in (BATTERY, commands.simple("land"), UP):
        with pytest.raises(ValueError, match="priority"):
            d.proto.send_priority(cmd, 1.0)
    assert d.proto.datagrams_to_send() == []


@pytest.mark.parametrize("repeats", [1, 3, 5])
def test_emergency_preempts_a_move_goes_out_at_once_and_repeats(repeats: int) -> None:
    cfg = ProtocolConfig(emergency_repeats=repeats, stale_after_s=1000.0)
    d = connected(cfg)
    move = d.proto.send(UP, 1.0)
    d.timer(1.0)
    d.drain_wire()
    ticket, events = d.proto.send_priority(EMERGENCY, 2.0)
    d.now = 2.0
    assert d.proto.datagrams_to_send() == [b"emergency"]  # at once, before any timer
    [failed] = of_type(events, CommandFailed)
    assert failed.ticket == move
    assert isinstance(failed.error, Preempted)
    assert (failed.error.command, failed.error.by) == ("up 20", "emergency")
    d.run_until(10.0)
    sends = [t for t, data in d.wire if data == b"emergency"]
    assert len(sends) == repeats - 1
    assert sends == pytest.approx([2.0 + (i + 1) * cfg.emergency_interval_s for i in range(repeats - 1)])
    [ok] = resolutions(d.events, ticket)
    assert isinstance(ok, CommandSucceeded)
    assert (ok.value, ok.raw) == (None, "")
    assert ok.at == pytest.approx(2.0 + EMERGENCY.timeout_s)
    assert not resolutions(d.events, move)  # the move resolved once, in send_priority's events


def test_answered_emergency_succeeds_and_stops_repeating() -> None:
    d = connected()
    ticket, _ = d.proto.send_priority(EMERGENCY, 1.0)
    d.now = 1.0
    [ok] = of_type(d.reply("ok", at=1.01), CommandSucceeded)
    assert (ok.ticket, ok.value) == (ticket, True)
    d.run_until(3.0)
    assert d.sent_texts().count("emergency") == 1


def test_emergency_is_never_retried_beyond_its_repeats() -> None:
    d = connected(ProtocolConfig(retries=5, stale_after_s=1000.0))
    d.proto.send_priority(EMERGENCY, 1.0)
    d.now = 1.0
    d.run_until(30.0)
    assert d.sent_texts().count("emergency") == 1 + CFG.emergency_repeats - 1
    assert not of_type(d.events, CommandRetried)


def test_second_emergency_supersedes_the_first() -> None:
    d = connected()
    first, _ = d.proto.send_priority(EMERGENCY, 1.0)
    second, events = d.proto.send_priority(EMERGENCY, 1.01)
    [ok] = of_type(events, CommandSucceeded)
    assert (ok.ticket, ok.value) == (first, None)
    d.now = 1.01
    d.run_until(5.0)
    assert len(resolutions(d.events, second)) == 1
    assert len(resolutions(d.events + events, first)) == 1


def test_priority_ignores_settle_and_quarantine() -> None:
    d = connected()
    d.proto.send(UP, 1.0)
    d.run_until(1.0 + UP.timeout_s)  # OutcomeUnknown: quarantine starts
    assert not d.proto.can_send(d.now + 0.1)
    d.drain_wire()
    ticket, events = d.proto.send_priority(STOP, d.now + 0.1)
    assert events == []
    assert d.proto.datagrams_to_send() == [b"stop"]
    assert ticket > 0


def test_stop_preempts_a_move_and_the_moves_forced_stop_is_not_stops_reply() -> None:
    d = connected()
    move = d.proto.send(UP, 1.0)
    stop, events = d.proto.send_priority(STOP, 3.0)
    d.now = 3.0
    [pre] = of_type(events, CommandFailed)
    assert pre.ticket == move
    assert isinstance(pre.error, Preempted)
    assert pre.error.by == "stop"
    stray = d.reply("forced stop", at=3.05)
    assert [type(e) for e in stray] == [StrayReply]
    assert d.proto.pending is STOP
    [ok] = of_type(d.reply("ok", at=3.1), CommandSucceeded)
    assert ok.ticket == stop
    assert not resolutions(d.events, move)


def test_forced_stop_of_a_preempted_move_never_fails_a_later_read() -> None:
    d = connected(FRESH)
    d.proto.send(UP, 1.0)
    d.proto.send_priority(STOP, 3.0)
    d.reply("ok", at=3.05)
    ready = d.proto.ready_at(d.now)
    assert ready is not None
    read = d.proto.send(BATTERY, ready)
    events = d.reply("forced stop", at=ready + 0.01)
    assert not resolutions(events, read)
    assert of_type(events, StrayReply)


def test_stop_does_not_cancel_emergency_repeats() -> None:
    d = connected(ProtocolConfig(stale_after_s=1000.0))
    d.proto.send_priority(EMERGENCY, 1.0)
    with pytest.raises(LinkBusy, match="emergency"):
        d.proto.send_priority(STOP, 1.01)
    d.now = 1.01
    d.run_until(10.0)
    assert d.sent_texts().count("emergency") == CFG.emergency_repeats


def test_priority_reply_does_not_shorten_quarantine() -> None:
    d = connected()
    d.proto.send(TAKEOFF, 1.0)
    d.run_until(1.0 + TAKEOFF.timeout_s)
    end = d.now + CFG.quarantine_s
    d.proto.send_priority(STOP, d.now + 0.5)
    d.reply("ok", at=d.now + 0.6)
    assert not d.proto.can_send(end - 1.0)


# ---- keepalive -----------------------------------------------------------------------------------


def test_first_command_goes_out_at_connect() -> None:
    d = Driver.create(connect_at=5.0)
    assert d.proto.next_deadline() == 5.0
    assert d.proto.handle_timer(4.9) == []
    assert d.proto.datagrams_to_send() == []
    d.timer(5.0)
    assert d.drain_wire() == [b"command"]
    assert d.proto.counters.keepalives == 1
    assert d.events == []  # internal: no events for the caller


def feed_drone(
    d: Driver, until: float, *, step: float = 0.1, answer: bool = True, state: bool = True
) -> None:
    """A drone that streams state every `step` and answers each `command` 10 ms later."""
    t = d.now
    while t < until:
        t = min(until, t + step)
        before = len(d.wire)
        d.run_until(t)
        if answer and any(data == b"command" for _, data in d.wire[before:]):
            d.reply("ok", at=d.now + 0.01)
        if state:
            d.state(at=max(d.now, t))


def test_keepalive_every_keepalive_s_of_quiet() -> None:
    d = connected()
    feed_drone(d, 31.0)
    sends = [t for t, data in d.wire if data == b"command"]
    assert sends == pytest.approx([5.0, 10.0, 15.0, 20.0, 25.0, 30.0])
    assert d.events
    assert not outcomes(d.events)


def test_user_traffic_counts_as_keepalive() -> None:
    d = connected()
    feed_drone(d, 3.0)
    d.proto.send(BATTERY, 3.0)
    d.reply("80", at=3.01)
    feed_drone(d, 9.0)
    sends = [t for t, data in d.wire if data == b"command"]
    assert sends == pytest.approx([8.0])


def test_no_keepalive_while_a_command_is_pending_when_side_keepalives_are_off() -> None:
    d = connected(ProtocolConfig(keepalive_beside_pending=False))
    long_move = commands.move("forward", 500)  # 55 s budget
    d.proto.send(long_move, 1.0)
    feed_drone(d, 50.0)
    assert b"command" not in [data for _, data in d.wire]
    d.reply("ok", at=50.0)
    feed_drone(d, 50.5)
    sends = [t for t, data in d.wire if data == b"command"]
    # After the settle window, plus the head start a waiting caller gets over a keepalive.
    assert sends == pytest.approx([50.0 + CFG.settle_s + CFG.keepalive_yield_s])


def test_quiet_wire_while_disconnected_is_probed_at_reconnect_s() -> None:
    cfg = ProtocolConfig(retries=0)
    d = Driver.create(cfg)
    d.run_until(30.0)  # nobody ever answers
    assert d.proto.status(d.now) is LinkStatus.DISCONNECTED
    probes = [t for t, data in d.wire if data == b"command"]
    assert probes[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    # each probe waits out its own timeout, then the next follows reconnect_s later
    assert max(gaps) == pytest.approx(commands.READ_TIMEOUT_S + cfg.reconnect_s)


def test_a_due_probe_goes_before_the_next_caller_command() -> None:
    """A drone that rebooted ignores everything but `command`: a caller polling it must not
    starve the probe that brings it back into SDK mode."""
    d = connected()
    d.run_until(1.5)  # state stopped at 0.01: stale from 1.01, and a probe goes out
    assert d.proto.status(d.now) is LinkStatus.STALE
    probe = max(t for t, data in d.wire if data == b"command")
    assert probe == pytest.approx(1.01)
    d.reply("ok", at=d.now)
    d.run_until(d.now + CFG.settle_s)
    assert d.proto.can_send(d.now)  # between probes the wire is the callers'
    d.run_until(probe + CFG.reconnect_s)
    assert not d.proto.can_send(d.now)  # the next probe is due: it goes first
    assert d.proto.ready_at(d.now) is None
    d.timer(d.now)
    assert d.sent_texts()[-1] == "command"


def test_disconnected_link_probes_at_least_every_reconnect_s() -> None:
    d = Driver.create()
    d.run_until(30.0)
    sends = [t for t, data in d.wire if data == b"command"]
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert max(gaps) <= CFG.reconnect_s + BATTERY.timeout_s + CFG.retry_backoff_s + 1e-9


# ---- link status ---------------------------------------------------------------------------------


def status_changes(events: list[Event]) -> list[tuple[LinkStatus, LinkStatus]]:
    return [(e.old, e.new) for e in of_type(events, StatusChanged)]


def test_disconnected_until_anything_is_heard() -> None:
    d = Driver.create()
    assert d.proto.status(0.0) is LinkStatus.DISCONNECTED
    d.run_until(2.0)
    assert d.proto.status(2.0) is LinkStatus.DISCONNECTED
    assert status_changes(d.events) == []


def test_state_packet_connects() -> None:
    d = Driver.create()
    d.timer(0.0)
    events = d.state(at=0.2)
    assert status_changes(events) == [(LinkStatus.DISCONNECTED, LinkStatus.CONNECTED)]
    [tel] = of_type(events, TelemetryReceived)
    assert tel.telemetry.battery_pct == 87
    assert d.proto.telemetry == tel.telemetry
    assert d.proto.state_age(0.7) == pytest.approx(0.5)


def test_reply_without_state_is_stale_then_state_connects() -> None:
    d = Driver.create()
    d.timer(0.0)
    assert status_changes(d.reply("ok", at=0.01)) == [(LinkStatus.DISCONNECTED, LinkStatus.STALE)]
    assert d.proto.reply_age(0.51) == pytest.approx(0.5)
    assert status_changes(d.state(at=0.1)) == [(LinkStatus.STALE, LinkStatus.CONNECTED)]


def test_connected_goes_stale_on_time() -> None:
    d = connected()
    d.state(at=2.0)
    deadline = d.proto.next_deadline()
    assert deadline is not None
    assert deadline <= 2.0 + CFG.stale_after_s
    assert d.proto.status(2.0 + CFG.stale_after_s - 1e-6) is LinkStatus.CONNECTED
    d.run_until(2.0 + CFG.stale_after_s)
    [changed] = of_type(d.events, StatusChanged)
    assert (changed.old, changed.new) == (LinkStatus.CONNECTED, LinkStatus.STALE)
    assert changed.at == pytest.approx(2.0 + CFG.stale_after_s)


def test_stale_while_a_command_is_pending_is_still_on_time() -> None:
    d = connected()
    d.proto.send(commands.move("forward", 500), 0.5)
    d.run_until(0.01 + CFG.stale_after_s)
    assert status_changes(d.events) == [(LinkStatus.CONNECTED, LinkStatus.STALE)]


def test_fresh_state_keeps_it_connected() -> None:
    d = connected()
    feed_drone(d, 20.0, step=CFG.stale_after_s / 2)
    assert status_changes(d.events) == []


@pytest.mark.parametrize("disconnect_after", [1, 2, 3])
def test_stale_to_disconnected_after_unanswered_keepalives_and_recovery(disconnect_after: int) -> None:
    cfg = ProtocolConfig(disconnect_after=disconnect_after)
    d = connected(cfg)
    d.run_until(200.0)
    changes = of_type(d.events, StatusChanged)
    assert [(e.old, e.new) for e in changes] == [
        (LinkStatus.CONNECTED, LinkStatus.STALE),
        (LinkStatus.STALE, LinkStatus.DISCONNECTED),
    ]
    assert changes[0].at == pytest.approx(0.01 + cfg.stale_after_s)
    # Count the keepalive rounds (first send + retries) that ran out before the disconnect.
    per_round = cfg.retries + 1
    probes_before = [t for t, data in d.wire if data == b"command" and t < changes[1].at]
    assert len(probes_before) == disconnect_after * per_round
    assert changes[1].at == pytest.approx(probes_before[-1] + commands.SPECS["command"].timeout_s)
    # The drone comes back: it answers the next probe and streams state again.
    d.wire.clear()
    d.events.clear()
    feed_drone(d, 215.0, state=False)
    assert status_changes(d.events) == [(LinkStatus.DISCONNECTED, LinkStatus.STALE)]
    d.events.clear()
    d.state()
    assert d.proto.status(d.now) is LinkStatus.CONNECTED
    assert status_changes(d.events) == [(LinkStatus.STALE, LinkStatus.CONNECTED)]


def test_answered_keepalive_error_counts_as_heard() -> None:
    d = Driver.create()
    d.timer(0.0)
    events = d.reply("error", at=0.1)
    assert not of_type(events, CommandFailed)
    assert d.proto.status(0.1) is LinkStatus.STALE


def test_drone_that_answers_and_streams_is_not_disconnected() -> None:
    d = connected(ProtocolConfig(disconnect_after=1))
    d.run_until(50.0)
    assert d.proto.status(d.now) is LinkStatus.DISCONNECTED
    # While disconnected the probes keep going out; the first one answered ends it.
    d.wire.clear()
    while not d.wire:
        d.run_until(d.proto.next_deadline() or d.now)
    assert d.sent_texts() == ["command"]
    d.reply("ok", at=d.now + 0.01)
    d.state(at=d.now + 0.02)
    assert d.proto.status(d.now) is LinkStatus.CONNECTED


def test_garbage_state_is_a_bad_datagram_and_does_not_refresh() -> None:
    d = connected()
    bad = d.proto.counters.bad_state
    for raw in (b"", b"garbage", STATE_PACKET.replace("bat:87;", "").encode(), b"\xff\xfe"):
        events = d.state(raw, at=d.now + 0.3)
        assert [type(e) for e in events] == [BadDatagram]
        assert isinstance(events[0], BadDatagram)
        assert events[0].channel == "state"
    assert d.proto.counters.bad_state == bad + 4
    assert d.proto.state_age(d.now) == pytest.approx(d.now - 0.01)
    d.run_until(d.now)
    assert d.proto.status(d.now) is LinkStatus.STALE


# ---- deadlines -----------------------------------------------------------------------------------


def test_next_deadline_always_exists_and_moves_forward_in_a_busy_session() -> None:
    d = connected(FRESH)
    d.proto.send(BATTERY, 1.0)
    d.run_until(10.0)  # run_until asserts next_deadline > now after every timer
    wait_until_free(d)
    d.proto.send(UP, d.now)
    d.run_until(30.0)
    d.proto.send_priority(EMERGENCY, 30.0)
    d.run_until(60.0)
    assert d.proto.next_deadline() is not None


def test_handle_timer_early_does_nothing() -> None:
    d = connected()
    d.proto.send(BATTERY, 1.0)
    deadline = d.proto.next_deadline()
    assert deadline is not None
    before = d.proto.counters.sent
    assert d.proto.handle_timer(deadline - 0.001) == []
    assert d.proto.counters.sent == before


def test_late_timer_call_catches_up_without_losing_the_outcome() -> None:
    d = connected()
    ticket = d.proto.send(TAKEOFF, 1.0)
    d.timer(500.0)  # a transport that slept far too long
    [failed] = resolutions(d.events, ticket)
    assert isinstance(failed, CommandFailed)
    assert isinstance(failed.error, OutcomeUnknown)
    deadline = d.proto.next_deadline()
    assert deadline is not None
    assert deadline > 500.0


def test_next_deadline_moves_forward_during_long_emergency_repeats() -> None:
    d = connected(ProtocolConfig(emergency_repeats=5, emergency_interval_s=0.2))
    d.proto.send_priority(EMERGENCY, 1.0)
    d.now = 1.0
    d.run_until(5.0)


def test_next_deadline_moves_forward_after_a_late_timer_during_emergency() -> None:
    d = connected()
    d.proto.send_priority(EMERGENCY, 1.0)
    d.timer(2.0)
    deadline = d.proto.next_deadline()
    assert deadline is not None
    assert deadline > 2.0


@pytest.mark.parametrize("state_at", [0.9, 1.3])
def test_stale_deadline_fires_despite_float_rounding(state_at: float) -> None:
    d = connected()
    d.state(at=state_at)
    deadline = d.proto.next_deadline()
    assert deadline == state_at + CFG.stale_after_s
    events = d.timer(deadline)
    assert status_changes(events) == [(LinkStatus.CONNECTED, LinkStatus.STALE)]


@pytest.mark.parametrize("state_at", [0.1, 0.7, 2.3])
def test_stale_deadline_fires_the_transition(state_at: float) -> None:
    d = connected()
    d.state(at=state_at)
    deadline = d.proto.next_deadline()
    assert deadline == state_at + CFG.stale_after_s
    assert status_changes(d.timer(deadline)) == [(LinkStatus.CONNECTED, LinkStatus.STALE)]


def test_move_with_nan_speed_claim_still_times_out() -> None:
    d = connected()
    ticket = d.proto.send(commands.move("up", 100, speed_cm_s=math.nan), 1.0)
    d.proto.handle_timer(10_000.0)
    deadline = d.proto.next_deadline()
    assert deadline is not None
    assert math.isfinite(deadline)
    assert d.proto.pending is None
    assert ticket > 0


def test_garbage_attitude_reply_does_not_escape_receive_reply() -> None:
    d = connected()
    d.proto.send(commands.query("attitude?"), 1.0)
    events = d.reply("pitch:nan;roll:0;yaw:0;", at=1.01)
    assert [type(e) for e in events] == [StrayReply]


def test_late_ok_of_first_land_attempt_after_retry_is_accepted() -> None:
    land = commands.simple("land")
    d = connected(ProtocolConfig(stale_after_s=1000.0))
    d.state(STATE_PACKET.replace(";h:0;", ";h:80;"), at=0.5)  # flying (and the state then stops)
    ticket = d.proto.send(land, 1.0)
    d.run_until(1.0 + land.timeout_s + CFG.retry_backoff_s)  # the retry just went out
    assert d.sent_texts().count("land") == 2
    events = d.reply("ok", at=d.now + CFG.motion_min_reply_s / 2)
    assert resolutions(events, ticket)


# ---- counters ------------------------------------------------------------------------------------


def test_counters_count_what_happened() -> None:
    d = connected(FRESH)
    c = d.proto.counters
    assert (c.sent, c.replies, c.keepalives) == (1, 1, 1)
    d.proto.send(BATTERY, 1.0)
    d.reply("ok", at=1.01)  # stray
    d.run_until(4.5)  # 2 retries then timeout at 4.2
    d.state(b"junk", at=4.6)
    assert (c.sent, c.replies, c.strays, c.retries, c.timeouts, c.bad_state) == (4, 1, 1, 2, 1, 1)
    assert c.keepalives == 1
