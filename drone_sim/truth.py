"""`GroundTruth`: the one place a test looks to learn what really happened to the drone.

It joins what the drone model knows (pose, flight state, battery, the commands it executed, its
events) with what only the transport sees (datagrams dropped on the way in, replies lost,
delayed or doubled on the way out). Physical values are live; the logs are append-only.
"""

from __future__ import annotations

from collections.abc import Sequence

from drone_sim.commands import Led, MatrixChar, MatrixPattern, MatrixScroll
from drone_sim.drone import Drone
from drone_sim.flight import FlightState
from drone_sim.pose import Pose
from drone_sim.records import (
    Address,
    DroppedReply,
    EventKind,
    ExecutedCommand,
    Outcome,
    ReceivedDatagram,
    SentReply,
    SimEvent,
    Transition,
)
from tello_io.clock import Clock


class GroundTruth:
    """Live view of one simulated drone and its link.

    Physical values (`pose`, `flight_state`, `battery_pct`, ...) are as of the simulator's last
    tick (at most one state interval old), except `pose`, which is exact at `clock.now()`.
    """

    def __init__(self, drone: Drone, clock: Clock) -> None:
        self._drone = drone
        self._clock = clock
        self._received: list[ReceivedDatagram] = []
        self._replies: list[SentReply] = []
        self._dropped: list[DroppedReply] = []
        self.state_packets_sent = 0
        self.last_state_packet: str | None = None

    # ---- transport logs (written by the simulator)

    def note_received(self, record: ReceivedDatagram) -> None:
        self._received.append(record)

    def note_sent(self, record: SentReply) -> None:
        self._replies.append(record)

    def note_dropped(self, record: DroppedReply) -> None:
        self._dropped.append(record)

    def note_state_packet(self, packet: str) -> None:
        self.state_packets_sent += 1
        self.last_state_packet = packet

    @property
    def received(self) -> Sequence[ReceivedDatagram]:
        """Every datagram that reached the command socket, dropped and ignored ones included."""
        return tuple(self._received)

    @property
    def replies(self) -> Sequence[SentReply]:
        """Every reply datagram actually sent, duplicates included (`duplicate=True`)."""
        return tuple(self._replies)

    @property
    def dropped_replies(self) -> Sequence[DroppedReply]:
        return tuple(self._dropped)

    # ---- the drone

    @property
    def pose(self) -> Pose:
        return self._drone.pose_at(max(self._clock.now(), self._drone.now))

    @property
    def flight_state(self) -> FlightState:
        return self._drone.flight_state

    @property
    def flying(self) -> bool:
        return self._drone.flying

    @property
    def powered(self) -> bool:
        return self._drone.flight_state.powered

    @property
    def battery_pct(self) -> int:
        return self._drone.battery_pct

    @property
    def battery_level(self) -> float:
        return self._drone.battery_level

    @property
    def sdk_mode(self) -> bool:
        return self._drone.sdk_mode

    @property
    def motor_time_s(self) -> float:
        return self._drone.motor_time_s

    @property
    def speed_cm_s(self) -> float:
        return self._drone.speed_cm_s

    @property
    def state_destination(self) -> Address | None:
        return self._drone.state_destination

    @property
    def video_to(self) -> Address | None:
        return self._drone.video_to

    @property
    def mission_pads(self) -> bool:
        return self._drone.mission_pads

    @property
    def led(self) -> Led | None:
        return self._drone.led

    @property
    def matrix(self) -> MatrixPattern | MatrixScroll | MatrixChar | None:
        return self._drone.matrix

    @property
    def executed(self) -> Sequence[ExecutedCommand]:
        return self._drone.executed

    @property
    def events(self) -> Sequence[SimEvent]:
        return self._drone.events

    @property
    def transitions(self) -> Sequence[Transition]:
        return self._drone.transitions

    # ---- questions tests ask

    def executed_actions(self) -> list[ExecutedCommand]:
        """Flight actions that actually ran (completed, running or interrupted), in order."""
        return [r for r in self._drone.executed if r.is_flight_action and r.outcome is not Outcome.REJECTED]

    def executed_texts(self) -> list[str]:
        return [r.text for r in self._drone.executed]

    def record(self, seq: int) -> ExecutedCommand:
        return self._drone.executed[seq - 1]

    def events_of(self, kind: EventKind) -> list[SimEvent]:
        return [e for e in self._drone.events if e.kind is kind]

    def reply_texts(self) -> list[str]:
        return [r.text for r in self._replies]
