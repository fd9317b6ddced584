"""The link under test, wired to `drone_sim`, plus the oracles.

A `Rig` is one simulator and one `DroneLink` sharing one clock. In a test marked
`virtual_time` (most of them) that is the event loop's virtual clock and the two talk over an
in-memory network: exact, fast and immune to machine load. Otherwise (the real-UDP integration
tests) it is a `ScaledClock` over UDP on loopback, with margins that hold on a loaded machine. Every caller
command goes through `Rig.call`, which records when it started and ended (on that clock) and
what came back; `verify_calls` then judges those records against the simulator's ground truth,
never against the link's own account:

- a non-idempotent command reached the drone at most once per call that put it on the wire;
- a success is backed by a command the drone executed inside the call's window, with exactly
  the reply the caller got (a flight action finished before the call returned); a `land` the
  link resolved from the state stream (no reply: the drone shows itself down) is backed by a
  landing the drone was executing in the window, or by the drone already standing on the ground;
- a refusal is the drone's own error string for that command, inside the window.

Waiting is always on something observable (a simulator tick, a link change), bounded on the
shared clock; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc

from drone_sim import DroneConfig, DroneSimulator, Faults, Outcome, SimConfig
from drone_sim.flight import FlightState
from servers.drone.core.commands import SPECS, Command, Motion, ReplyKind
from servers.drone.core.errors import (
    CommandRejected,
    CommandTimeout,
    DroneError,
    LinkBusy,
    NotConnected,
    OutcomeUnknown,
    Preempted,
)
from servers.drone.core.protocol import LinkStatus, ProtocolConfig
from servers.drone.core.replies import Acceleration, Attitude, TemperatureRange
from servers.drone.link import DroneLink, LinkConfig, Reply
from tello_io.clock import Clock, LoopClock, ScaledClock
from tello_io.datagram import DatagramNetwork, MemoryNetwork, UdpNetwork
from tests.support.virtual import in_virtual_time

SPEEDUP = 5.0
"""Over real UDP only: simulated seconds per real second. Modest, so that a stall of a loaded
machine stays well inside the 1 s staleness threshold (200 ms of real time)."""
STATE_INTERVAL_S = 0.1
"""The simulator's state period (simulated seconds)."""
LOCAL = "127.0.0.1"

_NOTHING_SENT = (NotConnected, LinkBusy)


@dataclass
class Call:
    """One caller command through the link: when (on the shared clock) and what came of it."""

    command: Command
    t0: float
    t1: float = math.nan
    reply: Reply | None = None
    error: DroneError | None = None

    @property
    def ok(self) -> bool:
        return self.reply is not None

    @property
    def reached_wire(self) -> bool:
        """False when the link refused before sending anything."""
        return not isinstance(self.error, _NOTHING_SENT)

    def __str__(self) -> str:
        outcome = repr(self.reply.raw) if self.reply else type(self.error).__name__
        return f"{self.command.text!r} [{self.t0:.2f}..{self.t1:.2f}] -> {outcome}"


def allowed_errors(command: Command) -> tuple[type[DroneError], ...]:
    """The documented failures for a command of this class (README, "The drone link's guarantees")."""
    if command.verb in ("emergency", "stop"):
        # The priority path: sent whatever the link status; emergency never fails, stop may be
        # refused, time out (it is harmless to retry), be overtaken by an emergency, or be
        # refused by the link while an emergency is still going out (LinkBusy).
        return (CommandRejected, CommandTimeout, Preempted, LinkBusy)
    base: tuple[type[DroneError], ...] = (NotConnected, CommandRejected, Preempted, LinkBusy)
    return (*base, CommandTimeout) if command.idempotent else (*base, OutcomeUnknown)


@dataclass(frozen=True, slots=True)
class Observation:
    """What a `wait_changed` watcher saw when it woke."""

    at: float
    status: LinkStatus
    state_age_s: float | None


@dataclass
class Rig:
    clock: Clock
    sim: DroneSimulator
    link: DroneLink
    calls: list[Call] = field(default_factory=list[Call])
    observations: list[Observation] = field(default_factory=list[Observation])

    # ---- commands ----

    async def call(
        self, command: Command, *, turn_wait_s: float | None = None, bound_s: float = 120.0
    ) -> Call:
        """`link.request(command)`, recorded; only documented `DroneError`s are caught.

        `bound_s` (simulated seconds) turns a hang into a test failure naming the command.
        """
        call = Call(command, self.clock.now())
        self.calls.append(call)
        with self.clock.move_on_after(bound_s) as scope:
            try:
                call.reply = await self.link.request(command, turn_wait_s=turn_wait_s)
            except DroneError as exc:
                call.error = exc
            except Exception as exc:
                raise AssertionError(f"{command.text!r} raised {exc!r}, not a DroneError") from exc
            finally:
                call.t1 = self.clock.now()
        if scope.cancelled_caught:
            raise AssertionError(f"{command.text!r} hung for {bound_s:g} simulated seconds")
        if call.error is not None and not isinstance(call.error, allowed_errors(command)):
            raise AssertionError(f"{command.text!r} raised undocumented {call.error!r}") from call.error
        return call

    # ---- waiting ----

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> float:
        """Wait (simulated `timeout_s` at most) until `predicate()` holds; returns the clock then.

        Re-checked at every simulator tick (10 Hz simulated), datagram and runtime call.
        """
        try:
            await self.sim.wait_for(lambda _truth: predicate(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"not within {timeout_s:g} simulated s: {what or predicate}") from None
        return self.clock.now()

    async def elapse(self, seconds: float) -> None:
        """Let `seconds` of simulated time pass, observed through the simulator's own ticks."""
        end = self.clock.now() + seconds
        await self.until(lambda: self.clock.now() >= end, seconds + 5.0, f"{seconds:g} s to pass")

    async def connected(self, timeout_s: float = 30.0) -> float:
        return await self.until(
            lambda: self.link.status() is LinkStatus.CONNECTED, timeout_s, "link status connected"
        )

    async def status(self, status: LinkStatus, timeout_s: float = 30.0) -> float:
        return await self.until(
            lambda: self.link.status() is status, timeout_s, f"link status {status.value}"
        )

    def faults_off(self) -> None:
        f = self.sim.faults
        f.loss = f.dup = 0.0
        f.delay_s = f.jitter_s = 0.0
        f.state_dropout = False

    # ---- watching ----

    async def watch(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Record what a `link.wait_changed()` watcher (like the MCP state resource) sees."""
        task_status.started()
        while True:
            await self.link.wait_changed()
            reading = self.link.reading()
            self.observations.append(Observation(self.clock.now(), reading.status, reading.state_age_s))

    def stale_latencies(self) -> list[float]:
        """For every connected -> stale change a watcher saw: how long after the last state
        packet (as the link received it) the watcher learned of it."""
        out: list[float] = []
        previous: LinkStatus | None = None
        for ob in self.observations:
            if ob.status is LinkStatus.STALE and previous is LinkStatus.CONNECTED:
                assert ob.state_age_s is not None
                out.append(ob.state_age_s)
            previous = ob.status
        return out


def link_config(
    sim: DroneSimulator, protocol: ProtocolConfig | None = None, **overrides: float
) -> LinkConfig:
    host, port = sim.address
    config = LinkConfig(
        drone_host=host,
        drone_port=port,
        bind_host=LOCAL,
        state_host=LOCAL,
        state_port=0,
        protocol=protocol or ProtocolConfig(),
    )
    return dataclasses.replace(config, **overrides)


@contextlib.asynccontextmanager
async def make_rig(
    *,
    speedup: float = SPEEDUP,
    faults: Faults | None = None,
    protocol: ProtocolConfig | None = None,
    drone: DroneConfig | None = None,
    watch: bool = True,
    connect: bool = True,
) -> AsyncIterator[Rig]:
    """A simulator on an ephemeral loopback port and a link bound to 127.0.0.1 pointed at it:
    on virtual time in memory inside a `virtual_time` test, else over UDP on a scaled clock.

    The link owns an ephemeral state port; the simulator is told to stream there, as
    `servers.drone.runtime` does for the embedded simulator.
    """
    clock: Clock
    network: DatagramNetwork
    if in_virtual_time():
        clock, network = LoopClock(), MemoryNetwork()
    else:
        clock, network = ScaledClock(speedup), UdpNetwork()
    config = SimConfig(host=LOCAL, port=0, state_port=0, state_interval_s=STATE_INTERVAL_S)
    if drone is not None:
        config = dataclasses.replace(config, drone=drone)
    sim = DroneSimulator(config, clock=clock, faults=faults or Faults(seed=1), video=None, network=network)
    async with sim, anyio.create_task_group() as tg:
        async with DroneLink(link_config(sim, protocol), clock, network=network) as link:
            sim.state_port = link.state_port
            rig = Rig(clock, sim, link)
            if watch:
                await tg.start(rig.watch)
            if connect:
                await rig.connected()
            yield rig
            rig.faults_off()  # so the shutdown landing is not fighting a fault the test left on
        tg.cancel_scope.cancel()


# ---- oracles ----------------------------------------------------------------------------------


def expected_type(kind: ReplyKind) -> type | tuple[type, ...]:
    return {
        ReplyKind.OK: bool,
        ReplyKind.LED_OK: bool,
        ReplyKind.MATRIX_OK: bool,
        ReplyKind.INT: int,
        ReplyKind.FLOAT: float,
        ReplyKind.SECONDS: int,
        ReplyKind.DECIMETRES: int,
        ReplyKind.MILLIMETRES: int,
        ReplyKind.EXT_TOF: int,
        ReplyKind.TEMPERATURE: TemperatureRange,
        ReplyKind.ATTITUDE: Attitude,
        ReplyKind.ACCELERATION: Acceleration,
        ReplyKind.TEXT: str,
        ReplyKind.NONE: type(None),
    }[kind]


def at_most_once_problems(sim: DroneSimulator, calls: Sequence[Call]) -> list[str]:
    """A command that must never be re-sent reached the drone, and ran, no more often than
    callers put it on the wire (datagrams lost on arrival count: the link did send them)."""
    truth = sim.truth
    problems: list[str] = []
    unfinished = [str(c) for c in calls if math.isnan(c.t1)]
    if unfinished:
        problems.append(f"calls never finished: {unfinished}")
    # The retry class comes from the SDK table, not from the command object under test.
    sent = Counter(c.command.text for c in calls if not SPECS[c.command.verb].idempotent and c.reached_wire)
    arrived = Counter(r.data.decode("ascii", "replace") for r in truth.received)
    ran = Counter(r.text for r in truth.executed if r.is_flight_action and r.outcome is not Outcome.REJECTED)
    for text, n in sent.items():
        if arrived[text] > n:
            problems.append(f"{text!r} reached the drone {arrived[text]} times for {n} call(s)")
        if ran[text] > n:
            problems.append(f"{text!r} ran {ran[text]} times for {n} call(s)")
    return problems


def verify_calls(sim: DroneSimulator, calls: Sequence[Call]) -> None:
    """Judge every recorded call against ground truth (see the module docstring)."""
    truth = sim.truth
    executed = truth.executed
    problems = at_most_once_problems(sim, calls)
    for c in calls:
        in_window = [r for r in executed if r.text == c.command.text and c.t0 <= r.t <= c.t1]
        if c.reply is not None:
            if c.command.verb == "emergency":
                if not any(r.data == b"emergency" and c.t0 <= r.t <= c.t1 for r in truth.received):
                    problems.append(f"{c}: success but no emergency reached the drone")
                continue
            if not c.command.expects_reply:
                continue
            if not isinstance(c.reply.value, expected_type(c.command.reply)):
                problems.append(f"{c}: value {c.reply.value!r} is not a {c.command.reply.value}")
            if c.command.verb == "land" and c.reply.raw == "":
                landing = [r for r in in_window if r.outcome in (Outcome.RUNNING, Outcome.DONE)]
                if not landing and flight_state_at(sim, c.t0) not in _GROUNDED:
                    problems.append(f"{c}: landed by the state stream, but the drone was not landing")
                continue
            backing = [r for r in in_window if r.reply == c.reply.raw]
            if not backing:
                problems.append(
                    f"{c}: success not backed by truth; executed in window: "
                    f"{[(r.t, r.reply, r.outcome.value) for r in in_window]}"
                )
            elif c.command.motion is Motion.FLIGHT and not any(
                r.outcome is Outcome.DONE and r.finished_t is not None and r.finished_t <= c.t1
                for r in backing
            ):
                problems.append(
                    f"{c}: reported done but the drone had not finished it: "
                    f"{[(r.t, r.finished_t, r.outcome.value) for r in backing]}"
                )
        elif isinstance(c.error, CommandRejected) and not any(r.reply == c.error.reply for r in in_window):
            problems.append(f"{c}: refusal {c.error.reply!r} is not the drone's answer to it")
    assert not problems, "\n".join(problems)


_GROUNDED = (FlightState.LANDED, FlightState.MOTORS_ON, FlightState.OFF)


def flight_state_at(sim: DroneSimulator, t: float) -> FlightState:
    """The simulator's flight state at time `t`, from its recorded transitions."""
    state = FlightState.LANDED
    for transition in sim.truth.transitions:
        if transition.t > t:
            break
        state = transition.after
    return state


def executions(sim: DroneSimulator, text: str) -> list[Outcome]:
    return [r.outcome for r in sim.truth.executed if r.text == text]
