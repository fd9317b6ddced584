"""The drone link: a thin anyio datagram transport around the sans-IO `TelloProtocol`.

All protocol decisions (what to send, which reply is whose, when to retry, what stale means)
live in the core. This module moves datagrams through an injected `DatagramNetwork` (UDP in
production, `tello_io.datagram.MemoryNetwork` in tests on virtual time), keeps time with an
injected `Clock`, lets callers await results, and keeps what only the caller side knows: whether
we believe the drone is flying, the speed we set, and the flight log. Everything runs on the
event loop: no threads, no locks around the core (it is only touched between awaits).

Usage::

    async with DroneLink(LinkConfig(drone_host="192.168.10.1"), clock) as link:
        reply = await link.request(commands.query("battery?"))

Leaving the block lands a flying drone first (bounded), then cancels the background tasks
and closes both sockets.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self

import anyio
import anyio.abc
import anyio.lowlevel
import structlog
from opentelemetry import trace

from servers import metrics, tracing
from servers.auth.identity import current_client, current_path, current_tool
from servers.drone.core import commands
from servers.drone.core.commands import Command, Motion
from servers.drone.core.errors import (
    CommandRejected,
    CommandTimeout,
    DroneError,
    LinkBusy,
    NotConnected,
    OutcomeUnknown,
    Preempted,
    ProtocolError,
    ShuttingDown,
)
from servers.drone.core.flight import FlightTracker
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
from servers.drone.core.replies import ReplyValue
from servers.drone.core.telemetry import Telemetry
from servers.drone.core.verdict import ActionWatch, Outcome
from tello_io.clock import Clock, MonotonicClock
from tello_io.datagram import DatagramNetwork, DatagramSocket, UdpNetwork


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Where the drone is and how to talk to it. One link per drone; nothing global."""

    drone_host: str = "192.168.10.1"
    drone_port: int = 8889
    # The command socket's own address: the drone replies to whatever address sent the command.
    bind_host: str = "0.0.0.0"
    bind_port: int = 0
    # The drone sends state to port 8890 of the address that sent `command`.
    state_host: str = "0.0.0.0"
    state_port: int = 8890
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    land_on_exit_s: float = 15.0


@dataclass(frozen=True, slots=True)
class Reply:
    """A command's successful answer."""

    command: str
    value: ReplyValue
    raw: str
    latency_s: float
    attempts: int
    note: str | None = None
    """Where the answer came from something other than the drone's reply, e.g. a `land` the
    state stream shows done ("already landed: ...")."""


@dataclass(frozen=True, slots=True)
class Reading:
    """A snapshot of what the link knows, always with how fresh it is."""

    status: LinkStatus
    state_age_s: float | None
    reply_age_s: float | None
    telemetry: Telemetry | None
    drone: str


@dataclass(frozen=True, slots=True)
class BatteryReading:
    percent: int
    source: Literal["live", "state"]
    age_s: float
    link: LinkStatus


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the flight log: every caller command and what became of it."""

    at: float
    command: str
    outcome: Literal["ok", "rejected", "refused", "timeout", "outcome_unknown", "preempted", "not_connected"]
    """`refused`: the pilot's safety envelope refused it, nothing sent (the reason in `reply`)."""
    reply: str | None
    latency_s: float
    attempts: int
    verdict: str | None = None
    """For an unanswered flight action: what telemetry proves ("executed", "did_not_start",
    "unknown"), with `evidence`."""
    evidence: str | None = None
    client: str | None = None
    """Who asked (`servers.auth.identity`: the token's subject, or the remote address); None
    for the link's own commands and calls from outside an HTTP request."""
    wall: float = field(default_factory=time.time)
    """Wall-clock time (Unix seconds) beside `at` (the link clock's seconds), so an entry can be
    matched with other logs and with what people saw happen."""
    path: str | None = None
    """The mounted path the caller came in on (`/drone-code`: its tool mode); None as `client`."""
    tool: str | None = None
    """The tool that sent it (`move`; `takeoff` for the battery read a takeoff makes); None for
    the link's own commands."""

    @property
    def wall_iso(self) -> str:
        """`wall` in ISO 8601, UTC, to the millisecond: `2026-12-08T14:03:07.412+00:00`."""
        return datetime.fromtimestamp(self.wall, UTC).isoformat(timespec="milliseconds")


class _Waiter:
    __slots__ = ("client", "done", "error", "path", "reply", "span", "tool")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.reply: Reply | None = None
        self.error: DroneError | None = None
        # Taken in the caller's task: the outcome is recorded from the link's receive loop.
        self.client = current_client()
        self.path = current_path()
        self.tool = current_tool()
        self.span = trace.get_current_span()


_GUARD_S = 5.0
"""Seconds past a command's last retry deadline before the link stops waiting on the core."""
SILENT_FIRST_WARNING_S = 3.0
"""Seconds after start-up before a drone that has not answered is warned about in the log."""
SILENT_WARNING_EVERY_S = 30.0
"""Seconds between the warnings while the drone stays silent."""
SILENT_HINT = (
    "check that this machine is on the drone's WiFi (TELLO-XXXXXX / RMTT-XXXXXX) or the drone's "
    "network, that the address is right (--drone-host, TELLO_MCP_DRONE_HOST), and that a firewall "
    "lets UDP 8890 (state) and 11111 (video) in; `tello-mcp doctor` checks step by step"
)
_Loop = Callable[[], Awaitable[None]]


class DroneLink:
    def __init__(
        self,
        config: LinkConfig | None = None,
        clock: Clock | None = None,
        *,
        network: DatagramNetwork | None = None,
        log_size: int = 1000,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or LinkConfig()
        self.clock: Clock = clock or MonotonicClock()
        self._wall = wall_clock
        self._network: DatagramNetwork = network or UdpNetwork()
        self._target = (self.config.drone_host, self.config.drone_port)
        self._core = TelloProtocol(self.config.protocol, connect_at=self.clock.now())
        self._waiters: dict[int, _Waiter] = {}
        self._turn = anyio.Lock()
        self._changed = anyio.Event()
        self._flight = FlightTracker()
        self._watches: dict[int, ActionWatch] = {}  # flight actions in flight, judged by telemetry
        self._speed: int | None = None
        self._heard = False  # the drone has answered once: leaving `disconnected` again is a reconnect
        self.flight_log: collections.deque[LogEntry] = collections.deque(maxlen=log_size)
        self._log = structlog.get_logger("drone.link").bind(drone=self.drone_address)
        self._cmd_sock: DatagramSocket | None = None
        self._state_sock: DatagramSocket | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._scopes: list[anyio.CancelScope] = []
        self._state_port = self.config.state_port
        self._closing = False

    # ---- lifecycle ----

    async def __aenter__(self) -> Self:
        # Sending is a plain non-blocking `send_nowait`, so flushing the core's outbox never
        # waits on the event loop: the emergency path goes out at once.
        self._cmd_sock = await self._network.bind(self.config.bind_host, self.config.bind_port)
        try:
            self._state_sock = await self._network.bind(self.config.state_host, self.config.state_port)
        except BaseException:
            await self._cmd_sock.aclose()
            raise
        self._state_port = self._state_sock.local_address[1]
        self._core = TelloProtocol(self.config.protocol, connect_at=self.clock.now())
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        # The scopes exist (and are registered) before the loops start, so leaving the block
        # right after entering it still cancels them instead of waiting on them forever.
        self._scopes = []
        for loop in (self._receive_replies, self._receive_state, self._drive, self._warn_while_silent):
            scope = anyio.CancelScope(shield=True)
            self._scopes.append(scope)
            self._tg.start_soon(self._shielded, loop, scope)
        self._log.info("link_started", command_port=self.local_port, state_port=self._state_port)
        return self

    def begin_shutdown(self) -> None:
        """From now on refuse new flight actions (`ShuttingDown`, nothing sent) but `land`,
        `stop` and `emergency`: the server is about to land the drone, and a script still
        running must not take it up again. Reads and settings still go out."""
        if not self._closing:
            self._closing = True
            self._log.info("link_refusing_flight_actions")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        self.begin_shutdown()
        try:
            with anyio.CancelScope(shield=True):
                await self._land_if_flying()
        finally:
            for scope in self._scopes:
                scope.cancel()
            try:
                await self._tg.__aexit__(None, None, None)
            finally:
                self._tg = None
                # Shielded: an outer cancellation must not leave a socket open halfway through.
                with anyio.CancelScope(shield=True):
                    for sock in (self._cmd_sock, self._state_sock):
                        if sock is not None:
                            await sock.aclose()
                self._log.info("link_stopped")
        return None

    async def _shielded(self, loop: _Loop, scope: anyio.CancelScope) -> None:
        # Background loops ignore outside cancellation so that shutdown can still land the drone
        # through them; __aexit__ cancels these scopes itself once that is done.
        with scope:
            await loop()

    async def _warn_while_silent(self) -> None:
        """A warning at start-up, then every 30 s, while the drone does not answer: otherwise a
        drone that is off, out of range or firewalled shows only as tool calls refused later."""
        started = self.clock.now()
        wait = SILENT_FIRST_WARNING_S
        while True:
            await self.clock.sleep(wait)
            wait = SILENT_WARNING_EVERY_S
            now = self.clock.now()
            if self._core.status(now) is not LinkStatus.DISCONNECTED:
                continue
            age = self._core.reply_age(now)
            self._log.warning(
                "drone_not_answering",
                silent_s=round(now - started if age is None else age, 1),
                heard="never" if age is None else f"last reply {age:.0f} s ago",
                hint=SILENT_HINT,
            )

    async def _land_if_flying(self) -> None:
        if not self.is_flying():
            return
        self._log.warning("landing_before_shutdown")
        with self.clock.move_on_after(self.config.land_on_exit_s):
            pending = self._core.pending
            if pending is not None and pending.motion is Motion.FLIGHT and pending.verb != "land":
                # A flight action still holds the wire (its caller is gone: we are shutting
                # down). A landing queued behind a 50 s move would never go out within the
                # bound, so interrupt the move first.
                try:
                    await self.request(commands.simple("stop"))
                except DroneError as exc:
                    self._log.error("shutdown_stop_failed", error=str(exc))
            try:
                await self.request(commands.simple("land"))
            except DroneError as exc:
                self._log.error("shutdown_land_failed", error=str(exc))

    # ---- what callers use ----

    @property
    def drone_address(self) -> str:
        return f"{self._target[0]}:{self._target[1]}"

    @property
    def target(self) -> tuple[str, int]:
        """The drone's command address (host, port): where commands go, where replies must come from."""
        return self._target

    @property
    def local_port(self) -> int:
        assert self._cmd_sock is not None, "link not started"
        return self._cmd_sock.local_address[1]

    @property
    def state_port(self) -> int:
        return self._state_port

    @property
    def speed_cm_s(self) -> int | None:
        """The speed last set through this link (None: unknown, e.g. after a reconnect)."""
        return self._speed

    def status(self) -> LinkStatus:
        return self._core.status(self.clock.now())

    def reading(self) -> Reading:
        now = self.clock.now()
        return Reading(
            status=self._core.status(now),
            state_age_s=self._core.state_age(now),
            reply_age_s=self._core.reply_age(now),
            telemetry=self._core.telemetry,
            drone=self.drone_address,
        )

    def is_flying(self) -> bool:
        """Best knowledge (`servers.drone.core.flight`): a takeoff we saw succeed, or a fresh state
        packet showing height sent after our last landing or emergency."""
        t = self._core.telemetry
        now = self.clock.now()
        return self._flight.is_flying(None if t is None else t.height_cm, self._core.state_age(now), now)

    @property
    def counters(self) -> dict[str, int]:
        c = self._core.counters
        return {
            "sent": c.sent,
            "replies": c.replies,
            "strays": c.strays,
            "retries": c.retries,
            "timeouts": c.timeouts,
            "bad_state": c.bad_state,
            "state_packets": c.state_packets,
            "keepalives": c.keepalives,
        }

    def set_drone_address(self, host: str, port: int | None = None) -> None:
        """Point the link at a drone that came back on another address (DHCP, station mode).

        The keepalive then finds it within one reconnect period; nothing else needs a restart.
        """
        self._target = (host, port if port is not None else self._target[1])
        self._speed = None
        self._log = self._log.bind(drone=self.drone_address)
        self._log.info("drone_address_changed")
        self._kick()

    async def wait_changed(self) -> None:
        """Return at the next state packet, reply or status change (for resource watchers)."""
        await self._changed.wait()

    async def request(self, command: Command, *, turn_wait_s: float | None = None) -> Reply:
        """Send one command and wait for its outcome.

        Raises `NotConnected` (nothing sent), `CommandRejected` (the drone's error string),
        `CommandTimeout` (a harmless command, retried, still unanswered), `OutcomeUnknown` (a
        flight action unanswered: never re-sent), or `Preempted` (overtaken by emergency/stop).
        With `turn_wait_s`, gives up with `LinkBusy` if the wire is not free within that time.

        A read (`battery?`, `tof?`, ...) does not queue behind a flight action in flight: it
        goes out beside it as soon as the core can tell their replies apart.
        """
        if command.verb in ("emergency", "stop"):
            return await self._priority(command)
        with tracing.command_span(command.verb, command.text):
            if self._closing and command.motion is Motion.FLIGHT and command.verb != "land":
                self._record(command, "not_connected", None, 0.0, 0)
                raise ShuttingDown(
                    f"{command.text!r} refused: the server is shutting down and lands the drone; "
                    "nothing was sent"
                )
            try:
                with self.clock.fail_after(math.inf if turn_wait_s is None else turn_wait_s):
                    side = await self._take_turn(command)
            except TimeoutError:
                raise self._busy(command, turn_wait_s or 0.0) from None
            try:
                now = self.clock.now()
                ticket = self._core.send_side(command, now) if side else self._core.send(command, now)
                self._flush()
                self._watch(ticket, command)
                if not command.expects_reply:
                    self._record(command, "ok", None, 0.0, 1)
                    return Reply(command.text, None, "", 0.0, 1)
                waiter = self._waiters[ticket] = _Waiter()
                self._log.debug(
                    "command_sent", command=command.text, beside=self._pending_text() if side else None
                )
                self._kick()
                return await self._outcome(ticket, waiter, command)
            finally:
                if not side:
                    self._turn.release()
                    self._kick()  # a read waiting for the turn or the side channel looks again

    async def _take_turn(self, command: Command) -> bool:
        """Wait until `command` may go out; True: beside what is pending (a read), False: on the
        main wire, holding the turn (the caller releases it)."""
        if not _is_read(command):
            await self._turn.acquire()
            try:
                await self._await_turn(command)
            except BaseException:
                self._turn.release()
                raise
            return False
        while True:
            now = self._check_connected(command)
            # Taken without yielding: the wire cannot change between the check and the send.
            if not self._turn.locked() and self._core.can_send(now, command):
                self._turn.acquire_nowait()
                return False
            if self._core.can_send_side(command, now):
                return True
            readies = [self._core.side_ready_at(command, now)]
            if not self._turn.locked():
                readies.append(self._core.ready_at(now, command))
            await self._wait_changed_until(min((r for r in readies if r is not None), default=None), now)

    def _pending_text(self) -> str | None:
        pending = self._core.pending
        return None if pending is None else pending.text

    def _watch(self, ticket: int, command: Command) -> None:
        """Start watching the state stream for a flight action that is never retried, so that
        if its reply is lost the caller learns what the telemetry proves."""
        if command.motion is not Motion.FLIGHT or command.idempotent or not command.expects_reply:
            return
        now = self.clock.now()
        t, age = self._core.telemetry, self._core.state_age(now)
        baseline = None if t is None or age is None else (now - age, t)
        self._watches[ticket] = ActionWatch(command, now, baseline=baseline, speed_cm_s=self._speed)

    def _busy(self, command: Command, waited_s: float) -> LinkBusy:
        held = self._core.pending
        what = repr(held.text) if held else "another command (or the quiet after a timeout)"
        return LinkBusy(f"{command.text!r} not sent: {what} still holds the wire after {waited_s:g}s")

    async def battery(self, *, live_wait_s: float = 1.5) -> BatteryReading:
        """`battery?` asked live; if the drone cannot answer (a move holds the wire, or WiFi is
        down) the last state packet's value, marked with its age."""
        try:
            reply = await self.request(commands.query("battery?"), turn_wait_s=live_wait_s)
        except DroneError as exc:
            reading = self.reading()
            if reading.telemetry is None or reading.state_age_s is None:
                raise NotConnected(
                    f"no battery reading: {str(exc).rstrip('.')}. No state packet has arrived yet "
                    "either, so there is no last value to report."
                ) from exc
            return BatteryReading(reading.telemetry.battery_pct, "state", reading.state_age_s, reading.status)
        assert isinstance(reply.value, int)
        return BatteryReading(reply.value, "live", 0.0, self.status())

    # ---- internals: sending ----

    async def _await_turn(self, command: Command) -> None:
        while True:
            now = self._check_connected(command)
            if self._core.can_send(now, command):
                return
            await self._wait_changed_until(self._core.ready_at(now, command), now)

    def _check_connected(self, command: Command) -> float:
        """The time now; raises `NotConnected` (recorded, nothing sent) unless `command` may go
        out on this link's status."""
        now = self.clock.now()
        if self._core.status(now) is LinkStatus.DISCONNECTED and command.verb != "command":
            self._record(command, "not_connected", None, 0.0, 0)
            age = self._core.reply_age(now)
            heard = "never heard from it" if age is None else f"last reply {age:.1f}s ago"
            raise NotConnected(f"drone at {self.drone_address} is not connected ({heard}); nothing was sent")
        return now

    async def _wait_changed_until(self, ready: float | None, now: float) -> None:
        """Until the link changes, or `ready` (None: only a change) comes."""
        changed = self._changed
        if ready is None:
            await changed.wait()
        elif ready > now:
            with self.clock.move_on_after(ready - now):
                await changed.wait()
        else:
            await anyio.lowlevel.checkpoint()

    async def _priority(self, command: Command) -> Reply:
        """emergency/stop: out at once, whatever is pending, without waiting for the turn."""
        with tracing.command_span(command.verb, command.text):
            now = self.clock.now()
            ticket, events = self._core.send_priority(command, now)
            self._flush()
            self._log.warning("priority_command_sent", command=command.text)
            waiter = self._waiters[ticket] = _Waiter()
            self._dispatch(events)
            self._kick()
            return await self._outcome(ticket, waiter, command)

    async def _outcome(self, ticket: int, waiter: _Waiter, command: Command) -> Reply:
        attempts = 1 + (self.config.protocol.retries if command.idempotent else 0)
        budget = attempts * (command.timeout_s + self.config.protocol.retry_backoff_s) + _GUARD_S
        try:
            # The core always resolves a ticket by its own deadlines; this bound only guards
            # against a bug there. A stalled process can wake this waiter before the drive loop
            # has run the core's (earlier) deadline, so run the core's timers before giving up.
            with self.clock.move_on_after(budget):
                await waiter.done.wait()
            if not waiter.done.is_set():
                self._dispatch(self._core.handle_timer(self.clock.now()))
                self._flush()
                self._kick()
            if not waiter.done.is_set():
                raise ProtocolError(
                    f"{command.text!r} unresolved after {budget:g}s (a link bug): its outcome is unknown"
                )
        finally:
            self._waiters.pop(ticket, None)
            self._watches.pop(ticket, None)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return waiter.reply

    def _flush(self) -> None:
        sock = self._cmd_sock
        if sock is None:
            return
        for datagram in self._core.datagrams_to_send():
            try:
                sock.send_nowait(datagram, self._target)
            except OSError as exc:  # no route while WiFi is down, full buffer: a lost datagram
                self._log.warning("send_failed", error=str(exc))

    # ---- internals: receiving and time ----

    async def _receive_replies(self) -> None:
        assert self._cmd_sock is not None
        async for data, (host, port) in self._cmd_sock:
            if (host, port) != self._target:
                self._log.debug("foreign_datagram", source=f"{host}:{port}")
                continue
            self._dispatch(self._core.receive_reply(data, self.clock.now()))
            self._kick()

    async def _receive_state(self) -> None:
        assert self._state_sock is not None
        async for data, (host, _port) in self._state_sock:
            if host != self._target[0]:
                continue
            self._dispatch(self._core.receive_state(data, self.clock.now()))
            self._kick()

    async def _drive(self) -> None:
        while True:
            now = self.clock.now()
            before = (self._core.pending, self._core.ready_at(now))
            events = self._core.handle_timer(now)
            self._dispatch(events)
            self._flush()
            if events or (self._core.pending, self._core.ready_at(now)) != before:
                # A timeout, a status change (stale, disconnected) or a freed wire happened on
                # the clock alone: wake the callers queued in `_await_turn` and the
                # `wait_changed` watchers, who may otherwise hear nothing else (drone off).
                self._kick()
            deadline = self._core.next_deadline()
            changed = self._changed
            wait = math.inf if deadline is None else deadline - self.clock.now()
            if wait > 0:
                with self.clock.move_on_after(wait):
                    await changed.wait()
            else:
                await anyio.lowlevel.checkpoint()

    def _kick(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _dispatch(self, events: Iterable[Event]) -> None:
        for event in events:
            match event:
                case CommandSucceeded():
                    self._on_success(event)
                case CommandFailed():
                    self._on_failure(event)
                case CommandRetried():
                    self._log.info("command_retry", command=event.command.text, attempt=event.attempt)
                case StrayReply():
                    self._log.info("stray_reply_dropped", reply=event.raw, reason=event.reason)
                case StatusChanged():
                    self._on_status(event)
                case BadDatagram():
                    self._log.warning("bad_datagram", channel=event.channel, reason=event.reason)
                case TelemetryReceived():
                    self._on_telemetry(event)
                case _:
                    pass

    def _on_success(self, event: CommandSucceeded) -> None:
        verb = event.command.verb
        self._flight.on_command_succeeded(verb, event.at)
        if verb == "speed":
            self._speed = int(event.command.text.split()[1])
        self._record(event.command, "ok", event.raw, event.latency_s, event.attempts, ticket=event.ticket)
        self._log.info(
            "command_reply",
            command=event.command.text,
            reply=event.raw,
            latency_ms=round(event.latency_s * 1000, 2),
            attempts=event.attempts,
        )
        self._resolve(
            event.ticket,
            reply=Reply(
                event.command.text, event.value, event.raw, event.latency_s, event.attempts, event.evidence
            ),
        )

    def _on_failure(self, event: CommandFailed) -> None:
        error = event.error
        outcome: Literal["rejected", "timeout", "outcome_unknown", "preempted"]
        # How long the caller waited and how many copies went out, where the error knows it
        # (the event's own time is now, so `now - event.at` was always ~0).
        latency, attempts = 0.0, 1
        match error:
            case CommandRejected():
                outcome = "rejected"
            case CommandTimeout():
                outcome = "timeout"
                latency, attempts = error.waited_s, error.attempts
            case OutcomeUnknown():
                outcome = "outcome_unknown"
                latency = error.waited_s
                watch = self._watches.get(event.ticket)
                if watch is not None and error.verdict is None:
                    judged = watch.verdict(event.at)
                    error = OutcomeUnknown(
                        error.command, error.waited_s, verdict=judged.outcome.value, evidence=judged.evidence
                    )
            case Preempted():
                outcome = "preempted"
            case _:
                outcome = "rejected"
        self._flight.on_command_failed(event.command.verb, event.at)
        verdict = error.verdict if isinstance(error, OutcomeUnknown) else None
        evidence = error.evidence if isinstance(error, OutcomeUnknown) else None
        self._record(
            event.command, outcome, event.raw, latency, attempts, verdict, evidence, ticket=event.ticket
        )
        self._log.warning(
            "command_failed", command=event.command.text, outcome=outcome, verdict=verdict, error=str(error)
        )
        self._resolve(event.ticket, error=error)

    def _on_telemetry(self, event: TelemetryReceived) -> None:
        for watch in self._watches.values():
            watch.feed(event.telemetry, event.at)
        self._fail_fast(event.at)
        if self._flight.on_telemetry(event.telemetry.height_cm, event.at) is not None:
            # We saw it take off, and now it streams from the ground without a landing we saw
            # succeed: our landing whose `ok` is on the way, or it came down on its own (idle or
            # low-battery auto-land), fell (reboot, power loss) or was landed by another client.
            pending = self._core.pending
            if pending is None or pending.verb != "land":
                self._log.warning("on_ground_without_our_landing", height_cm=event.telemetry.height_cm)

    def _fail_fast(self, now: float) -> None:
        """Give up at once on a pending flight action the state stream shows never started.

        Judged only when a state packet comes: "did not start" needs the stream to keep
        flowing past the drone's reaction time, so a silent stream never fails anything fast.
        The core quarantines the wire as after a timeout (for a late refusal); nothing is
        re-sent.
        """
        for ticket, watch in list(self._watches.items()):
            if now < watch.fail_fast_at:
                continue
            verdict = watch.verdict(now)
            if verdict.outcome is not Outcome.DID_NOT_START:
                continue
            del self._watches[ticket]
            error = OutcomeUnknown(
                watch.command.text,
                now - watch.sent_at,
                verdict=verdict.outcome.value,
                evidence=verdict.evidence,
            )
            events = self._core.abandon(ticket, error, now)
            if events:
                self._log.info("action_did_not_start", command=watch.command.text, evidence=verdict.evidence)
            self._dispatch(events)
            self._flush()

    def _on_status(self, event: StatusChanged) -> None:
        self._log.info("link_status", old=event.old.value, new=event.new.value)
        if event.new is not LinkStatus.CONNECTED:
            # A drone that rebooted forgot it, and a reboot may show only as a stale spell.
            # Unknown speed sizes move timeouts for the slowest speed: longer, never too short.
            self._speed = None
        if event.old is LinkStatus.DISCONNECTED:
            self._log.info("link_reconnected")
            if self._heard:
                metrics.count_reconnect(self.drone_address)
            self._heard = True

    def _resolve(self, ticket: int, *, reply: Reply | None = None, error: DroneError | None = None) -> None:
        waiter = self._waiters.get(ticket)
        if waiter is None:
            return
        waiter.reply, waiter.error = reply, error
        waiter.done.set()

    def _record(
        self,
        command: Command,
        outcome: Literal["ok", "rejected", "timeout", "outcome_unknown", "preempted", "not_connected"],
        reply: str | None,
        latency_s: float,
        attempts: int,
        verdict: str | None = None,
        evidence: str | None = None,
        *,
        ticket: int | None = None,
    ) -> None:
        """One flight-log line; `ticket`: recorded from the receive loop for that caller's command
        (whose identity its waiter holds), else from the caller's own task."""
        waiter = None if ticket is None else self._waiters.get(ticket)
        client = waiter.client if waiter is not None else current_client()
        path = waiter.path if waiter is not None else current_path()
        tool = waiter.tool if waiter is not None else current_tool()
        span = waiter.span if waiter is not None else trace.get_current_span()
        tracing.record_command(span, outcome, attempts, verdict)
        metrics.observe_command(self.drone_address, command.verb, outcome, latency_s, verdict)
        self.flight_log.append(
            LogEntry(
                self.clock.now(),
                command.text,
                outcome,
                reply,
                latency_s,
                attempts,
                verdict,
                evidence,
                client,
                self._wall(),
                path,
                tool,
            )
        )


def _is_read(command: Command) -> bool:
    """A query whose answer changes nothing on the drone: it may go out beside a pending action."""
    return command.verb.endswith("?") and command.idempotent and command.expects_reply
