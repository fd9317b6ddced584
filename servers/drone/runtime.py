"""One drone's runtime: the link, the video receiver, the pilot and their background tasks.

A process owns one `DroneRuntime` per drone and shares it between every MCP app that flies
that drone (`/drone` and, with the tool modes, `/drone-search`, `/drone-code`, ...), so there
is exactly one UDP link, one keepalive and one command queue per drone.

With `settings.sim` the runtime first starts `drone_sim` in-process on loopback and points
the link at it, sharing one clock so the drone's 15 s timers and our keepalive agree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import AsyncGenerator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import anyio
import structlog

from servers import metrics
from servers.drone.callers import Callers
from servers.drone.camera import VideoReceiver
from servers.drone.config import DroneSettings
from servers.drone.core import commands
from servers.drone.core.errors import DroneError
from servers.drone.core.protocol import LinkStatus
from servers.drone.hold import FlightHold
from servers.drone.link import DroneLink
from servers.drone.photo import PhotoService
from servers.drone.pilot import Pilot
from servers.drone.recorder import FlightRecorder
from tello_io.clock import Clock, ScaledClock
from tello_io.datagram import DatagramNetwork, UdpNetwork

if TYPE_CHECKING:
    from drone_sim import DroneSimulator


class DroneRuntime:
    def __init__(
        self,
        settings: DroneSettings | None = None,
        *,
        clock: Clock | None = None,
        network: DatagramNetwork | None = None,
        sim_video_in_thread: bool = True,
    ) -> None:
        """`clock` and `network` default to (scaled) real time and UDP. Tests on virtual time pass
        a `LoopClock` and a `MemoryNetwork`, and `sim_video_in_thread=False` so the embedded
        simulator renders video on the event loop (virtual time would run on while a worker
        thread renders)."""
        self.settings = settings or DroneSettings()
        self.clock: Clock = clock or ScaledClock(self.settings.time_scale)
        self.network: DatagramNetwork = network or UdpNetwork()
        self._sim_video_in_thread = sim_video_in_thread
        self.sim: DroneSimulator | None = None
        self._running: contextlib.AbstractAsyncContextManager[None] | None = None
        self._link: DroneLink | None = None
        self._pilot: Pilot | None = None
        self._photos: PhotoService | None = None
        self.hold = FlightHold()
        """The operator's hold: one per runtime, so it survives link reconnects."""
        self.callers = Callers()
        """Who called the drone's tools (for the deck's "who flies"); survives reconnects too."""
        self.recorder: FlightRecorder | None = None
        self._log = structlog.get_logger("drone.runtime")

    @property
    def link(self) -> DroneLink:
        if self._link is None:
            raise RuntimeError("drone runtime not started")
        return self._link

    @property
    def pilot(self) -> Pilot:
        if self._pilot is None:
            raise RuntimeError("drone runtime not started")
        return self._pilot

    @property
    def photos(self) -> PhotoService:
        if self._photos is None:
            raise RuntimeError("drone runtime not started")
        return self._photos

    def ready(self) -> bool:
        """For /readyz: the runtime is up, so the drone's endpoints serve MCP. Not whether the
        drone answers: a readiness probe failing on that would take the pod out of its Service
        exactly when an agent needs `get_state` to learn the link is down (`/drone-status`)."""
        return self._link is not None

    def connected(self) -> bool:
        """The drone answers and its state stream is live."""
        return self._link is not None and self._link.status() is LinkStatus.CONNECTED

    async def land_for_shutdown(self) -> None:
        """The first step of a shutdown, taken while the HTTP server still answers the calls in
        flight: interrupt a flight action in progress (`stop`, on the priority path) and land.
        The caller of an interrupted move gets its result (interrupted) rather than a connection
        cut halfway. Bounded by the link's `land_on_exit_s`; the link's own exit lands again if
        anything took off meanwhile. A drone on the ground is left alone (nothing is sent)."""
        link = self._link
        if link is None:
            return
        link.begin_shutdown()  # a script still running must not take off again
        if not link.is_flying():
            return
        self._log.warning("landing_before_shutdown")
        metrics.count_auto_land(link.drone_address, "shutdown")
        with self.clock.move_on_after(link.config.land_on_exit_s):
            for verb in ("stop", "land"):
                try:
                    await link.request(commands.simple(verb))
                except DroneError as exc:
                    self._log.error("shutdown_command_failed", command=verb, error=str(exc))
        self._log.info("landed_before_shutdown", flying=link.is_flying())

    async def __aenter__(self) -> Self:
        self._running = self._run()
        await self._running.__aenter__()
        self._log.info("drone_runtime_started", drone=self.link.drone_address, sim=self.settings.sim)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        running, self._running = self._running, None
        assert running is not None, "drone runtime not started"
        await running.__aexit__(exc_type, exc, tb)

    @contextlib.asynccontextmanager
    async def _run(self) -> AsyncGenerator[None]:
        # Plain nested `async with`, not an AsyncExitStack: with a cancellation in flight the
        # stack ties the exception's context into a cycle that contextlib then walks forever.
        s = self.settings
        async with anyio.create_task_group() as receiving:
            local = "127.0.0.1" if s.sim else s.bind_host
            receiver = VideoReceiver(
                self.clock, host=local, port=0 if s.sim else s.video_port, network=self.network
            )
            video_port: int = await receiving.start(receiver.run)
            try:
                async with self._simulator(video_port) as sim:
                    if sim is not None:
                        host, port = sim.address
                        config = dataclasses.replace(
                            s.link(drone_host=host, drone_port=port),
                            bind_host="127.0.0.1",
                            state_host="127.0.0.1",
                            state_port=0,
                        )
                    else:
                        config = s.link()
                    # Closed in reverse: the watchers stop, then the link lands the drone (the
                    # simulator is still up and answering), then the simulator goes.
                    async with DroneLink(config, self.clock, network=self.network) as link:
                        if sim is not None:
                            sim.state_port = link.state_port
                        # Video only from the drone. The simulator sends it from its command
                        # socket, so there the port is known too; a Tello's source port is not.
                        exact = sim is not None
                        receiver.accept_only(lambda: (link.target[0], link.target[1] if exact else None))
                        self.sim, self._link = sim, link
                        metrics.register_link(link)
                        metrics.register_video(link.drone_address, receiver)
                        metrics.set_hold(link.drone_address, self.hold.state is not None)
                        self._pilot = Pilot(link, s.envelope, self.hold)
                        self._photos = PhotoService(link, receiver, idle_off_s=s.photo_idle_off_s)
                        async with anyio.create_task_group() as watchers:
                            watchers.start_soon(self._pilot.watch_battery)
                            watchers.start_soon(self._photos.run_idle_off)
                            if s.flight_recording_dir:
                                watchers.start_soon(self._record_flights)
                            try:
                                yield
                            finally:
                                metrics.forget_link(link)
                                watchers.cancel_scope.cancel()
            finally:
                receiving.cancel_scope.cancel()
                self.sim = self._link = self._pilot = self._photos = None

    async def _record_flights(self) -> None:
        s = self.settings
        recorder = FlightRecorder(
            self.link,
            self.pilot,
            Path(s.flight_recording_dir),
            max_bytes=int(s.flight_recording_max_mb * 1_000_000),
            max_age_s=s.flight_recording_max_age_days * 86400,
        )
        self.photos.listeners.append(recorder.on_photo)
        self.recorder = recorder
        await recorder.run()

    @contextlib.asynccontextmanager
    async def _simulator(self, video_port: int) -> AsyncGenerator[DroneSimulator | None]:
        if not self.settings.sim:
            yield None
            return
        from drone_sim import DroneSimulator, SimConfig
        from drone_sim.video import VideoStreamer

        video = functools.partial(VideoStreamer, offload=self._sim_video_in_thread)
        sim = DroneSimulator(
            SimConfig(host="127.0.0.1", port=0, state_port=self.settings.state_port, video_port=video_port),
            clock=self.clock,
            network=self.network,
            video=video,
        )
        async with sim:
            try:
                yield sim
            finally:
                # The simulator's own account of the end (its ground truth, not the link's view):
                # what an operator, or a test of shutdown, reads to know the drone came down.
                truth = sim.truth
                flight = [r for r in truth.executed if r.is_flight_action or r.text == "stop"]
                self._log.info(
                    "sim_ground_truth",
                    flight_state=truth.flight_state.name.lower(),
                    flying=truth.flying,
                    last_commands=[f"{r.text}: {r.outcome.name.lower()}" for r in flight[-5:]],
                )
