"""Ground-truth records: what the simulated drone really received, did and said.

Tests of the layers above judge the client by these, never by the client's own account: "the
move ran exactly once", "the reply to the timed-out command was dropped", "the drone fell".
All records are immutable; a command whose outcome is decided later (a move replies when it is
done) is replaced in the log by an updated copy, so a reader never sees a half-written record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from drone_sim.commands import Command, is_flight_action
from drone_sim.flight import FlightState, Trigger

Address = tuple[str, int]


class Outcome(Enum):
    DONE = "done"
    """It took effect (read answered, setting applied, action completed)."""
    RUNNING = "running"
    """A timed action still in progress; its reply comes when it finishes."""
    INTERRUPTED = "interrupted"
    """A timed action cut short: `stop` (reply `forced stop`), emergency, power loss, auto-land."""
    REJECTED = "rejected"
    """Nothing happened; the reply (if any) is an error string."""


@dataclass(frozen=True, slots=True)
class ExecutedCommand:
    """One command the drone processed while listening in SDK mode, in arrival order.

    `reply` is what the drone produced for it (the transport may still lose, delay or double
    it: see `SentReply`). `command` is None when the text did not parse.
    """

    seq: int
    t: float
    text: str
    sender: Address
    command: Command | None
    reply: str | None
    outcome: Outcome
    finished_t: float | None = None

    @property
    def is_flight_action(self) -> bool:
        return self.command is not None and is_flight_action(self.command)


class EventKind(Enum):
    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    BATTERY_DEAD = "battery_dead"
    REBOOT = "reboot"
    BOOTED = "booted"
    SDK_ENTERED = "sdk_entered"
    SDK_EXITED = "sdk_exited"
    AUTO_LAND = "auto_land"
    """No command for `auto_land_after_s` while flying."""
    LOW_BATTERY_LAND = "low_battery_land"
    EMERGENCY = "emergency"
    CRASH = "crash"
    """Motors lost in the air for a reason other than `emergency` (power off, reboot, battery)."""
    REBIND = "rebind"
    VIDEO_FAILED = "video_failed"


@dataclass(frozen=True, slots=True)
class SimEvent:
    t: float
    kind: EventKind
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    t: float
    before: FlightState
    after: FlightState
    trigger: Trigger


@dataclass(frozen=True, slots=True)
class ReceivedDatagram:
    """Every datagram that reached the command socket, whatever became of it.

    `dropped` is the loss fault (the drone never saw it); `ignored` says why a datagram the
    drone saw had no effect (powered off, booting, not in SDK mode, empty), else None.
    """

    t: float
    data: bytes
    sender: Address
    dropped: bool = False
    ignored: str | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class SentReply:
    """A reply datagram that actually left the command socket."""

    t: float
    text: str
    to: Address
    seq: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class DroppedReply:
    """A reply the drone produced that never left (loss fault, silent emergency, closed socket)."""

    t: float
    text: str
    to: Address
    seq: int
    reason: str
