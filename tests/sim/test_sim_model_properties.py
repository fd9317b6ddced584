"""Hypothesis walks random (command, time, power) sequences through the drone model.

Whatever the client sends and whenever, the model must stay physically and logically
consistent: every transition is in the table, the drone is never underground, every command
that parsed gets at most one reply and every timed action ends.
"""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from drone_sim.config import DroneConfig
from drone_sim.drone import Drone, Output, Reply
from drone_sim.flight import TRANSITIONS, FlightState
from drone_sim.records import Address, Outcome

SENDER: Address = ("127.0.0.9", 40000)

COMMANDS = [
    "command",
    "takeoff",
    "land",
    "emergency",
    "stop",
    "forward 50",
    "back 300",
    "up 100",
    "down 200",
    "cw 90",
    "ccw 400",
    "flip f",
    "flip b",
    "go 50 50 50 60",
    "go 10 10 10 60",
    "curve 100 100 0 200 0 0 50",
    "speed 20",
    "speed 100",
    "rc 0 50 0 20",
    "rc 0 0 -100 0",
    "rc 0 0 0 0",
    "motoron",
    "motoroff",
    "reboot",
    "streamon",
    "streamoff",
    "battery?",
    "height?",
    "keepalive",
    "garbage",
    "",
]

Step = tuple[str, str | float]

steps = st.one_of(
    st.tuples(st.just("send"), st.sampled_from(COMMANDS)),
    st.tuples(st.just("send"), st.sampled_from(COMMANDS)),
    st.tuples(st.just("fly"), st.just(6.0)),
    st.tuples(st.just("wait"), st.sampled_from([0.0, 0.05, 0.4, 1.3, 3.0, 7.0, 16.0])),
    st.tuples(st.just("battery"), st.sampled_from([0.0, 4.0, 30.0, 60.0, 100.0])),
    st.tuples(st.just("power"), st.sampled_from(["off", "on", "reboot"])),
)


def check(drone: Drone, t: float, replies: Counter[int]) -> None:
    pose = drone.pose_at(t)
    state = drone.flight_state
    assert pose.z >= 0.0
    if state.on_ground:
        assert pose.z == 0.0, state
    assert 0.0 <= drone.battery_level <= 100.0
    walk = drone.transitions
    for step in walk:
        assert TRANSITIONS[(step.before, step.trigger)] is step.after
    for before, after in itertools.pairwise(walk):
        assert before.after is after.before
    if walk:
        assert walk[-1].after is state
    records = drone.executed
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    running = [r for r in records if r.outcome is Outcome.RUNNING]
    assert len(running) <= 1
    if running:
        assert state.busy
    for seq, count in replies.items():
        assert count == 1, f"seq {seq} answered {count} times"
        assert records[seq - 1].reply is not None
    for record in records:
        if record.outcome is not Outcome.RUNNING and record.reply is not None:
            assert replies[record.seq] == 1, record
    packet = drone.state_packet(t)
    if packet is not None:
        assert packet.endswith(";\r\n")
        fields = dict(f.split(":", 1) for f in packet.strip().split(";") if f)
        assert int(fields["bat"]) == drone.battery_pct
        assert int(fields["h"]) >= 0


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=40))
def test_random_sessions_stay_consistent(session: list[Step]) -> None:
    drone = Drone(DroneConfig(), now=0.0)
    t = 0.0
    replies: Counter[int] = Counter()
    session = [("send", "command"), *session]

    def take(outputs: tuple[Output, ...] | list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Reply):
                replies[output.seq] += 1

    for kind, arg in session:
        if kind == "send":
            assert isinstance(arg, str)
            take(drone.handle(arg.encode(), SENDER, t).outputs)
        elif kind == "wait":
            assert isinstance(arg, float)
            t += arg
            take(drone.advance(t))
        elif kind == "fly":
            assert isinstance(arg, float)
            take(drone.handle(b"command", SENDER, t).outputs)
            take(drone.handle(b"takeoff", SENDER, t).outputs)
            t += arg
            take(drone.advance(t))
        elif kind == "battery":
            assert isinstance(arg, float)
            take(drone.set_battery(arg, t))
        elif arg == "off":
            take(drone.power_off(t))
        elif arg == "on":
            take(drone.power_on(t))
        else:
            take(drone.reboot(t))
        check(drone, t, replies)

    # Left alone, every action ends and a flying drone comes down by itself.
    t += 300.0
    take(drone.advance(t))
    check(drone, t, replies)
    assert not drone.flying
    assert all(r.outcome is not Outcome.RUNNING for r in drone.executed)
    assert drone.flight_state in (
        FlightState.OFF,
        FlightState.LANDED,
        FlightState.FALLEN,
        FlightState.MOTORS_ON,
    )
