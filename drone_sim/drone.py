"""The simulated drone, sans-IO: datagrams and time in, replies and effects out.

`Drone` owns no socket, no clock and no task. The transport feeds it `handle(data, sender, now)`
for each command datagram and `advance(now)` when `next_deadline()` comes due or a state packet
is due; both return the outputs to perform (replies to send, video to start or stop). Given the
same inputs it produces the same outputs, so every quirk of the real drone below is a fast,
deterministic unit test:

* Silent until `command`; leaves SDK mode `idle_timeout_s` after the last command it received
  and auto-lands `auto_land_after_s` after it when hovering. A timed action the client asked
  for (a 50 s move) is not idleness: both timers count from the later of the last command and
  the end of the last commanded action.
* Timed actions reply when done. While one runs, `command`, reads, settings, `stop` and
  `emergency` are handled at once; another action gets `error Not joystick` (nothing is queued:
  a queued move would run long after the client gave up on it).
* `stop` interrupts: the running action replies `forced stop`, then `stop` replies `ok`.
  `emergency` cuts the motors: the drone drops to the ground and the running action never
  replies.
* Only commands that parse count as activity; garbage does not keep the link alive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Final, assert_never

from drone_sim import motion
from drone_sim.commands import (
    ERROR,
    LED_OK,
    MATRIX_OK,
    OK,
    Command,
    Curve,
    Direction,
    Emergency,
    EnterSdk,
    Flip,
    FlipDirection,
    Go,
    Keepalive,
    Land,
    Led,
    MatrixBrightness,
    MatrixChar,
    MatrixClear,
    MatrixPattern,
    MatrixScroll,
    MissionPadDirection,
    MissionPads,
    MotorOff,
    MotorOn,
    Move,
    ParseError,
    Query,
    Rc,
    Read,
    Reboot,
    Rotate,
    SetPorts,
    SetSpeed,
    Stop,
    StreamOff,
    StreamOn,
    Takeoff,
    VideoOption,
    VideoSetting,
    parse,
    unknown_command,
)
from drone_sim.config import DroneConfig
from drone_sim.flight import FlightState, Trigger, next_state
from drone_sim.geometry import Vec3, arc_through, body_to_world, world_to_body, wrap_degrees
from drone_sim.pose import Pose
from drone_sim.power import drain_pct_per_s, reported_battery, temperatures_c
from drone_sim.records import Address, EventKind, ExecutedCommand, Outcome, SimEvent, Transition

FORCED_STOP: Final = "forced stop"
NOT_JOYSTICK: Final = "error Not joystick"
MOTOR_STOP: Final = "error Motor stop"
AUTO_LAND: Final = "error Auto land"

TOF_OUT_OF_RANGE_STATE: Final = 6553
TOF_OUT_OF_RANGE_MM: Final = 8190
_TOF_SENSOR_OFFSET_CM: Final = 10.0

DEFAULT_STATE_PORT: Final = 8890
DEFAULT_VIDEO_PORT: Final = 11111


@dataclass(frozen=True, slots=True)
class Reply:
    """Send `text` to `to`; it answers record `seq` (`command` is None if it did not parse)."""

    text: str
    to: Address
    seq: int
    command: Command | None


@dataclass(frozen=True, slots=True)
class StartVideo:
    to: Address


@dataclass(frozen=True, slots=True)
class StopVideo:
    pass


Output = Reply | StartVideo | StopVideo


@dataclass(frozen=True, slots=True)
class Handled:
    """The result of one datagram: outputs in order, and its record or why it was ignored."""

    outputs: tuple[Output, ...]
    seq: int | None = None
    ignored: str | None = None


@dataclass(frozen=True, slots=True)
class RcInput:
    """The last `rc` stick values, as body-frame velocities (cm/s) and yaw rate (deg/s)."""

    forward: float = 0.0
    left: float = 0.0
    up: float = 0.0
    yaw_rate: float = 0.0

    @property
    def active(self) -> bool:
        return any((self.forward, self.left, self.up, self.yaw_rate))


_NO_RC: Final = RcInput()


@dataclass(frozen=True, slots=True)
class _Running:
    """The timed action in progress; `seq is None` for one the drone started itself (auto-land)."""

    motion: motion.Motion
    done: Trigger
    seq: int | None
    sender: Address | None
    command: Command | None


class _Timer(Enum):
    """Internal deadlines, in the order they fire when due at the same instant."""

    MOTION_END = 0
    BATTERY_DEAD = 1
    BATTERY_LOW = 2
    AUTO_LAND = 3
    SDK_TIMEOUT = 4
    BOOTED = 5


class Drone:
    """One simulated Tello/RMTT. See the module docstring for the behaviour it models."""

    def __init__(
        self,
        config: DroneConfig | None = None,
        *,
        now: float = 0.0,
        state_port: int = DEFAULT_STATE_PORT,
        video_port: int = DEFAULT_VIDEO_PORT,
        powered: bool = True,
    ) -> None:
        self.config = config if config is not None else DroneConfig()
        self._configured_ports = (state_port, video_port)
        self._t = now
        self._state = FlightState.LANDED if powered else FlightState.OFF
        self._pose = Pose()
        self._pose_t = now
        self._rc = _NO_RC
        self._running: _Running | None = None
        self._auto_landing: EventKind | None = None
        self._battery = max(0.0, min(100.0, self.config.initial_battery_pct))
        self._motor_time = 0.0
        self._sdk = False
        self._state_host: str | None = None
        self._activity_t = now
        self._boot_done_t: float | None = None
        self._seq = 0
        self._executed: list[ExecutedCommand] = []
        self._events: list[SimEvent] = []
        self._transitions: list[Transition] = []
        self._video_to: Address | None = None
        self._reset_volatile()

    def _reset_volatile(self) -> None:
        """Settings a reboot forgets."""
        self.state_port, self.video_port = self._configured_ports
        self._speed = self.config.default_speed_cm_s
        self._motor_time = 0.0
        self.mission_pads = False
        self.mission_pad_direction = 0
        self.video_settings: dict[VideoOption, str] = {}
        self.led: Led | None = None
        self.matrix: MatrixPattern | MatrixScroll | MatrixChar | None = None
        self.matrix_brightness = 255

    # ------------------------------------------------------------------ ground truth

    @property
    def now(self) -> float:
        """The time of the last input; the model has integrated everything up to here."""
        return self._t

    @property
    def flight_state(self) -> FlightState:
        return self._state

    @property
    def flying(self) -> bool:
        return self._state.airborne

    @property
    def sdk_mode(self) -> bool:
        return self._sdk and self._state.listening

    @property
    def battery_level(self) -> float:
        """Exact charge in percent (the drone reports `battery_pct`, rounded up)."""
        return self._battery

    @property
    def battery_pct(self) -> int:
        return reported_battery(self._battery)

    @property
    def motor_time_s(self) -> float:
        return self._motor_time

    @property
    def speed_cm_s(self) -> float:
        return self._speed

    @property
    def rc(self) -> RcInput:
        return self._rc

    @property
    def video_to(self) -> Address | None:
        """Where the drone streams video, while `streamon` is in effect."""
        return self._video_to

    @property
    def auto_landing(self) -> EventKind | None:
        """Why the drone is landing on its own (`AUTO_LAND`, `LOW_BATTERY_LAND`), if it is."""
        return self._auto_landing

    @property
    def executed(self) -> tuple[ExecutedCommand, ...]:
        return tuple(self._executed)

    @property
    def events(self) -> tuple[SimEvent, ...]:
        return tuple(self._events)

    @property
    def transitions(self) -> tuple[Transition, ...]:
        return tuple(self._transitions)

    @property
    def state_destination(self) -> Address | None:
        """Where state packets go now: the `command` sender's host, on `state_port`."""
        if not self.sdk_mode or self._state_host is None:
            return None
        return (self._state_host, self.state_port)

    def configure_ports(self, *, state_port: int | None = None, video_port: int | None = None) -> None:
        """Change the ports the drone sends to, as set up by its owner (survives reboots)."""
        sp, vp = self._configured_ports
        self._configured_ports = (
            sp if state_port is None else state_port,
            vp if video_port is None else video_port,
        )
        if state_port is not None:
            self.state_port = state_port
        if video_port is not None:
            self.video_port = video_port

    def record_event(self, now: float, kind: EventKind, detail: str = "") -> None:
        """Let the transport add what only it sees (rebinds, video failures) to the same log."""
        self._events.append(SimEvent(now, kind, detail))

    def pose_at(self, now: float) -> Pose:
        """Exact pose at `now` (>= the last input); pure, so cameras and tests may call it freely."""
        if self._running is not None:
            return self._running.motion.pose_at(now)
        if self._rc.active and self._state is FlightState.HOVERING:
            return self._drift(now)
        return self._pose

    def velocity_at(self, now: float) -> Vec3:
        """World-frame velocity in cm/s."""
        if self._running is not None:
            return motion.velocity(self._running.motion, now)
        if self._rc.active and self._state is FlightState.HOVERING:
            here = self._drift(now)
            dx, dy = body_to_world(self._rc.forward, self._rc.left, here.yaw)
            floored = self._rc.up < 0 and here.z <= min(self._pose.z, self.config.min_height_cm)
            return Vec3(dx, dy, 0.0 if floored else self._rc.up)
        return Vec3()

    # ------------------------------------------------------------------ inputs

    def handle(self, data: bytes | str, sender: Address, now: float) -> Handled:
        """One command datagram from `sender`."""
        out = self.advance(now)
        if not self._state.listening:
            reason = "powered off" if self._state is FlightState.OFF else "booting"
            return Handled(tuple(out), ignored=reason)
        text = data.decode("ascii", errors="replace") if isinstance(data, bytes) else data
        text = text.strip()
        if not text:
            return Handled(tuple(out), ignored="empty datagram")
        parsed = parse(text)
        if not self._sdk and not isinstance(parsed, EnterSdk):
            return Handled(tuple(out), ignored="not in SDK mode")
        if isinstance(parsed, Keepalive) and not self.config.keepalive_supported:
            parsed = ParseError(unknown_command("keepalive"), "keepalive not supported by this firmware")

        self._seq += 1
        seq = self._seq
        if isinstance(parsed, ParseError):
            self._executed.append(
                ExecutedCommand(seq, now, text, sender, None, parsed.reply, Outcome.REJECTED, now)
            )
            if parsed.reply is not None:
                out.append(Reply(parsed.reply, sender, seq, None))
            return Handled(tuple(out), seq=seq)

        self._activity_t = now
        self._executed.append(ExecutedCommand(seq, now, text, sender, parsed, None, Outcome.RUNNING))
        reply, outcome = self._execute(parsed, seq, sender, now, out)
        finished = None if outcome is Outcome.RUNNING else now
        self._update(seq, reply=reply, outcome=outcome, finished_t=finished)
        if reply is not None and outcome is not Outcome.RUNNING:
            out.append(Reply(reply, sender, seq, parsed))
        return Handled(tuple(out), seq=seq)

    def advance(self, now: float) -> list[Output]:
        """Let time pass until `now`, firing every deadline on the way in time order."""
        out: list[Output] = []
        while (due := self._earliest_timer()) is not None and due[0] <= now:
            at, timer = due
            self._integrate(at)
            self._fire(timer, out)
        self._integrate(now)
        return out

    def next_deadline(self) -> float | None:
        due = self._earliest_timer()
        return None if due is None else due[0]

    def power_off(self, now: float, *, cause: str = "power off") -> list[Output]:
        out = self.advance(now)
        if self._state.powered:
            self._lose_power(out, Trigger.POWER_OFF, cause)
            self._events.append(SimEvent(self._t, EventKind.POWER_OFF, cause))
        return out

    def power_on(self, now: float) -> list[Output]:
        """Back on, landed and silent until `command` (as if it had booted). No-op on an empty battery."""
        out = self.advance(now)
        if self._state is FlightState.OFF and self._battery > 0:
            self._fire_transition(Trigger.POWER_ON)
            self._reset_volatile()
            self._activity_t = self._t
            self._events.append(SimEvent(self._t, EventKind.POWER_ON))
        return out

    def reboot(self, now: float, *, cause: str = "reboot") -> list[Output]:
        out = self.advance(now)
        if self._state.powered:
            self._reboot(out, cause)
        return out

    def set_battery(self, pct: float, now: float) -> list[Output]:
        """Set the charge (tests of low-battery behaviour); thresholds crossed act at once."""
        out = self.advance(now)
        self._battery = max(0.0, min(100.0, float(pct)))
        out.extend(self.advance(now))
        return out

    def state_packet(self, now: float) -> str | None:
        """The state line the drone would stream at `now`, or None while it streams nothing."""
        if not self.sdk_mode:
            return None
        pose = self.pose_at(now)
        world = self.velocity_at(now)
        vx, vy = world_to_body(world.x, world.y, pose.yaw)
        templ, temph = temperatures_c(self._motor_time, self.config)
        agx, agy, agz = self.config.accel_at_rest_mg
        tof = self._tof_cm(pose)
        parts: list[str] = []
        if self.config.mission_pad_fields:
            parts.append("mid:-1;x:-100;y:-100;z:-100;mpry:0,0,0;")
        parts.append(
            f"pitch:{round(pose.pitch)};roll:{round(pose.roll)};yaw:{_yaw_int(pose.yaw)};"
            f"vgx:{round(vx / 10)};vgy:{round(vy / 10)};vgz:{round(world.z / 10)};"
            f"templ:{templ};temph:{temph};"
            f"tof:{TOF_OUT_OF_RANGE_STATE if tof is None else tof};h:{_height_cm(pose)};"
            f"bat:{self.battery_pct};baro:{self._baro_m(pose):.2f};time:{int(self._motor_time)};"
            f"agx:{agx:.2f};agy:{agy:.2f};agz:{agz:.2f};\r\n"
        )
        return "".join(parts)

    # ------------------------------------------------------------------ commands

    def _execute(
        self, command: Command, seq: int, sender: Address, now: float, out: list[Output]
    ) -> tuple[str | None, Outcome]:
        match command:
            case EnterSdk():
                if not self._sdk:
                    self._sdk = True
                    self._events.append(SimEvent(now, EventKind.SDK_ENTERED, f"{sender[0]}:{sender[1]}"))
                self._state_host = sender[0]
                return OK, Outcome.DONE
            case Keepalive():
                return OK, Outcome.DONE
            case Read(query=query):
                return self._read(query, now), Outcome.DONE
            case SetSpeed(speed_cm_s=speed):
                self._speed = float(speed)
                return OK, Outcome.DONE
            case MissionPads(enabled=enabled):
                self.mission_pads = enabled
                return OK, Outcome.DONE
            case MissionPadDirection(direction=direction):
                self.mission_pad_direction = direction
                return OK, Outcome.DONE
            case VideoSetting(option=option, value=value):
                self.video_settings[option] = value
                return OK, Outcome.DONE
            case SetPorts(state_port=state_port, video_port=video_port):
                self.state_port, self.video_port = state_port, video_port
                if self._video_to is not None:
                    self._video_to = (self._video_to[0], video_port)
                    out.extend((StopVideo(), StartVideo(self._video_to)))
                return OK, Outcome.DONE
            case StreamOn():
                if self._video_to is None:
                    self._video_to = (sender[0], self.video_port)
                    out.append(StartVideo(self._video_to))
                return OK, Outcome.DONE
            case StreamOff():
                self._stop_video(out)
                return OK, Outcome.DONE
            case Led():
                self.led = command
                return LED_OK, Outcome.DONE
            case MatrixPattern() | MatrixScroll() | MatrixChar():
                self.matrix = command
                return MATRIX_OK, Outcome.DONE
            case MatrixClear():
                self.matrix = None
                return MATRIX_OK, Outcome.DONE
            case MatrixBrightness(level=level):
                self.matrix_brightness = level
                return MATRIX_OK, Outcome.DONE
            case Rc():
                return self._rc_input(command)
            case Emergency():
                self._emergency(out)
                return OK, Outcome.DONE
            case Reboot():
                self._reboot(out, "reboot command")
                return None, Outcome.DONE
            case MotorOn() | MotorOff():
                return self._motors(command)
            case Takeoff():
                return self._takeoff(command, seq, sender)
            case Land():
                return self._land(command, seq, sender)
            case Move() | Rotate() | Flip() | Go() | Curve():
                return self._start_motion(command, seq, sender)
            case Stop():
                return self._stop(out)
            case _:
                assert_never(command)

    def _read(self, query: Query, now: float) -> str:
        pose = self.pose_at(now)
        match query:
            case Query.BATTERY:
                return str(self.battery_pct)
            case Query.SPEED:
                return f"{self._speed:.1f}"
            case Query.TIME:
                return f"{int(self._motor_time)}s"
            case Query.HEIGHT:
                return f"{_height_cm(pose) // 10}dm"
            case Query.TEMP:
                low, high = temperatures_c(self._motor_time, self.config)
                return f"{low}~{high}C"
            case Query.ATTITUDE:
                return f"pitch:{round(pose.pitch)};roll:{round(pose.roll)};yaw:{_yaw_int(pose.yaw)};"
            case Query.BARO:
                return f"{self._baro_m(pose):.2f}"
            case Query.ACCELERATION:
                agx, agy, agz = self.config.accel_at_rest_mg
                return f"agx:{agx:.2f};agy:{agy:.2f};agz:{agz:.2f};"
            case Query.TOF:
                tof = self._tof_cm(pose)
                return f"{TOF_OUT_OF_RANGE_MM if tof is None else tof * 10}mm"
            case Query.WIFI:
                return str(self.config.wifi_snr)
            case Query.SDK:
                return self.config.sdk_version
            case Query.SN:
                return self.config.serial
            case Query.HARDWARE:
                return self.config.hardware
            case Query.EXT_TOF:
                return f"tof {self.config.ext_tof_mm}"
            case _:
                assert_never(query)

    def _action_refusal(self) -> str | None:
        """Why no new action may start now, whatever it is."""
        if self._auto_landing is not None:
            return AUTO_LAND
        if self._state.busy:
            return NOT_JOYSTICK
        return None

    def _takeoff(self, command: Takeoff, seq: int, sender: Address) -> tuple[str | None, Outcome]:
        refusal = self._action_refusal()
        if refusal is not None:
            return refusal, Outcome.REJECTED
        if self._state.airborne or self.battery_pct < self.config.min_takeoff_battery_pct:
            return ERROR, Outcome.REJECTED
        cfg = self.config
        start = Pose(x=self._pose.x, y=self._pose.y, z=0.0, yaw=self._pose.yaw)
        climb = motion.Straight(
            start=start,
            dx=0.0,
            dy=0.0,
            dz=cfg.takeoff_height_cm,
            dyaw=0.0,
            t0=self._t,
            travel_s=max(0.0, cfg.takeoff_s - cfg.takeoff_spinup_s),
            overhead_s=min(cfg.takeoff_s, cfg.takeoff_spinup_s),
        )
        self._begin(Trigger.TAKEOFF, _Running(climb, Trigger.CLIMBED, seq, sender, command))
        return None, Outcome.RUNNING

    def _land(self, command: Land, seq: int, sender: Address) -> tuple[str | None, Outcome]:
        refusal = self._action_refusal()
        if refusal is not None:
            return refusal, Outcome.REJECTED
        if self._state.on_ground:
            return MOTOR_STOP, Outcome.REJECTED
        self._begin(Trigger.LAND, _Running(self._descent(), Trigger.TOUCHDOWN, seq, sender, command))
        return None, Outcome.RUNNING

    def _descent(self) -> motion.Straight:
        cfg = self.config
        start = replace(self.pose_at(self._t), pitch=0.0, roll=0.0)
        return motion.Straight(
            start=start,
            dx=0.0,
            dy=0.0,
            dz=-start.z,
            dyaw=0.0,
            t0=self._t,
            travel_s=motion.duration_for(start.z, cfg.land_speed_cm_s),
            overhead_s=cfg.land_overhead_s,
        )

    def _start_motion(
        self, command: Move | Rotate | Flip | Go | Curve, seq: int, sender: Address
    ) -> tuple[str | None, Outcome]:
        refusal = self._action_refusal()
        if refusal is not None:
            return refusal, Outcome.REJECTED
        if self._state.on_ground:
            return MOTOR_STOP, Outcome.REJECTED
        start = self.pose_at(self._t)
        cfg = self.config
        path: motion.Motion
        match command:
            case Move(direction=direction, distance_cm=distance):
                forward, left, up = _MOVE_AXES[direction]
                path = self._straight(start, forward * distance, left * distance, up * distance, self._speed)
            case Rotate(degrees=degrees):
                path = motion.Straight(
                    start=start,
                    dx=0.0,
                    dy=0.0,
                    dz=0.0,
                    dyaw=float(degrees),
                    t0=self._t,
                    travel_s=motion.duration_for(degrees, cfg.rotation_rate_deg_s),
                    overhead_s=cfg.rotate_overhead_s,
                )
            case Flip(direction=direction):
                if self.battery_pct < cfg.min_flip_battery_pct:
                    return ERROR, Outcome.REJECTED
                axis, sign = _FLIPS[direction]
                path = motion.Flip(start=start, axis=axis, sign=sign, t0=self._t, duration_s=cfg.flip_s)
            case Go(x=x, y=y, z=z, speed=speed, pad=pad):
                if pad is not None:
                    return ERROR, Outcome.REJECTED  # no mission pad is ever detected in this world
                path = self._straight(start, x, y, z, speed)
            case Curve(pad=pad):
                if pad is not None:
                    return ERROR, Outcome.REJECTED
                curve = self._curve(start, command)
                if curve is None:
                    return ERROR, Outcome.REJECTED
                path = curve
        self._begin(Trigger.MOTION, _Running(path, Trigger.MOTION_DONE, seq, sender, command))
        return None, Outcome.RUNNING

    def _straight(self, start: Pose, forward: float, left: float, up: float, speed: float) -> motion.Straight:
        dx, dy = body_to_world(forward, left, start.yaw)
        dz = max(min(start.z, self.config.min_height_cm), start.z + up) - start.z
        return motion.Straight(
            start=start,
            dx=dx,
            dy=dy,
            dz=dz,
            dyaw=0.0,
            t0=self._t,
            travel_s=motion.duration_for(math.sqrt(dx * dx + dy * dy + dz * dz), speed),
            overhead_s=self.config.move_overhead_s,
        )

    def _curve(self, start: Pose, command: Curve) -> motion.Curve | None:
        via = _body_point(command.x1, command.y1, command.z1, start.yaw)
        end = _body_point(command.x2, command.y2, command.z2, start.yaw)
        arc = arc_through(via, end)
        if arc is None:
            return None
        return motion.Curve(
            start=start,
            arc=arc,
            t0=self._t,
            travel_s=motion.duration_for(arc.length, command.speed),
            overhead_s=self.config.move_overhead_s,
            floor_z=min(start.z, self.config.min_height_cm),
        )

    def _rc_input(self, command: Rc) -> tuple[str | None, Outcome]:
        if self._state is not FlightState.HOVERING:
            return None, Outcome.REJECTED
        cfg = self.config
        self._rc = RcInput(
            forward=command.forward_back / 100.0 * cfg.rc_max_speed_cm_s,
            left=-command.left_right / 100.0 * cfg.rc_max_speed_cm_s,
            up=command.up_down / 100.0 * cfg.rc_max_speed_cm_s,
            yaw_rate=command.yaw / 100.0 * cfg.rc_max_yaw_rate_deg_s,
        )
        return None, Outcome.DONE

    def _motors(self, command: MotorOn | MotorOff) -> tuple[str | None, Outcome]:
        if self._state.airborne:
            return ERROR, Outcome.REJECTED
        if isinstance(command, MotorOn) and self._state is not FlightState.MOTORS_ON:
            self._fire_transition(Trigger.MOTOR_ON)
        elif isinstance(command, MotorOff) and self._state is FlightState.MOTORS_ON:
            self._fire_transition(Trigger.MOTOR_OFF)
        return OK, Outcome.DONE

    def _stop(self, out: list[Output]) -> tuple[str | None, Outcome]:
        if self._auto_landing is not None:
            return AUTO_LAND, Outcome.REJECTED
        if self._running is not None:
            self._interrupt(out, FORCED_STOP)
            self._fire_transition(Trigger.STOP)
        self._rc = _NO_RC
        return OK, Outcome.DONE

    def _emergency(self, out: list[Output]) -> None:
        if self._state.airborne:
            height = self.pose_at(self._t).z
            self._interrupt(out, None)
            self._fire_transition(Trigger.EMERGENCY)
            self._fall()
            self._events.append(SimEvent(self._t, EventKind.EMERGENCY, f"motors cut at {height:.0f} cm"))
        elif self._state is FlightState.MOTORS_ON:
            self._fire_transition(Trigger.EMERGENCY)
            self._events.append(SimEvent(self._t, EventKind.EMERGENCY, "motors cut on the ground"))

    # ------------------------------------------------------------------ timed behaviour

    def _begin(self, trigger: Trigger, running: _Running) -> None:
        self._pose = running.motion.pose_at(self._t)
        self._pose_t = self._t
        self._rc = _NO_RC
        self._fire_transition(trigger)
        self._running = running

    def _earliest_timer(self) -> tuple[float, _Timer] | None:
        timers: list[tuple[float, _Timer]] = []
        cfg, state = self.config, self._state
        if self._running is not None:
            timers.append((self._running.motion.t1, _Timer.MOTION_END))
        if state is FlightState.BOOTING and self._boot_done_t is not None:
            timers.append((self._boot_done_t, _Timer.BOOTED))
        rate = drain_pct_per_s(state, cfg)
        if rate > 0:
            timers.append((self._t + self._battery / rate, _Timer.BATTERY_DEAD))
        if state.airborne and state is not FlightState.LANDING and self._auto_landing is None:
            margin = max(0.0, self._battery - cfg.low_battery_land_pct)
            timers.append((self._t + margin / rate if rate > 0 else math.inf, _Timer.BATTERY_LOW))
        if state is FlightState.HOVERING:
            timers.append((self._activity_t + cfg.auto_land_after_s, _Timer.AUTO_LAND))
        client_busy = self._running is not None and self._running.seq is not None
        if self.sdk_mode and not client_busy:
            timers.append((self._activity_t + cfg.idle_timeout_s, _Timer.SDK_TIMEOUT))
        if not timers:
            return None
        at, timer = min(timers, key=lambda item: (item[0], item[1].value))
        return max(at, self._t), timer

    def _fire(self, timer: _Timer, out: list[Output]) -> None:
        match timer:
            case _Timer.MOTION_END:
                self._complete(out)
            case _Timer.BATTERY_DEAD:
                self._battery = 0.0
                self._lose_power(out, Trigger.POWER_OFF, "battery empty")
                self._events.append(SimEvent(self._t, EventKind.BATTERY_DEAD))
            case _Timer.BATTERY_LOW:
                self._auto_land(out, EventKind.LOW_BATTERY_LAND, f"battery {self.battery_pct}%")
            case _Timer.AUTO_LAND:
                self._auto_land(
                    out, EventKind.AUTO_LAND, f"no command for {self.config.auto_land_after_s:g} s"
                )
            case _Timer.SDK_TIMEOUT:
                self._sdk = False
                self._state_host = None
                self._events.append(
                    SimEvent(
                        self._t, EventKind.SDK_EXITED, f"no command for {self.config.idle_timeout_s:g} s"
                    )
                )
            case _Timer.BOOTED:
                self._boot_done_t = None
                self._fire_transition(Trigger.BOOTED)
                self._activity_t = self._t
                self._events.append(SimEvent(self._t, EventKind.BOOTED))

    def _complete(self, out: list[Output]) -> None:
        running = self._running
        assert running is not None
        self._pose = running.motion.pose_at(running.motion.t1)
        self._pose_t = self._t
        self._running = None
        if running.done is Trigger.TOUCHDOWN:
            self._pose = replace(self._pose, z=0.0)
            self._auto_landing = None
        self._fire_transition(running.done)
        if running.seq is not None and running.sender is not None:
            self._activity_t = self._t
            self._update(running.seq, reply=OK, outcome=Outcome.DONE, finished_t=self._t)
            out.append(Reply(OK, running.sender, running.seq, running.command))

    def _interrupt(self, out: list[Output], reply: str | None) -> None:
        """End the running action where it is now; its client gets `reply` (None: silence)."""
        running = self._running
        if running is None:
            return
        here = running.motion.pose_at(self._t)
        self._pose = Pose(x=here.x, y=here.y, z=here.z, yaw=here.yaw)
        self._pose_t = self._t
        self._running = None
        if running.seq is not None and running.sender is not None:
            self._update(running.seq, reply=reply, outcome=Outcome.INTERRUPTED, finished_t=self._t)
            if reply is not None:
                out.append(Reply(reply, running.sender, running.seq, running.command))

    def _auto_land(self, out: list[Output], kind: EventKind, detail: str) -> None:
        self._interrupt(out, AUTO_LAND)
        self._fire_transition(Trigger.AUTO_LAND)
        self._rc = _NO_RC
        self._running = _Running(self._descent(), Trigger.TOUCHDOWN, None, None, None)
        self._auto_landing = kind
        self._events.append(SimEvent(self._t, kind, detail))

    def _fall(self) -> None:
        self._pose = replace(self._pose, z=0.0, pitch=0.0, roll=0.0)
        self._pose_t = self._t
        self._rc = _NO_RC
        self._auto_landing = None

    def _lose_power(self, out: list[Output], trigger: Trigger, cause: str) -> None:
        """Power off or reboot: everything stops at once, a flying drone drops."""
        was_flying = self._state.airborne
        height = self.pose_at(self._t).z
        self._interrupt(out, None)
        self._fire_transition(trigger)
        self._fall()
        if was_flying:
            self._events.append(SimEvent(self._t, EventKind.CRASH, f"{cause} at {height:.0f} cm"))
        self._sdk = False
        self._state_host = None
        self._stop_video(out)

    def _reboot(self, out: list[Output], cause: str) -> None:
        self._lose_power(out, Trigger.REBOOT, cause)
        self._boot_done_t = self._t + self.config.reboot_s
        self._reset_volatile()
        self._events.append(SimEvent(self._t, EventKind.REBOOT, cause))

    def _stop_video(self, out: list[Output]) -> None:
        if self._video_to is not None:
            self._video_to = None
            out.append(StopVideo())

    def _integrate(self, t: float) -> None:
        dt = t - self._t
        if dt <= 0:
            return
        self._battery = max(0.0, self._battery - drain_pct_per_s(self._state, self.config) * dt)
        if self._state.motors_running:
            self._motor_time += dt
        if self._rc.active and self._state is FlightState.HOVERING:
            self._pose = self._drift(t)
            self._pose_t = t
        self._t = t

    def _drift(self, t: float) -> Pose:
        """Where the `rc` sticks have taken the drone by `t` (closed form, constant yaw rate)."""
        rc, p = self._rc, self._pose
        dt = t - self._pose_t
        yaw1 = p.yaw + rc.yaw_rate * dt
        if abs(rc.yaw_rate) < 1e-9:
            dx, dy = body_to_world(rc.forward * dt, rc.left * dt, p.yaw)
        else:
            w = math.radians(rc.yaw_rate)
            psi0, psi1 = math.radians(p.yaw), math.radians(yaw1)
            int_cos = (math.sin(psi1) - math.sin(psi0)) / w
            int_sin = (math.cos(psi0) - math.cos(psi1)) / w
            dx = rc.forward * int_cos + rc.left * int_sin
            dy = -rc.forward * int_sin + rc.left * int_cos
        z = max(min(p.z, self.config.min_height_cm), p.z + rc.up * dt)
        return Pose(x=p.x + dx, y=p.y + dy, z=z, yaw=wrap_degrees(yaw1))

    # ------------------------------------------------------------------ bookkeeping

    def _fire_transition(self, trigger: Trigger) -> None:
        before = self._state
        self._state = next_state(before, trigger)
        self._transitions.append(Transition(self._t, before, self._state, trigger))

    def _update(self, seq: int, *, reply: str | None, outcome: Outcome, finished_t: float | None) -> None:
        index = seq - 1
        self._executed[index] = replace(
            self._executed[index], reply=reply, outcome=outcome, finished_t=finished_t
        )

    def _tof_cm(self, pose: Pose) -> int | None:
        reading = pose.z + _TOF_SENSOR_OFFSET_CM
        return None if reading > self.config.tof_range_cm else round(reading)

    def _baro_m(self, pose: Pose) -> float:
        return self.config.baro_ground_m + pose.z / 100.0


_MOVE_AXES: Final[dict[Direction, tuple[int, int, int]]] = {
    Direction.FORWARD: (1, 0, 0),
    Direction.BACK: (-1, 0, 0),
    Direction.LEFT: (0, 1, 0),
    Direction.RIGHT: (0, -1, 0),
    Direction.UP: (0, 0, 1),
    Direction.DOWN: (0, 0, -1),
}

_FLIPS: Final[dict[FlipDirection, tuple[motion.FlipAxis, float]]] = {
    FlipDirection.FORWARD: (motion.FlipAxis.PITCH, -1.0),
    FlipDirection.BACK: (motion.FlipAxis.PITCH, 1.0),
    FlipDirection.LEFT: (motion.FlipAxis.ROLL, -1.0),
    FlipDirection.RIGHT: (motion.FlipAxis.ROLL, 1.0),
}


def _body_point(forward: float, left: float, up: float, yaw: float) -> Vec3:
    dx, dy = body_to_world(forward, left, yaw)
    return Vec3(dx, dy, up)


def _height_cm(pose: Pose) -> int:
    """The drone's height resolution is a decimetre: `h` is reported in cm, in steps of 10."""
    return 10 * round(max(0.0, pose.z) / 10.0)


def _yaw_int(yaw: float) -> int:
    value = round(yaw)
    return 180 if value == -180 else value
