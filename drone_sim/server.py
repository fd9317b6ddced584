"""`DroneSimulator`: the thin anyio datagram transport around the sans-IO `Drone`.

It owns the command socket (on an injected `tello_io` network: real UDP by default, in memory
for tests on virtual time), a task group and the clock; the drone model owns every decision.
Three kinds of task run in the group:

* the receiver: datagram -> (loss fault) -> `Drone.handle` -> outputs;
* the ticker: sleeps until the model's next deadline or the next state packet (10 Hz of
  simulated time), whichever is first, then `Drone.advance` and the state packet;
* the sender: the only writer of the socket besides video, so replies leave in the order the
  drone produced them; delayed replies are parked in their own small tasks first.

Ground truth is updated synchronously with each of these steps and every update wakes
`wait_for`, so tests wait on predicates instead of sleeping.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Protocol, Self, cast

import anyio
import anyio.abc
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from drone_sim.commands import Emergency
from drone_sim.config import DroneConfig
from drone_sim.drone import (
    DEFAULT_STATE_PORT,
    DEFAULT_VIDEO_PORT,
    Drone,
    Output,
    Reply,
    StartVideo,
    StopVideo,
)
from drone_sim.faults import Faults
from drone_sim.pose import Pose
from drone_sim.records import Address, DroppedReply, EventKind, ReceivedDatagram, SentReply
from drone_sim.truth import GroundTruth
from tello_io.clock import Clock, ScaledClock
from tello_io.datagram import DatagramNetwork, DatagramSocket, UdpNetwork

log = structlog.get_logger("drone_sim")

DEFAULT_COMMAND_PORT = 8889


class VideoStream(Protocol):
    """What `drone_sim.video.VideoStreamer` instances provide."""

    async def stream(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Send datagrams (each <= 1460 bytes) through `send` until cancelled."""
        ...


VideoFactory = Callable[[Callable[[], Pose], Clock], VideoStream]
"""Builds a streamer from a pose source and the shared clock (`VideoStreamer` itself fits)."""


def default_video_factory() -> VideoFactory | None:
    """`drone_sim.video.VideoStreamer` if that module is installed, else None (no video)."""
    try:
        module = importlib.import_module("drone_sim.video")
    except ModuleNotFoundError as exc:
        if exc.name in ("drone_sim.video", "av", "numpy"):
            return None
        raise
    factory = getattr(module, "VideoStreamer", None)
    return cast(VideoFactory, factory) if callable(factory) else None


class _Tasks:
    """A task group whose tasks ignore outside cancellation until `cancel()`.

    Embedded in a server that is shutting down (SIGTERM cancels everything), the simulator
    must keep answering until the server has landed it: like a real drone, it does not stop
    because its client is going away. Leaving the simulator's block calls `cancel()`.
    """

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg
        self._scopes: set[anyio.CancelScope] = set()
        self._cancelled = False

    def _scope(self) -> anyio.CancelScope:
        scope = anyio.CancelScope(shield=True)
        if self._cancelled:
            scope.cancel()
        self._scopes.add(scope)
        return scope

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        scope = self._scope()

        async def run() -> None:
            try:
                with scope:
                    await fn(*args)
            finally:
                self._scopes.discard(scope)

        self._tg.start_soon(run)

    async def start(self, fn: Callable[..., Awaitable[object]], *args: object) -> object:
        scope = self._scope()

        async def run(*, task_status: anyio.abc.TaskStatus[object] = anyio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await fn(*args, task_status=task_status)
            finally:
                self._scopes.discard(scope)

        return await self._tg.start(run)

    def cancel(self) -> None:
        self._cancelled = True
        for scope in list(self._scopes):
            scope.cancel()
        self._tg.cancel_scope.cancel()


@dataclass(frozen=True, slots=True)
class SimConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_COMMAND_PORT
    """Command port; 0 binds an ephemeral port (see `DroneSimulator.address`)."""
    state_port: int = DEFAULT_STATE_PORT
    """Port state packets go to, on the host that sent `command`."""
    video_port: int = DEFAULT_VIDEO_PORT
    """Port video goes to after `streamon`, on the host that sent it."""
    state_interval_s: float = 0.1
    drone: DroneConfig = field(default_factory=DroneConfig)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    data: bytes
    to: Address
    reply: Reply | None = None
    duplicate: bool = False


class DroneSimulator:
    """A simulated Tello/RMTT on a UDP socket (or any `DatagramNetwork`), for tests and `drone-sim`.

    Use as `async with DroneSimulator(...) as sim:` (or `async with sim.running():`); leaving the
    block stops every task and closes the socket. Several may run at once on different
    addresses or ports. `video="auto"` streams with `drone_sim.video` when it is importable;
    pass None to disable video or a factory to substitute it. Typical test use::

        clock = ScaledClock(20)
        config = SimConfig(host="127.0.0.1", port=0, state_port=my_state_port)
        async with DroneSimulator(config, clock=clock, video=None) as sim:
            ...  # fly a client at sim.address
            await sim.wait_for(lambda truth: truth.flight_state is FlightState.LANDED)
            assert [r.text for r in sim.truth.executed_actions()] == ["takeoff", "land"]
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        clock: Clock | None = None,
        faults: Faults | None = None,
        video: VideoFactory | Literal["auto"] | None = "auto",
        network: DatagramNetwork | None = None,
    ) -> None:
        self.config = config if config is not None else SimConfig()
        self.network: DatagramNetwork = network if network is not None else UdpNetwork()
        self.clock: Clock = clock if clock is not None else ScaledClock(1.0)
        self.faults = faults if faults is not None else Faults()
        self.drone = Drone(
            self.config.drone,
            now=self.clock.now(),
            state_port=self.config.state_port,
            video_port=self.config.video_port,
        )
        self.truth = GroundTruth(self.drone, self.clock)
        self._video_factory = default_video_factory() if video == "auto" else video
        self._address: Address | None = None
        self._sock: DatagramSocket | None = None
        self._tg: _Tasks | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._outbox: MemoryObjectSendStream[_Outgoing] | None = None
        self._send_lock = anyio.Lock()
        self._wake = anyio.Event()
        self._changed = anyio.Event()
        self._rx_scope: anyio.CancelScope | None = None
        self._video_scope: anyio.CancelScope | None = None
        self._started_at = self.clock.now()
        self._fault_reboot_done = False

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("simulator already running")
        async with contextlib.AsyncExitStack() as stack:
            self._sock = await self._open(self.config.host, self.config.port)
            stack.push_async_callback(self._close_socket)
            self._address = self._sock.local_address
            outbox, inbox = anyio.create_memory_object_stream[_Outgoing](math.inf)
            stack.enter_context(outbox)
            stack.enter_context(inbox)
            self._outbox = outbox
            self._send_lock = anyio.Lock()
            self._wake = anyio.Event()
            self._changed = anyio.Event()
            self._tg = tg = _Tasks(await stack.enter_async_context(anyio.create_task_group()))
            stack.callback(tg.cancel)
            self._started_at = self.clock.now()
            self._fault_reboot_done = False
            tg.start_soon(self._sender, inbox)
            await tg.start(self._receiver, self._sock)
            tg.start_soon(self._ticker)
            self._stack = stack.pop_all()
        log.info("sim_listening", address=f"udp://{self.address[0]}:{self.address[1]}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None, "simulator not running"
        try:
            # The outer exception is not handed down: an anyio task group re-raises the instance
            # it is given, and contextlib then ties that exception's context into a cycle that
            # the next ExitStack up walks forever. Cleanup errors still propagate.
            await stack.__aexit__(None, None, None)
            return None
        finally:
            self._tg = None
            self._outbox = None
            self._rx_scope = None
            self._video_scope = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncGenerator[Self]:
        async with self:
            yield self

    async def _open(self, host: str, port: int) -> DatagramSocket:
        # SO_REUSEADDR on UDP, so a client bound to the wildcard address on the same port number
        # (djitellopy binds 0.0.0.0:8889) can coexist with the simulator on one machine.
        return await self.network.bind(host, port, reuse_address=True)

    async def _close_socket(self) -> None:
        if self._sock is not None:
            # Shielded: an outer cancellation must not leave the socket open.
            with anyio.CancelScope(shield=True):
                await self._sock.aclose()
            self._sock = None

    @property
    def is_running(self) -> bool:
        return self._stack is not None

    @property
    def started_at(self) -> float:
        """Clock time the simulator last started (what `Faults.reboot_after_s` counts from)."""
        return self._started_at

    @property
    def video_factory(self) -> VideoFactory | None:
        """What `streamon` starts (None: video disabled)."""
        return self._video_factory

    @property
    def address(self) -> Address:
        """(host, port) the command socket is bound to (the ephemeral port if 0 was asked)."""
        if self._address is None:
            raise RuntimeError("simulator not started")
        return self._address

    @property
    def state_port(self) -> int:
        return self.drone.state_port

    @state_port.setter
    def state_port(self, port: int) -> None:
        """Where state packets go from now on (e.g. a client's ephemeral state socket)."""
        self.drone.configure_ports(state_port=port)
        self._poke()

    @property
    def video_port(self) -> int:
        return self.drone.video_port

    @video_port.setter
    def video_port(self, port: int) -> None:
        self.drone.configure_ports(video_port=port)

    @property
    def video_streaming(self) -> bool:
        """Whether a video streamer task is running right now."""
        return self._video_scope is not None

    # ------------------------------------------------------------------ runtime faults

    def power_off(self) -> None:
        """Cut the power: the drone drops if flying and stays deaf until `power_on()`."""
        self._apply(self.drone.power_off(self.clock.now()))

    def power_on(self) -> None:
        """Power back on: landed, silent until it gets `command`."""
        self._apply(self.drone.power_on(self.clock.now()))

    def reboot(self) -> None:
        """Reboot now, as `reboot` does: deaf for `reboot_s`, then landed and out of SDK mode."""
        self._apply(self.drone.reboot(self.clock.now(), cause="simulator reboot()"))

    def set_battery(self, pct: float) -> None:
        self._apply(self.drone.set_battery(pct, self.clock.now()))

    async def rebind(self, host: str, port: int | None = None) -> Address:
        """Move the command socket to `host` (same port unless given), like a DHCP renumbering."""
        if self._tg is None or self._sock is None:
            raise RuntimeError("simulator not running")
        new = await self._open(host, self.address[1] if port is None else port)
        async with self._send_lock:
            old, self._sock = self._sock, new
            if self._rx_scope is not None:
                self._rx_scope.cancel()
            await old.aclose()
        before = self.address
        self._address = new.local_address
        await self._tg.start(self._receiver, new)
        self.drone.record_event(self.clock.now(), EventKind.REBIND, f"{before[0]}:{before[1]} -> {host}")
        self._poke()
        return self.address

    async def wait_for(
        self, predicate: Callable[[GroundTruth], bool], timeout_s: float = 60.0
    ) -> GroundTruth:
        """Wait until `predicate(truth)` holds; TimeoutError after `timeout_s` simulated seconds.

        Re-evaluated after every datagram, reply, tick (10 Hz simulated) and runtime call.
        """
        if self._stack is None:
            raise RuntimeError("simulator not running")
        with self.clock.fail_after(timeout_s):
            while True:
                changed = self._changed
                if predicate(self.truth):
                    return self.truth
                await changed.wait()

    # ------------------------------------------------------------------ tasks

    async def _receiver(
        self,
        sock: DatagramSocket,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        with anyio.CancelScope() as scope:
            self._rx_scope = scope
            task_status.started()
            try:
                async for data, sender in sock:
                    self._on_datagram(data, (sender[0], sender[1]))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass

    def _on_datagram(self, data: bytes, sender: Address) -> None:
        now = self.clock.now()
        if self.faults.drop_command(data.decode("ascii", "replace")):
            log.debug("command_lost", data=data, sender=f"{sender[0]}:{sender[1]}")
            self.truth.note_received(ReceivedDatagram(now, data, sender, dropped=True))
        else:
            handled = self.drone.handle(data, sender, now)
            log.debug("command_received", data=data, sender=f"{sender[0]}:{sender[1]}", seq=handled.seq)
            self.truth.note_received(
                ReceivedDatagram(now, data, sender, ignored=handled.ignored, seq=handled.seq)
            )
            self._dispatch(handled.outputs)
        self._poke()

    async def _ticker(self) -> None:
        interval = self.config.state_interval_s
        next_state = self.clock.now()
        while True:
            now = self.clock.now()
            self._dispatch(self.drone.advance(now))
            reboot_at = self._fault_reboot_at()
            if reboot_at is not None and now >= reboot_at:
                self._fault_reboot_done = True
                self._dispatch(self.drone.reboot(now, cause="fault: reboot_after_s"))
            if now >= next_state:
                self._send_state(now)
                next_state = max(next_state + interval, now + interval / 2)
            self._notify()
            deadlines = (next_state, self.drone.next_deadline(), self._fault_reboot_at())
            deadline = min(d for d in deadlines if d is not None)
            wake = self._wake
            with anyio.move_on_after(self.clock.to_real(deadline - self.clock.now())):
                await wake.wait()
            if wake.is_set():
                self._wake = anyio.Event()

    def _fault_reboot_at(self) -> float | None:
        after = self.faults.reboot_after_s
        if after is None or self._fault_reboot_done:
            return None
        return self._started_at + after

    async def _sender(self, inbox: MemoryObjectReceiveStream[_Outgoing]) -> None:
        async for item in inbox:
            try:
                await self._send_datagram(item.data, item.to)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
                log.debug("send_failed", to=f"{item.to[0]}:{item.to[1]}", error=repr(exc))
                if item.reply is not None:
                    self._note_dropped(item.reply, f"send failed: {exc!r}")
                continue
            if item.reply is not None:
                r = item.reply
                self.truth.note_sent(SentReply(self.clock.now(), r.text, r.to, r.seq, item.duplicate))
                self._notify()

    async def _send_datagram(self, data: bytes, to: Address) -> None:
        async with self._send_lock:
            if self._sock is None:
                raise anyio.ClosedResourceError
            self._sock.send_nowait(data, to)

    async def _send_later(self, delay: float, items: Iterable[_Outgoing]) -> None:
        await self.clock.sleep(delay)
        for item in items:
            self._enqueue(item)

    # ------------------------------------------------------------------ outputs

    def _apply(self, outputs: list[Output]) -> None:
        self._dispatch(outputs)
        self._poke()

    def _dispatch(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            match output:
                case Reply():
                    self._send_reply(output)
                case StartVideo(to=to):
                    self._start_video(to)
                case StopVideo():
                    self._stop_video()

    def _send_reply(self, reply: Reply) -> None:
        if isinstance(reply.command, Emergency) and self.faults.silence_emergency():
            self._note_dropped(reply, "emergency not answered")
            return
        if self.faults.drop_reply(self.truth.record(reply.seq).text):
            self._note_dropped(reply, "lost")
            return
        data = reply.text.encode("ascii", errors="replace")
        items = [_Outgoing(data, reply.to, reply)]
        if self.faults.duplicate_reply():
            items.append(_Outgoing(data, reply.to, reply, duplicate=True))
        delay = self.faults.reply_delay()
        if delay > 0 and self._tg is not None:
            self._tg.start_soon(self._send_later, delay, items)
        else:
            for item in items:
                self._enqueue(item)

    def _enqueue(self, item: _Outgoing) -> None:
        if self._outbox is None:
            if item.reply is not None:
                self._note_dropped(item.reply, "simulator not running")
            return
        self._outbox.send_nowait(item)

    def _note_dropped(self, reply: Reply, reason: str) -> None:
        self.truth.note_dropped(DroppedReply(self.clock.now(), reply.text, reply.to, reply.seq, reason))

    def _send_state(self, now: float) -> None:
        destination = self.drone.state_destination
        if destination is None or self.faults.state_dropout:
            return
        packet = self.drone.state_packet(now)
        if packet is None:
            return
        self._enqueue(_Outgoing(packet.encode("ascii"), destination))
        self.truth.note_state_packet(packet)

    def _start_video(self, to: Address) -> None:
        self._stop_video()
        if self._video_factory is None or self._tg is None:
            return
        scope = anyio.CancelScope()
        self._video_scope = scope
        self._tg.start_soon(self._run_video, scope, self._video_factory, to)

    def _stop_video(self) -> None:
        if self._video_scope is not None:
            self._video_scope.cancel()
            self._video_scope = None

    async def _run_video(self, scope: anyio.CancelScope, factory: VideoFactory, to: Address) -> None:
        async def send(data: bytes) -> None:
            try:
                await self._send_datagram(data, to)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
                raise OSError(f"command socket unavailable: {exc!r}") from exc

        with scope:
            try:
                streamer = factory(
                    lambda: self.drone.pose_at(max(self.clock.now(), self.drone.now)), self.clock
                )
                await streamer.stream(send)
            except Exception as exc:
                # A broken camera must not take the drone down with it: log, record, carry on.
                log.exception("video_streamer_failed")
                self.drone.record_event(self.clock.now(), EventKind.VIDEO_FAILED, repr(exc))
        if self._video_scope is scope:
            self._video_scope = None
        self._notify()

    # ------------------------------------------------------------------ wake-ups

    def _poke(self) -> None:
        """Something changed the model's deadlines: let the ticker recompute, and tell waiters."""
        self._wake.set()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
