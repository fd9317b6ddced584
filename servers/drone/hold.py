"""The operator's hold: one switch that refuses every new flight action, from every agent.

An operator watching the drone (the flight deck, `servers.deck`) puts it on hold when the
agents should stop flying it *now* and stay stopped: every new `takeoff`, move, rotation, flip
and `go_to`, from every tool mode and every client, is refused with nothing sent until the
operator releases it. `land`, `stop`, `emergency` and reads are never held: a hold must make
the drone safer, never keep it in the air.

It is one object per `DroneRuntime`, outliving link reconnects, and the pilot asks it at the
one place every flight action passes (`Pilot._fly`) before anything is sent; the refusal and
each switch land in the flight log with who did it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import structlog

from servers import metrics
from servers.auth.identity import current_client, current_path, current_tool
from servers.drone.core.commands import Command, Motion
from servers.drone.core.errors import SafetyViolation
from servers.drone.link import DroneLink, LogEntry

__all__ = ["FlightHold", "HoldState", "OnHold"]

_NEVER_HELD = frozenset({"land", "stop", "emergency"})


class OnHold(SafetyViolation):
    """An operator has put the drone on hold: no new flight action is sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, limit="operator_hold")


@dataclass(frozen=True, slots=True)
class HoldState:
    """Who put the drone on hold, and when (Unix time)."""

    by: str
    since: float

    def as_dict(self) -> dict[str, str | float]:
        return {
            "by": self.by,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
            "since_unix": round(self.since, 3),
        }


class FlightHold:
    """The switch. `wall` is injectable for tests (Unix seconds)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._state: HoldState | None = None
        self._changed = anyio.Event()
        self._log = structlog.get_logger("drone.hold")

    @property
    def state(self) -> HoldState | None:
        return self._state

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def set(self, by: str, link: DroneLink | None = None) -> HoldState:
        """Put the drone on hold (again: the first setter stays on record)."""
        if self._state is None:
            self._state = HoldState(by=by, since=self._wall())
            self._log.warning("flight_hold_set", by=by)
            self._record(link, "hold (operator)", by)
            self._gauge(link, held=True)
            self._notify()
        return self._state

    def release(self, by: str, link: DroneLink | None = None) -> None:
        if self._state is not None:
            held_by = self._state.by
            self._state = None
            self._log.warning("flight_hold_released", by=by, held_by=held_by)
            self._record(link, "release hold (operator)", by)
            self._gauge(link, held=False)
            self._notify()

    def check(self, command: Command, link: DroneLink | None = None) -> None:
        """Raise `OnHold` for a flight action while held, before it is sent; land/stop/emergency pass.
        Called where every flight action enters (`Pilot._flight_action`, before any read it
        makes) and again just before it is sent (`Pilot._fly`)."""
        held = self._state
        if held is None or command.motion is not Motion.FLIGHT or command.verb in _NEVER_HELD:
            return
        since = time.strftime("%H:%M:%S UTC", time.gmtime(held.since))
        if link is not None:
            link.flight_log.append(
                LogEntry(
                    link.clock.now(),
                    command.text,
                    "rejected",
                    "on hold",
                    0.0,
                    0,
                    verdict="held",
                    client=current_client(),
                    path=current_path(),
                    tool=current_tool(),
                )
            )
        raise OnHold(
            f"refused {command.text!r}: an operator has put the drone on hold (set by {held.by} "
            f"at {since}); no new flight action is sent until it is released. land, stop and "
            "emergency still work. Nothing was sent."
        )

    def _gauge(self, link: DroneLink | None, *, held: bool) -> None:
        if link is not None:
            metrics.set_hold(link.drone_address, held)

    @staticmethod
    def _record(link: DroneLink | None, what: str, by: str) -> None:
        if link is not None:
            link.flight_log.append(LogEntry(link.clock.now(), what, "ok", None, 0.0, 0, client=by))
