"""The sans-IO drone model on a virtual clock: every quirk of the real drone, deterministically."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace

import pytest

from drone_sim.commands import Led, LedMode, MatrixChar, MatrixColor, MatrixPattern
from drone_sim.config import DroneConfig
from drone_sim.drone import Drone, Output, Reply, StartVideo, StopVideo
from drone_sim.flight import TRANSITIONS, FlightState, InvalidTransition, Trigger, next_state
from drone_sim.pose import Pose
from drone_sim.records import Address, EventKind, Outcome

SENDER: Address = ("127.0.0.7", 50123)
OTHER: Address = ("127.0.0.8", 40000)


class Pilot:
    """Drives a `Drone` on virtual time and keeps every reply with the time it was produced."""

    def __init__(self, config: DroneConfig | None = None, *, sdk: bool = True) -> None:
        self.drone = Drone(config if config is not None else DroneConfig(), now=0.0)
        self.t = 0.0
        self.replies: list[tuple[float, str, int]] = []
        self.outputs: list[Output] = []
        if sdk:
            assert self.send("command") == ["ok"]

    def _collect(self, outputs: tuple[Output, ...] | list[Output]) -> list[str]:
        self.outputs.extend(outputs)
        texts: list[str] = []
        for output in outputs:
            if isinstance(output, Reply):
                self.replies.append((self.t, output.text, output.seq))
                texts.append(output.text)
        return texts

    def send(self, text: str, sender: Address = SENDER) -> list[str]:
        return self._collect(self.drone.handle(text.encode(), sender, self.t).outputs)

    def wait(self, seconds: float) -> list[str]:
        self.t += seconds
        return self._collect(self.drone.advance(self.t))

    def hold(self, seconds: float) -> None:
        """Let time pass while keeping the link alive with `command` every 5 s, like a client."""
        end = self.t + seconds
        while self.t < end:
            self.wait(min(5.0, end - self.t))
            assert self.send("command") == ["ok"]

    def run_until_reply(self, limit_s: float = 600.0) -> tuple[float, str]:
        """Jump from deadline to deadline until the drone says something."""
        start = len(self.replies)
        while len(self.replies) == start:
            deadline = self.drone.next_deadline()
            assert deadline is not None, "drone went quiet"
            assert deadline - self.t < limit_s, "drone went quiet"
            self.wait(max(0.0, deadline - self.t))
        t, text, _ = self.replies[start]
        return t, text

    def fly(self) -> None:
        """Take off and settle in a hover at 80 cm."""
        assert self.send("takeoff") == []
        _t, text = self.run_until_reply()
        assert text == "ok"

    @property
    def state(self) -> FlightState:
        return self.drone.flight_state

    def pose(self) -> Pose:
        return self.drone.pose_at(self.t)


# ---------------------------------------------------------------------- SDK mode


def test_silent_until_command_enters_sdk_mode() -> None:
    p = Pilot(sdk=False)
    for text in ("battery?", "takeoff", "nonsense", "rc 0 0 0 0"):
        handled = p.drone.handle(text.encode(), SENDER, p.t)
        assert handled.outputs == ()
        assert handled.ignored == "not in SDK mode"
        assert handled.seq is None
    assert p.drone.state_packet(p.t) is None
    assert p.drone.executed == ()
    assert p.send("command") == ["ok"]
    assert p.drone.sdk_mode
    assert p.drone.state_destination == (SENDER[0], 8890)
    assert p.send("battery?") == ["100"]
    assert [e.kind for e in p.drone.events] == [EventKind.SDK_ENTERED]


def test_empty_datagrams_are_ignored_not_answered() -> None:
    p = Pilot()
    assert p.drone.handle(b"  \r\n", SENDER, 0.0).ignored == "empty datagram"
    assert p.replies == [(0.0, "ok", 1)]


def test_leaves_sdk_mode_15_s_after_the_last_command() -> None:
    p = Pilot()
    p.wait(10.0)
    assert p.send("battery?") == ["100"]
    p.wait(14.9)
    assert p.drone.sdk_mode
    assert p.drone.state_packet(p.t) is not None
    p.wait(0.2)
    assert not p.drone.sdk_mode
    assert p.drone.state_packet(p.t) is None
    assert p.drone.state_destination is None
    exits = [e for e in p.drone.events if e.kind is EventKind.SDK_EXITED]
    assert len(exits) == 1
    assert exits[0].t == pytest.approx(25.0)
    assert p.drone.handle(b"battery?", SENDER, p.t).ignored == "not in SDK mode"
    assert p.send("command") == ["ok"]
    assert p.send("battery?") == ["100"]


def test_garbage_does_not_keep_the_link_alive_but_keepalive_is_unknown_by_default() -> None:
    p = Pilot()
    p.wait(10.0)
    assert p.send("keepalive") == ["unknown command: keepalive"]
    assert p.send("bogus") == ["unknown command: bogus"]
    p.wait(5.1)
    assert not p.drone.sdk_mode


def test_keepalive_can_be_supported() -> None:
    p = Pilot(DroneConfig(keepalive_supported=True))
    p.wait(10.0)
    assert p.send("keepalive") == ["ok"]
    p.wait(10.0)
    assert p.drone.sdk_mode


def test_command_moves_the_state_destination_to_the_latest_sender() -> None:
    p = Pilot()
    assert p.send("command", OTHER) == ["ok"]
    assert p.drone.state_destination == (OTHER[0], 8890)
    p.drone.configure_ports(state_port=40001)
    assert p.drone.state_destination == (OTHER[0], 40001)


# ---------------------------------------------------------------------- replies


def test_every_read_reply_form_on_the_ground() -> None:
    p = Pilot()
    assert p.send("battery?") == ["100"]
    assert p.send("speed?") == ["100.0"]
    assert p.send("time?") == ["0s"]
    assert p.send("height?") == ["0dm"]
    assert p.send("temp?") == ["60~62C"]
    assert p.send("attitude?") == ["pitch:0;roll:0;yaw:0;"]
    assert p.send("baro?") == ["220.00"]
    assert p.send("acceleration?") == ["agx:-3.00;agy:1.00;agz:-999.00;"]
    assert p.send("tof?") == ["100mm"]
    assert p.send("wifi?") == ["90"]
    assert p.send("sdk?") == ["30"]
    assert p.send("sn?") == ["0TQDG7REDACTED"]
    assert p.send("hardware?") == ["RMTT"]
    assert p.send("EXT tof?") == ["tof 8190"]


def test_read_replies_follow_the_physics() -> None:
    p = Pilot(DroneConfig(serial="0TQZH1234567", tof_range_cm=150.0, ext_tof_mm=1234, baro_ground_m=12.0))
    p.fly()
    assert p.send("height?") == ["8dm"]
    assert p.send("tof?") == ["900mm"]
    assert p.send("baro?") == ["12.80"]
    assert p.send("time?") == ["5s"]
    assert p.send("speed 55") == ["ok"]
    assert p.send("speed?") == ["55.0"]
    assert p.send("sn?") == ["0TQZH1234567"]
    assert p.send("EXT tof?") == ["tof 1234"]
    p.send("up 100")
    p.run_until_reply()
    assert p.send("height?") == ["18dm"]
    assert p.send("tof?") == ["8190mm"]  # 190 cm is beyond the 150 cm this ToF sees
    assert p.send("cw 90") == []
    p.run_until_reply()
    assert p.send("attitude?") == ["pitch:0;roll:0;yaw:90;"]
    p.send("ccw 270")
    p.run_until_reply()
    assert p.send("attitude?") == ["pitch:0;roll:0;yaw:180;"]


def test_temperatures_rise_with_motor_time() -> None:
    p = Pilot()
    assert p.send("motoron") == ["ok"]
    p.hold(600.0)
    assert p.send("temp?") == ["85~87C"]
    assert p.drone.motor_time_s == pytest.approx(600.0)
    assert p.send("time?") == ["600s"]


def test_led_and_matrix_commands() -> None:
    p = Pilot()
    assert p.send("EXT led 255 0 0") == ["led ok"]
    assert p.drone.led == Led(LedMode.SOLID, ((255, 0, 0),))
    assert p.send("EXT led br 1 0 0 255") == ["led ok"]
    assert p.send("EXT led bl 5 255 0 0 0 0 255") == ["led ok"]
    assert p.drone.led is not None
    assert p.drone.led.mode is LedMode.BLINK
    assert p.send("EXT mled g " + "r" * 64) == ["matrix ok"]
    assert p.drone.matrix == MatrixPattern("r" * 64)
    assert p.send("EXT mled l b 1 hello") == ["matrix ok"]
    assert p.send("EXT mled s p 7") == ["matrix ok"]
    assert p.drone.matrix == MatrixChar(MatrixColor.PURPLE, "7")
    assert p.send("EXT mled sc") == ["matrix ok"]
    assert p.drone.matrix is None
    assert p.send("EXT led 300 0 0") == ["out of range"]


def test_settings_commands_reply_ok() -> None:
    p = Pilot()
    for text in (
        "mon",
        "mdirection 1",
        "moff",
        "setfps high",
        "setbitrate 3",
        "setresolution low",
        "downvision 1",
    ):
        assert p.send(text) == ["ok"], text
    assert p.drone.mission_pads is False
    assert p.drone.mission_pad_direction == 1


def test_errors_are_answered_and_recorded_as_rejected() -> None:
    p = Pilot()
    assert p.send("up 10") == ["out of range"]
    assert p.send("jump") == ["unknown command: jump"]
    assert p.send("forward x") == ["error"]
    assert p.send("rc 1 2") == []
    rejected = [r for r in p.drone.executed if r.outcome is Outcome.REJECTED]
    assert [(r.text, r.reply, r.command) for r in rejected] == [
        ("up 10", "out of range", None),
        ("jump", "unknown command: jump", None),
        ("forward x", "error", None),
        ("rc 1 2", None, None),
    ]


# ---------------------------------------------------------------------- flight


def test_takeoff_replies_when_the_climb_is_done() -> None:
    p = Pilot()
    assert p.send("takeoff") == []
    assert p.state is FlightState.TAKING_OFF
    assert p.drone.flying
    p.wait(3.0)
    assert len(p.replies) == 1  # only `command` has been answered
    assert 0 < p.pose().z < 80
    p.wait(2.0)
    assert len(p.replies) == 1
    t, text = p.run_until_reply()
    assert (t, text) == (pytest.approx(5.5), "ok")
    assert p.state is FlightState.HOVERING
    assert p.pose().z == pytest.approx(80.0)
    record = p.drone.executed[-1]
    assert record.text == "takeoff"
    assert record.outcome is Outcome.DONE
    assert record.reply == "ok"
    assert record.finished_t == pytest.approx(5.5)


def test_land_takes_about_three_seconds_from_hover() -> None:
    p = Pilot()
    p.fly()
    start = p.t
    assert p.send("land") == []
    assert p.state is FlightState.LANDING
    t, text = p.run_until_reply()
    assert text == "ok"
    assert 3.0 <= t - start <= 4.0
    assert p.state is FlightState.LANDED
    assert not p.drone.flying
    assert p.pose().z == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("forward 100", (100.0, 0.0, 80.0)),
        ("back 50", (-50.0, 0.0, 80.0)),
        ("left 30", (0.0, 30.0, 80.0)),
        ("right 30", (0.0, -30.0, 80.0)),
        ("up 40", (0.0, 0.0, 120.0)),
        ("down 40", (0.0, 0.0, 40.0)),
        ("down 500", (0.0, 0.0, 20.0)),  # never below the minimum flying height
    ],
)
def test_moves_go_where_they_say(text: str, expected: tuple[float, float, float]) -> None:
    p = Pilot()
    p.fly()
    assert p.send(text) == []
    assert p.state is FlightState.MOVING
    p.run_until_reply()
    pose = p.pose()
    assert (pose.x, pose.y, pose.z) == pytest.approx(expected, abs=1e-6)
    assert p.state is FlightState.HOVERING


def test_move_duration_is_distance_over_speed_plus_overhead() -> None:
    p = Pilot()
    p.fly()
    assert p.send("speed 50") == ["ok"]
    start = p.t
    p.send("forward 200")
    t, _ = p.run_until_reply()
    assert t - start == pytest.approx(200 / 50 + 1.0)
    # Mid-move, the state stream reports the commanded speed (dm/s) in the body frame.
    p.send("forward 200")
    p.wait(2.0)
    fields = dict(f.split(":", 1) for f in (p.drone.state_packet(p.t) or "").strip().split(";") if f)
    assert fields["vgx"] == "5"
    assert fields["vgy"] == "0"
    assert fields["vgz"] == "0"


def test_moves_are_in_the_body_frame() -> None:
    p = Pilot()
    p.fly()
    p.send("cw 90")
    t, _ = p.run_until_reply()
    assert t == pytest.approx(5.5 + 90 / 90 + 0.5)
    p.send("forward 100")
    p.run_until_reply()
    pose = p.pose()
    assert (pose.x, pose.y, pose.yaw) == pytest.approx((0.0, -100.0, 90.0), abs=1e-6)
    p.send("go 0 50 20 25")
    p.run_until_reply()
    pose = p.pose()
    assert (pose.x, pose.y, pose.z) == pytest.approx((50.0, -100.0, 100.0), abs=1e-6)


def test_rotation_wraps_yaw_into_the_reported_range() -> None:
    p = Pilot()
    p.fly()
    p.send("ccw 190")
    p.wait(0.25 + 95 / 90)
    assert p.pose().yaw == pytest.approx(-95.0)
    p.run_until_reply()
    assert p.pose().yaw == pytest.approx(170.0)


def test_flip_takes_two_seconds_and_turns_over() -> None:
    p = Pilot()
    p.fly()
    start = p.t
    p.send("flip b")
    p.wait(0.5)
    assert p.pose().pitch == pytest.approx(90.0)
    t, text = p.run_until_reply()
    assert text == "ok"
    assert t - start == pytest.approx(2.0)
    assert p.pose().pitch == 0.0
    assert p.pose().z == pytest.approx(80.0)


def test_flip_is_refused_below_half_battery() -> None:
    p = Pilot(DroneConfig(initial_battery_pct=49.0))
    p.fly()
    assert p.send("flip l") == ["error"]
    assert p.state is FlightState.HOVERING
    p.drone.set_battery(50.0, p.t)
    assert p.send("flip l") == []


def test_curve_follows_an_arc_through_both_points() -> None:
    p = Pilot()
    p.fly()
    p.send("curve 100 100 0 200 0 0 50")
    record = p.drone.executed[-1]
    # Half-circle of radius 100: length pi*100 at 50 cm/s plus the overhead.
    t, text = p.run_until_reply()
    assert text == "ok"
    assert t - record.t == pytest.approx(math.pi * 100 / 50 + 1.0)
    pose = p.pose()
    assert (pose.x, pose.y, pose.z) == pytest.approx((200.0, 0.0, 80.0), abs=1e-6)
    midpoint = p.drone.executed[-1]
    assert midpoint.outcome is Outcome.DONE
    # Halfway through the travel the drone is at the top of the arc, through (100, 100).
    q = Pilot()
    q.fly()
    q.send("curve 100 100 0 200 0 0 50")
    q.wait(0.5 + math.pi * 100 / 50 / 2)
    top = q.pose()
    assert (top.x, top.y) == pytest.approx((100.0, 100.0), abs=1e-6)


def test_mission_pad_relative_moves_fail_without_pads() -> None:
    p = Pilot()
    p.fly()
    assert p.send("go 100 0 0 50 m1") == ["error"]
    assert p.send("curve 100 100 0 200 0 0 50 m2") == ["error"]


def test_actions_need_a_flying_drone() -> None:
    p = Pilot()
    for text in ("forward 50", "cw 90", "flip f", "go 100 0 0 50", "curve 100 100 0 200 0 0 50", "land"):
        assert p.send(text) == ["error Motor stop"], text
    assert p.state is FlightState.LANDED
    assert all(r.outcome is Outcome.REJECTED for r in p.drone.executed[1:])


def test_takeoff_when_already_flying_is_an_error() -> None:
    p = Pilot()
    p.fly()
    assert p.send("takeoff") == ["error"]


def test_takeoff_is_refused_on_a_nearly_empty_battery() -> None:
    p = Pilot(DroneConfig(initial_battery_pct=9.0))
    assert p.send("takeoff") == ["error"]
    assert p.state is FlightState.LANDED


def test_a_second_action_during_a_move_is_refused_not_queued() -> None:
    p = Pilot()
    p.fly()
    p.send("forward 300")
    p.wait(1.0)
    assert p.send("cw 90") == ["error Not joystick"]
    assert p.send("land") == ["error Not joystick"]
    assert p.send("takeoff") == ["error Not joystick"]
    # Reads, settings and `command` are answered at once.
    assert p.send("battery?") == ["100"]
    assert p.send("command") == ["ok"]
    assert p.send("speed 20") == ["ok"]
    _t, text = p.run_until_reply()
    assert text == "ok"
    assert p.pose().x == pytest.approx(300.0)
    assert [r.text for r in p.drone.executed if r.outcome is Outcome.DONE and r.is_flight_action] == [
        "takeoff",
        "forward 300",
    ]


def test_stop_interrupts_a_move_with_forced_stop_then_ok() -> None:
    p = Pilot()
    p.fly()
    p.send("forward 300")
    move_seq = p.drone.executed[-1].seq
    p.wait(1.5)
    x_at_stop = p.pose().x
    assert 0 < x_at_stop < 300
    assert p.send("stop") == ["forced stop", "ok"]
    assert p.state is FlightState.HOVERING
    record = p.drone.executed[move_seq - 1]
    assert record.outcome is Outcome.INTERRUPTED
    assert record.reply == "forced stop"
    assert [seq for _, _, seq in p.replies[-2:]] == [move_seq, move_seq + 1]
    p.wait(30.0)
    assert p.pose().x == pytest.approx(x_at_stop)


def test_stop_while_hovering_or_landed_is_ok() -> None:
    p = Pilot()
    assert p.send("stop") == ["ok"]
    p.fly()
    assert p.send("stop") == ["ok"]
    assert p.state is FlightState.HOVERING


def test_stop_can_interrupt_takeoff_and_landing() -> None:
    p = Pilot()
    p.send("takeoff")
    p.wait(3.0)
    assert p.send("stop") == ["forced stop", "ok"]
    assert p.state is FlightState.HOVERING
    assert 0 < p.pose().z < 80
    p.send("land")
    p.wait(1.5)
    assert p.send("stop") == ["forced stop", "ok"]
    assert p.state is FlightState.HOVERING


def test_emergency_drops_the_drone_and_the_running_move_never_replies() -> None:
    p = Pilot()
    p.fly()
    p.send("up 200")
    p.wait(1.5)
    assert p.send("emergency") == ["ok"]
    assert p.state is FlightState.FALLEN
    assert not p.drone.flying
    assert p.pose().z == 0.0
    move = next(r for r in p.drone.executed if r.text == "up 200")
    assert move.outcome is Outcome.INTERRUPTED
    assert move.reply is None
    p.wait(100.0)
    assert [text for _, text, _ in p.replies] == ["ok", "ok", "ok"]  # command, takeoff, emergency
    (event,) = [e for e in p.drone.events if e.kind is EventKind.EMERGENCY]
    assert event.detail == "motors cut at 180 cm"  # 1 s of climbing at 100 cm/s after the spin-up
    # It can fly again.
    p.send("command")
    p.fly()
    assert p.state is FlightState.HOVERING


def test_motoron_and_motoroff() -> None:
    p = Pilot()
    assert p.send("motoron") == ["ok"]
    assert p.state is FlightState.MOTORS_ON
    p.hold(10.0)
    assert p.drone.motor_time_s == pytest.approx(10.0)
    assert p.send("forward 50") == ["error Motor stop"]
    assert p.send("motoroff") == ["ok"]
    assert p.state is FlightState.LANDED
    p.send("motoron")
    p.fly()
    assert p.send("motoroff") == ["error"]
    assert p.send("motoron") == ["error"]


def test_rc_never_replies_and_flies_the_sticks() -> None:
    p = Pilot()
    assert p.send("rc 0 50 0 0") == []
    assert p.drone.executed[-1].outcome is Outcome.REJECTED  # on the ground: ignored
    p.fly()
    assert p.send("rc 0 50 0 0") == []
    p.wait(2.0)
    assert p.pose().x == pytest.approx(100.0)
    assert p.send("rc -100 0 50 0") == []
    p.wait(1.0)
    pose = p.pose()
    assert (pose.x, pose.y, pose.z) == pytest.approx((100.0, 100.0, 130.0))
    assert p.send("rc 0 0 0 100") == []
    p.wait(0.9)
    assert p.pose().yaw == pytest.approx(90.0)
    assert p.send("rc 0 0 -100 0") == []
    p.wait(10.0)
    assert p.pose().z == pytest.approx(20.0)
    assert p.send("stop") == ["ok"]
    p.wait(1.0)
    assert p.pose().z == pytest.approx(20.0)
    assert all(text == "ok" for _, text, _ in p.replies)


def test_rc_curves_with_constant_yaw_rate() -> None:
    p = Pilot(DroneConfig(rc_max_yaw_rate_deg_s=90.0))
    p.fly()
    # Forward at 100 cm/s while turning 90 deg/s: a quarter circle of radius 200/pi in 1 s.
    p.send("rc 0 100 0 100")
    p.wait(1.0)
    r = 100 / math.radians(90)
    pose = p.pose()
    assert (pose.x, pose.y, pose.yaw) == pytest.approx((r, -r, 90.0))


# ---------------------------------------------------------------------- timers and power


def test_auto_land_after_15_s_without_a_command() -> None:
    p = Pilot()
    p.fly()
    hovering_since = p.t
    p.wait(14.9)
    assert p.state is FlightState.HOVERING
    p.wait(0.2)
    assert p.state is FlightState.LANDING
    assert p.drone.auto_landing is EventKind.AUTO_LAND
    (event,) = [e for e in p.drone.events if e.kind is EventKind.AUTO_LAND]
    assert event.t == pytest.approx(hovering_since + 15.0)
    # Out of SDK mode at the same instant: the drone is deaf to all but `command`.
    assert not p.drone.sdk_mode
    p.send("command")
    assert p.send("forward 50") == ["error Auto land"]
    assert p.send("stop") == ["error Auto land"]
    p.wait(10.0)
    assert p.state is FlightState.LANDED
    assert p.pose().z == 0.0
    assert p.drone.auto_landing is None
    assert [text for _, text, _ in p.replies] == ["ok", "ok", "ok", "error Auto land", "error Auto land"]


def test_a_long_move_is_not_idleness() -> None:
    p = Pilot()
    p.fly()
    p.send("speed 10")
    start = p.t
    p.send("forward 500")
    t, text = p.run_until_reply()
    assert text == "ok"
    assert t - start == pytest.approx(51.0)
    assert p.state is FlightState.HOVERING
    assert p.drone.sdk_mode
    assert not [e for e in p.drone.events if e.kind is EventKind.AUTO_LAND]


def test_battery_drains_with_flight_about_13_minutes_per_charge() -> None:
    p = Pilot()
    p.fly()
    level = p.drone.battery_level
    p.hold(60.0)
    drained = level - p.drone.battery_level
    assert drained == pytest.approx(60.0 * 100 / (13 * 60), rel=1e-6)
    q = Pilot()
    q.hold(60.0)
    assert 0 < 100 - q.drone.battery_level < drained / 5  # standing by costs far less


def test_low_battery_lands_on_its_own() -> None:
    p = Pilot()
    p.fly()
    p.send("forward 500")
    p.drone.set_battery(5.5, p.t)
    p.wait(1.0)
    assert p.state is FlightState.HOVERING or p.state is FlightState.MOVING
    p.wait(3.5)
    assert p.state is FlightState.LANDING
    assert p.drone.auto_landing is EventKind.LOW_BATTERY_LAND
    move = next(r for r in p.drone.executed if r.text == "forward 500")
    assert move.outcome is Outcome.INTERRUPTED
    assert move.reply == "error Auto land"
    assert p.send("takeoff") == ["error Auto land"]
    p.wait(10.0)
    assert p.state is FlightState.LANDED
    assert p.send("takeoff") == ["error"]  # 4 %: too low to take off
    assert p.send("battery?") == ["5"]


def test_an_empty_battery_powers_the_drone_off() -> None:
    p = Pilot()
    p.fly()
    p.drone.set_battery(0.0, p.t)
    assert p.state is FlightState.OFF
    assert [e.kind for e in p.drone.events][-2:] == [EventKind.CRASH, EventKind.BATTERY_DEAD]
    assert p.drone.handle(b"command", SENDER, p.t).ignored == "powered off"
    p.drone.power_on(p.t)
    assert p.state is FlightState.OFF  # nothing to power on with
    p.drone.set_battery(50.0, p.t)
    p.drone.power_on(p.t)
    assert p.state is FlightState.LANDED


def test_reboot_is_unanswered_deaf_for_a_while_then_out_of_sdk_mode() -> None:
    p = Pilot()
    p.send("speed 30")
    assert p.send("reboot") == []
    assert p.state is FlightState.BOOTING
    assert p.drone.handle(b"command", SENDER, p.t + 1.0).ignored == "booting"
    p.wait(4.0)
    assert p.state is FlightState.LANDED
    assert not p.drone.sdk_mode
    assert p.drone.handle(b"battery?", SENDER, p.t).ignored == "not in SDK mode"
    assert p.send("command") == ["ok"]
    assert p.send("speed?") == ["100.0"]
    assert [e.kind for e in p.drone.events] == [
        EventKind.SDK_ENTERED,
        EventKind.REBOOT,
        EventKind.BOOTED,
        EventKind.SDK_ENTERED,
    ]


def test_power_off_in_flight_is_a_crash() -> None:
    p = Pilot()
    p.fly()
    p.send("up 100")
    p.wait(0.3)
    p.drone.power_off(p.t)
    assert p.state is FlightState.OFF
    assert p.pose().z == 0.0
    assert not p.drone.sdk_mode
    assert p.drone.state_packet(p.t) is None
    assert [e.kind for e in p.drone.events][-2:] == [EventKind.CRASH, EventKind.POWER_OFF]
    move = p.drone.executed[-1]
    assert move.outcome is Outcome.INTERRUPTED
    assert move.reply is None
    p.drone.power_on(p.t + 1)
    p.t += 1
    assert p.state is FlightState.LANDED
    assert not p.drone.sdk_mode
    assert p.send("command") == ["ok"]


# ---------------------------------------------------------------------- state packets

STATE_AT_REST = (
    "mid:-1;x:-100;y:-100;z:-100;mpry:0,0,0;pitch:0;roll:0;yaw:0;vgx:0;vgy:0;vgz:0;"
    "templ:60;temph:62;tof:10;h:0;bat:87;baro:220.00;time:0;agx:-3.00;agy:1.00;agz:-999.00;\r\n"
)


def test_state_packet_format_at_rest() -> None:
    p = Pilot(DroneConfig(initial_battery_pct=87.0))
    assert p.drone.state_packet(p.t) == STATE_AT_REST


def test_state_packet_without_the_mission_pad_fields() -> None:
    p = Pilot(DroneConfig(initial_battery_pct=87.0, mission_pad_fields=False))
    assert p.drone.state_packet(p.t) == STATE_AT_REST.removeprefix("mid:-1;x:-100;y:-100;z:-100;mpry:0,0,0;")


def test_state_packet_in_flight_comes_from_the_physics() -> None:
    p = Pilot()
    p.fly()
    p.send("cw 45")
    p.run_until_reply()
    p.send("up 50")
    p.wait(0.9)
    packet = p.drone.state_packet(p.t)
    assert packet is not None
    pattern = (
        r"mid:-1;x:-100;y:-100;z:-100;mpry:0,0,0;pitch:0;roll:0;yaw:45;vgx:0;vgy:0;vgz:10;"
        r"templ:\d+;temph:\d+;tof:(\d+);h:(\d+);bat:(\d+);baro:(\d+\.\d\d);time:(\d+);"
        r"agx:-3\.00;agy:1\.00;agz:-999\.00;\r\n"
    )
    match = re.fullmatch(pattern, packet)
    assert match is not None, packet
    tof, h, bat, baro, time = match.groups()
    z = p.pose().z
    assert int(tof) == round(z + 10)
    assert int(h) == 10 * round(z / 10)
    assert int(bat) == p.drone.battery_pct == math.ceil(p.drone.battery_level)
    assert float(baro) == pytest.approx(220.0 + z / 100, abs=0.006)
    assert int(time) == int(p.drone.motor_time_s) == 7  # 5.5 s takeoff + 1 s turn + 0.9 s


def test_state_packet_reports_out_of_range_tof_as_6553() -> None:
    p = Pilot(DroneConfig(tof_range_cm=50.0))
    p.fly()
    assert "tof:6553;" in (p.drone.state_packet(p.t) or "")


# ---------------------------------------------------------------------- video and ports


def test_streamon_starts_video_to_the_sender_and_streamoff_stops_it() -> None:
    p = Pilot()
    assert p.send("streamon") == ["ok"]
    assert p.outputs[-2:] == [
        StartVideo((SENDER[0], 11111)),
        Reply("ok", SENDER, 2, p.drone.executed[-1].command),
    ]
    assert p.send("streamon") == ["ok"]
    assert sum(isinstance(o, StartVideo) for o in p.outputs) == 1
    assert p.send("port 9000 9001") == ["ok"]
    assert p.outputs[-3:-1] == [StopVideo(), StartVideo((SENDER[0], 9001))]
    assert p.drone.state_destination == (SENDER[0], 9000)
    assert p.send("streamoff") == ["ok"]
    assert isinstance(p.outputs[-2], StopVideo)
    assert p.drone.video_to is None


def test_reboot_forgets_ports_and_video() -> None:
    p = Pilot()
    p.drone.configure_ports(state_port=41000)
    p.send("port 9000 9001")
    p.send("streamon")
    assert p.drone.reboot(p.t) == [StopVideo()]
    p.wait(5.0)
    p.send("command")
    assert p.drone.state_destination == (SENDER[0], 41000)
    assert p.drone.video_port == 11111


# ---------------------------------------------------------------------- the state machine


def test_transitions_log_is_a_connected_walk_of_the_table() -> None:
    p = Pilot()
    p.fly()
    p.send("forward 50")
    p.wait(0.5)
    p.send("stop")
    p.send("land")
    p.run_until_reply()
    p.send("motoron")
    p.send("emergency")
    walk = p.drone.transitions
    assert [t.after for t in walk] == [
        FlightState.TAKING_OFF,
        FlightState.HOVERING,
        FlightState.MOVING,
        FlightState.HOVERING,
        FlightState.LANDING,
        FlightState.LANDED,
        FlightState.MOTORS_ON,
        FlightState.LANDED,
    ]
    for before, after in itertools.pairwise(walk):
        assert before.after is after.before
    for step in walk:
        assert TRANSITIONS[(step.before, step.trigger)] is step.after


def test_unknown_transitions_are_bugs() -> None:
    with pytest.raises(InvalidTransition):
        next_state(FlightState.LANDED, Trigger.LAND)
    with pytest.raises(InvalidTransition):
        next_state(FlightState.OFF, Trigger.POWER_OFF)
    assert next_state(FlightState.MOVING, Trigger.EMERGENCY) is FlightState.FALLEN


def test_records_are_immutable_snapshots() -> None:
    p = Pilot()
    p.send("takeoff")
    running = p.drone.executed[-1]
    assert running.outcome is Outcome.RUNNING
    assert running.reply is None
    p.run_until_reply()
    assert running.outcome is Outcome.RUNNING  # the old snapshot did not change
    assert p.drone.executed[-1] == replace(running, reply="ok", outcome=Outcome.DONE, finished_t=5.5)
