"""The pilot: what each drone tool does, independent of MCP.

It applies the safety envelope before anything is sent, keeps the dead-reckoned position,
asks the link for live reads, and turns link readings into the freshness-stamped models the
tools return. The MCP layer (`servers.drone.tools`) only adapts arguments and errors.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Final, Literal

import anyio
import structlog

from servers import metrics
from servers.auth.identity import current_client, current_path, current_tool
from servers.drone.core import commands
from servers.drone.core.commands import Command, Motion
from servers.drone.core.errors import (
    CommandRejected,
    DroneError,
    LinkBusy,
    NotConnected,
    OutcomeUnknown,
    ProtocolError,
    SafetyViolation,
)
from servers.drone.core.protocol import LinkStatus
from servers.drone.core.replies import Acceleration, TemperatureRange
from servers.drone.core.replies import Attitude as AttitudeReply
from servers.drone.core.safety import BODY_VECTORS, Position, SafetyEnvelope, check_destination
from servers.drone.core.telemetry import Telemetry
from servers.drone.hold import FlightHold, OnHold
from servers.drone.link import DroneLink, LogEntry, Reading, Reply
from servers.drone.models import (
    Acceleration as AccelerationModel,
)
from servers.drone.models import (
    ActionResult,
    Attitude,
    BatteryResult,
    DroneState,
    EmergencyResult,
    Freshness,
    MissionPadModel,
    PositionModel,
    SensorName,
    SensorResult,
    TelemetryModel,
    Velocity,
)

Progress = Callable[[float, float, str], Awaitable[None]]
"""progress(done, total, message): how far a long action has come (seconds of its budget)."""

# sensor -> (the read that answers it, the unit of the value returned)
_SENSORS: dict[str, tuple[str, str]] = {
    "height": ("height?", "cm"),
    "tof": ("tof?", "cm"),
    "temperature": ("temp?", "°C"),
    "attitude": ("attitude?", "deg"),
    "barometer": ("baro?", "m"),
    "acceleration": ("acceleration?", "g"),
    "speed": ("speed?", "cm/s"),
    "flight_time": ("time?", "s"),
    "wifi_snr": ("wifi?", "dB"),
    "sdk_version": ("sdk?", ""),
    "serial_number": ("sn?", ""),
    "hardware": ("hardware?", ""),
}

TOF_OUT_OF_RANGE_MM = 8190


def freshness(reading: Reading) -> Freshness:
    age = None if reading.state_age_s is None else round(reading.state_age_s, 3)
    return Freshness(link=reading.status.value, state_age_s=age)


def telemetry_model(t: Telemetry) -> TelemetryModel:
    pad = t.mission_pad
    return TelemetryModel(
        height_cm=t.height_cm,
        tof_cm=t.tof_cm,
        battery_pct=t.battery_pct,
        attitude=Attitude(pitch_deg=t.pitch_deg, roll_deg=t.roll_deg, yaw_deg=t.yaw_deg),
        velocity=Velocity(x_cm_s=t.vgx_dm_s * 10, y_cm_s=t.vgy_dm_s * 10, z_cm_s=t.vgz_dm_s * 10),
        acceleration=AccelerationModel(x_g=t.agx_mg / 1000, y_g=t.agy_mg / 1000, z_g=t.agz_mg / 1000),
        temperature_low_c=t.temp_low_c,
        temperature_high_c=t.temp_high_c,
        barometer_m=t.baro_m,
        flight_time_s=t.motor_time_s,
        mission_pad=None
        if pad is None
        else MissionPadModel(id=pad.id, x_cm=pad.x_cm, y_cm=pad.y_cm, z_cm=pad.z_cm),
    )


class Pilot:
    def __init__(
        self, link: DroneLink, envelope: SafetyEnvelope | None = None, hold: FlightHold | None = None
    ) -> None:
        self.link = link
        self.envelope = envelope or SafetyEnvelope()
        self.hold = hold or FlightHold()  # the operator's hold (servers/drone/hold.py)
        self.position: Position | None = None
        self._flight_section = anyio.Lock()
        self._log = structlog.get_logger("drone.pilot")

    # ---- readings ----

    def state(self) -> DroneState:
        reading = self.link.reading()
        flying = self.link.is_flying()
        flight: Literal["flying", "landed", "unknown"]
        if reading.status is LinkStatus.DISCONNECTED and reading.telemetry is None:
            flight = "unknown"
        else:
            flight = "flying" if flying else "landed"
        pos = self.position if flying else None
        return DroneState(
            freshness=freshness(reading),
            flight=flight,
            drone=reading.drone,
            telemetry=None if reading.telemetry is None else telemetry_model(reading.telemetry),
            position_estimate=None
            if pos is None
            else PositionModel(
                x_cm=round(pos.x, 1),
                y_cm=round(pos.y, 1),
                z_cm=round(pos.z, 1),
                heading_deg=round(pos.heading, 1),
                uncertainty_cm=round(pos.uncertainty_cm, 1),
            ),
            speed_cm_s=self.link.speed_cm_s,
            hold=None if self.hold.state is None else self.hold.state.as_dict(),
        )

    async def battery(self) -> BatteryResult:
        b = await self.link.battery()
        reading = self.link.reading()
        return BatteryResult(
            percent=b.percent, source=b.source, age_s=round(b.age_s, 3), freshness=freshness(reading)
        )

    async def sensor(self, sensor: SensorName) -> SensorResult:
        verb, unit = _SENSORS[sensor]
        reply = await self.link.request(commands.query(verb))
        value: float | int | str | dict[str, float]
        raw = reply.value
        match raw:
            case TemperatureRange():
                value = {"low": raw.low_c, "high": raw.high_c}
            case AttitudeReply():
                value = {"pitch": raw.pitch, "roll": raw.roll, "yaw": raw.yaw}
            case Acceleration():
                value = {"x": raw.x / 1000, "y": raw.y / 1000, "z": raw.z / 1000}
            case bool() | None:
                raise ProtocolError(f"unexpected reply {reply.raw!r} to {verb}")
            case int() if sensor == "height":
                value = raw * 10  # the drone answers in decimetres
            case int() if sensor == "tof":
                value = -1 if raw >= TOF_OUT_OF_RANGE_MM else raw // 10
                unit = "cm (-1: out of range)"
            case _:
                value = raw
        return SensorResult(
            sensor=sensor,
            value=value,
            unit=unit,
            raw=reply.raw,
            latency_ms=round(reply.latency_s * 1000, 2),
            freshness=freshness(self.link.reading()),
        )

    # ---- flight actions ----

    async def takeoff(self, progress: Progress | None = None) -> ActionResult:
        async with self._flight_action(commands.simple("takeoff")):
            return await self._takeoff(progress)

    async def _takeoff(self, progress: Progress | None) -> ActionResult:
        if self.link.is_flying():
            raise SafetyViolation(
                f"refused takeoff: the drone is already flying (height {self._height():.0f} cm); "
                "it would answer 'error'. Nothing was sent.",
                limit="already_flying",
            )
        self._require_connected("takeoff")
        battery = await self.link.battery()
        if battery.source != "live" and not (
            battery.link is LinkStatus.CONNECTED and battery.age_s <= self.link.config.protocol.stale_after_s
        ):
            # The state stream's value is the drone's own, and as good as a live answer while
            # it is fresh (a lossy link may lose every `battery?` reply and no state packet).
            raise SafetyViolation(
                "refused: could not read the battery before takeoff, live or from fresh state "
                f"(last state value {battery.percent}% is {battery.age_s:.1f}s old). Nothing was sent.",
                limit="battery_unreadable",
            )
        if battery.percent < self.envelope.min_takeoff_battery:
            raise SafetyViolation(
                f"refused: battery {battery.percent}% is below the takeoff minimum "
                f"min_takeoff_battery={self.envelope.min_takeoff_battery}%. Nothing was sent.",
                limit="min_takeoff_battery",
            )
        reply = await self._fly(
            commands.simple("takeoff"), progress, after=lambda: Position(z=self._height())
        )
        self.position = Position(z=self._height())
        return self._result(reply)

    async def land(self, progress: Progress | None = None) -> ActionResult:
        if self._known_on_ground():
            self.position = None
            return ActionResult(
                command="land",
                reply="",
                latency_ms=0.0,
                sent=False,
                note="already on the ground (live state shows it): nothing was sent",
                state=self.state(),
            )
        if self._flight_section.locked():
            # A move holds the wire until it is done (up to ~50 s): `stop` goes out beside it
            # and ends it, so the landing goes out now instead of after the move.
            with contextlib.suppress(DroneError):
                await self.link.request(commands.simple("stop"))
        # Landing needs no live link: on a stale one it is the safest thing to send.
        try:
            reply = await self._fly(commands.simple("land"), progress, require_live=False)
        except CommandRejected as exc:
            if self.link.is_flying():
                raise
            # Safe to repeat: on the ground already, the drone refuses ("error Motor stop").
            self.position = None
            return ActionResult(
                command="land",
                reply=exc.reply,
                latency_ms=0.0,
                note=f"already on the ground: the drone answered {exc.reply!r}",
                state=self.state(),
            )
        self.position = None
        return self._result(reply)

    def _known_on_ground(self) -> bool:
        """Live state shows the drone on the ground and we know of no takeoff since."""
        reading = self.link.reading()
        return (
            reading.status is LinkStatus.CONNECTED
            and reading.telemetry is not None
            and not self.link.is_flying()
        )

    async def emergency(self) -> EmergencyResult:
        metrics.count_emergency(self.link.drone_address)
        reply = await self.link.request(commands.simple("emergency"))
        self.position = None
        return EmergencyResult(command="emergency", confirmed=reply.raw != "", state=self.state())

    async def stop(self) -> ActionResult:
        reply = await self.link.request(commands.simple("stop"))
        return self._result(reply)

    async def move(self, direction: str, distance_cm: int, progress: Progress | None = None) -> ActionResult:
        command = commands.move(direction, distance_cm, speed_cm_s=self.link.speed_cm_s or commands.SPEED_MIN)
        f, left, up = BODY_VECTORS[direction]
        async with self._flight_action(command):
            current = self._airborne_position(command)
            target = current.moved(f * distance_cm, left * distance_cm, up * distance_cm)
            check_destination(self.envelope, current, target, height_cm=self._height())
            reply = await self._fly(command, progress, after=lambda: target, widen_by=distance_cm)
            self.position = target
        return self._result(reply)

    async def rotate(self, direction: str, degrees: int, progress: Progress | None = None) -> ActionResult:
        command = commands.rotate(direction, degrees)
        async with self._flight_action(command):
            current = self._airborne_position(command)
            turned = current.turned(degrees if direction == "cw" else -degrees)
            reply = await self._fly(command, progress, after=lambda: turned)
            self.position = turned
        return self._result(reply)

    async def flip(self, direction: str) -> ActionResult:
        command = commands.flip(direction)
        async with self._flight_action(command):
            return await self._flip(command)

    async def _flip(self, command: Command) -> ActionResult:
        self._airborne_position(command)
        height = self._height()
        if height < self.envelope.min_height_cm:
            raise SafetyViolation(
                f"refused {_said(command)!r}: the drone is at {height:.0f} cm, below the safety envelope's "
                f"min_height_cm={self.envelope.min_height_cm}; a flip dips. Nothing was sent.",
                limit="min_height_cm",
            )
        self._require_connected(_said(command))
        battery = await self.link.battery()
        if battery.percent < self.envelope.min_flip_battery:
            raise SafetyViolation(
                f"refused: battery {battery.percent}% ({battery.source}) is below "
                f"{self.envelope.min_flip_battery}%; the drone refuses flips on a low battery. "
                "Nothing was sent.",
                limit="min_flip_battery",
            )
        return self._result(await self._fly(command, None))

    async def go_to(
        self,
        x: int,
        y: int,
        z: int,
        speed: int,
        mission_pad: str | None = None,
        progress: Progress | None = None,
    ) -> ActionResult:
        command = commands.go(x, y, z, speed, mission_pad)
        distance = math.sqrt(x * x + y * y + z * z)
        async with self._flight_action(command):
            current = self._airborne_position(command)
            if mission_pad is None:
                target = current.moved(x, y, z)
                check_destination(self.envelope, current, target, height_cm=self._height())
            else:
                # Relative to a pad we cannot see from here: bound by the straight-line distance.
                target = current.less_certain(distance)
                check_destination(self.envelope, current, target.moved(0, 0, z), height_cm=self._height())
            reply = await self._fly(command, progress, after=lambda: target, widen_by=distance)
            self.position = target
        return self._result(reply)

    async def set_speed(self, speed_cm_s: int) -> ActionResult:
        return self._result(await self.link.request(commands.set_speed(speed_cm_s)))

    async def send(self, command: Command) -> ActionResult:
        """LED/matrix and other harmless commands: no envelope involved."""
        return self._result(await self.link.request(command))

    async def watch_battery(self) -> None:
        """Run forever: land once when a flying drone's battery reaches the critical level."""
        landed_for_battery = False
        while True:
            await self.link.wait_changed()
            t = self.link.reading().telemetry
            if t is None or not self.link.is_flying():
                landed_for_battery = False
                continue
            if t.battery_pct <= self.envelope.critical_battery and not landed_for_battery:
                landed_for_battery = True
                self._log.warning("critical_battery_auto_land", battery=t.battery_pct)
                metrics.count_auto_land(self.link.drone_address, "critical_battery")
                try:
                    await self.land()
                except Exception as exc:  # keep watching; the next packet tries again
                    landed_for_battery = False
                    self._log.error("critical_battery_land_failed", error=str(exc))

    # ---- internals ----

    @contextlib.asynccontextmanager
    async def _flight_action(self, command: Command) -> AsyncGenerator[None]:
        """The one entry point of every flight action (takeoff, moves, rotations, flips, go):
        its envelope check, its send and the position update after its outcome are one
        critical section per drone. Without it, actions queued together were each checked
        against the same stale position, and two `move up 200` from 80 cm both passed a
        300 cm cap. `stop`, `emergency`, `land` and reads never enter it.

        The operator's hold is checked first, on entering, so a held action sends nothing at
        all (not even the battery read a takeoff or flip makes); `_fly` checks it again just
        before sending, for a hold set meanwhile.

        An envelope refusal raised inside it goes into the flight log (and so into the flight
        recording): nothing reached the link, which logs only what it sends. The hold logs
        its own refusals."""
        async with self._flight_section:
            try:
                self.hold.check(command, self.link)
                yield
            except SafetyViolation as exc:
                if not isinstance(exc, OnHold):
                    self._log_refusal(command.text, "refused", str(exc))
                raise

    def _log_refusal(self, what: str, outcome: Literal["refused", "not_connected"], why: str) -> None:
        self.link.flight_log.append(
            LogEntry(
                self.link.clock.now(),
                what,
                outcome,
                why,
                0.0,
                0,
                client=current_client(),
                path=current_path(),
                tool=current_tool(),
            )
        )

    def _require_connected(self, what: str) -> None:
        reading = self.link.reading()
        if reading.status is not LinkStatus.CONNECTED:
            heard = (
                "no state packet has arrived from the drone yet"
                if reading.state_age_s is None
                else f"the last state packet came {reading.state_age_s:.1f} s ago"
            )
            why = (
                f"refused {what}: the link is {reading.status.value}, {heard}; "
                "flight actions need a live link. Nothing was sent."
            )
            self._log_refusal(what, "not_connected", why)
            raise NotConnected(why)

    def _airborne_position(self, command: Command) -> Position:
        """Where we believe the drone is; refuses (nothing sent) if it is not flying. Checks that
        need nothing from the link come first, so a refusal names the real reason; `_fly`
        checks the link's freshness last, just before sending."""
        if not self.link.is_flying():
            raise SafetyViolation(
                f"refused {_said(command)!r}: the drone is not flying (take off first). Nothing was sent.",
                limit="not_flying",
            )
        if self.position is None:  # flying, but not through us (e.g. after a restart)
            self.position = Position(z=self._height()).less_certain(self.envelope.max_distance_cm)
        return self.position

    def _above_takeoff_point(self) -> Position:
        """Where a takeoff leaves the drone: the origin, at the height the state shows."""
        return Position(z=self._height())

    def _height(self) -> float:
        reading = self.link.reading()
        if reading.telemetry is not None and reading.state_age_s is not None and reading.state_age_s < 2.0:
            return float(reading.telemetry.height_cm)
        return self.position.z if self.position is not None else 0.0

    async def _fly(
        self,
        command: Command,
        progress: Progress | None,
        *,
        after: Callable[[], Position] | None = None,
        widen_by: float | None = None,
        require_live: bool = True,
    ) -> Reply:
        """Send a flight action, reporting progress against its time budget while it runs.
        Refused with nothing sent unless the link is live (`require_live`, all but landing).

        If its reply is lost, the position estimate follows the telemetry's verdict: `after()`
        (where it leaves the drone) when it executed, unchanged when it did not start, and
        `widen_by` cm less certain when nobody can tell."""
        self.hold.check(command, self.link)  # an operator's hold refuses it, nothing sent
        if require_live:
            self._require_connected(command.text)
        try:
            if progress is None or command.motion is not Motion.FLIGHT:
                return await self.link.request(command)
            return await self._with_progress(command, progress)
        except OutcomeUnknown as exc:
            if exc.verdict == "executed":
                if after is not None:
                    self.position = after()
            elif exc.verdict != "did_not_start":
                self._widen(widen_by)
            raise
        except (CommandRejected, NotConnected, LinkBusy):
            raise  # the drone refused it, or it never went out: it did not move
        except BaseException:
            # Preempted by `stop`/`emergency`, or the caller cancelled: it may have run part
            # of the way, so the estimate must cover anywhere along it, not where it was.
            self._widen(widen_by)
            raise

    def _widen(self, by_cm: float | None) -> None:
        if by_cm is not None and self.position is not None:
            self.position = self.position.less_certain(by_cm)

    async def _with_progress(self, command: Command, progress: Progress) -> Reply:
        clock = self.link.clock
        started = clock.now()
        total = round(command.timeout_s, 1)
        outcome: list[Reply | DroneError] = []

        async def run() -> None:
            # Caught here, not raised: out of a task group it would arrive wrapped in an
            # ExceptionGroup, and callers (and the tool layer) expect the DroneError itself.
            try:
                outcome.append(await self.link.request(command))
            except DroneError as exc:
                outcome.append(exc)
            tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            while True:
                elapsed = min(clock.now() - started, total)
                await progress(
                    round(elapsed, 1), total, f"{command.text}: {elapsed:.0f}s of at most {total:.0f}s"
                )
                await clock.sleep(1.0)
        result = outcome[0]
        if isinstance(result, DroneError):
            raise result
        await progress(total, total, f"{command.text}: done")
        return result

    def _result(self, reply: Reply) -> ActionResult:
        return ActionResult(
            command=reply.command,
            reply=reply.raw,
            latency_ms=round(reply.latency_s * 1000, 2),
            note=reply.note,
            state=self.state(),
        )


__all__ = ["Pilot", "Progress", "freshness", "telemetry_model"]


_FLIP_WORDS: Final = {f"flip {letter}": f"flip {word}" for word, letter in commands.FLIP_DIRECTIONS.items()}


def _said(command: Command) -> str:
    """A command as a refusal names it: in the tool's words where the SDK abbreviates them
    (`flip l` is `flip left`); the flight log keeps the command as sent."""
    return _FLIP_WORDS.get(command.text, command.text)
