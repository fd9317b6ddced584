"""`build_drone_server`: the drone's MCP server (Standard mode: every drone tool), by factory.

Nothing here opens a socket: the server flies whatever `DroneRuntime` it is given, so the
same runtime (one link, one drone) can back several servers and tool modes in one process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from mcp.server.mcpserver import MCPServer

from servers.deck.app_resource import deck_app, hide_app_only_tools, opens_the_deck
from servers.deck.hub import Deck
from servers.drone.core.protocol import LinkStatus
from servers.drone.runtime import DroneRuntime
from servers.drone.tools import register_tools
from servers.resource_updates import ResourceUpdates
from servers.sdk import prompt_errors_as_invalid_params
from servers.skills import SKILLS_DIR, load_skill, register_skill
from servers.validation import ReadableArgumentsServer
from servers.version import package_version

STATE_URI = "drone://state"
FLIGHT_LOG_URI = "drone://flight-log"

INSTRUCTIONS = """\
Flies one DJI Tello / RoboMaster TT drone. Start with get_state: check freshness.link is
"connected" before any flight action. Moves are never retried by the server; on "outcome
unknown" call get_state before acting again. emergency kills the motors (the drone falls):
use stop and land instead unless someone is in danger. The drone-operations prompts
(preflight_check, hover_test, square_pattern, emergency_procedure, photo_survey) walk
through common tasks.
"""

# A state change worth telling subscribers about (the stream itself runs at ~10 Hz).
MATERIAL_HEIGHT_CM = 5
MATERIAL_YAW_DEG = 3


class DroneMCPServer(ReadableArgumentsServer):
    refused = "nothing was sent"


def build_drone_server(
    runtime: DroneRuntime, *, name: str = "drone", deck: Deck | None = None
) -> tuple[MCPServer[Any], ResourceUpdates]:
    """The drone MCP server and its resource notifier (run `watch_state` to drive it).

    `get_state` opens the flight deck as an MCP App (`servers.deck.app_resource`), fed from
    `deck`: the process's running deck, so the app and the web page share one history."""
    updates = ResourceUpdates()
    server = DroneMCPServer(
        name=name,
        title="Tello / RoboMaster TT drone",
        instructions=INSTRUCTIONS,
        version=package_version(),
        subscriptions=updates.bus,
        extensions=[deck_app(deck or Deck(runtime))],
        middleware=[hide_app_only_tools],
    )
    register_tools(server, runtime, tool_meta={"get_state": opens_the_deck()})
    updates.attach(server)

    @server.resource(
        STATE_URI,
        name="drone-state",
        description="The drone's current state with link freshness (subscribe for material changes)",
        mime_type="application/json",
    )
    # Resource functions are `async` on purpose: the SDK runs plain functions in a worker
    # thread, and the link (like the rest of the runtime) lives on the event loop only.
    async def state() -> str:  # pyright: ignore[reportUnusedFunction]
        return runtime.pilot.state().model_dump_json()

    @server.resource(
        FLIGHT_LOG_URI,
        name="flight-log",
        description=(
            "Every command sent to the drone: time, command, outcome, reply, latency, who asked (newest last)"
        ),
        mime_type="application/json",
    )
    async def flight_log() -> str:  # pyright: ignore[reportUnusedFunction]
        entries = [
            {
                "at_s": round(e.at, 3),
                "at": e.wall_iso,
                "command": e.command,
                "outcome": e.outcome,
                "reply": e.reply,
                "latency_ms": round(e.latency_s * 1000, 2),
                "attempts": e.attempts,
                "client": e.client,
                "path": e.path,
                "tool": e.tool,
                **({"verdict": e.verdict, "evidence": e.evidence} if e.verdict is not None else {}),
            }
            for e in runtime.link.flight_log
        ]
        return json.dumps(entries)

    register_skill(server, load_skill(SKILLS_DIR / "drone-operations"))
    prompt_errors_as_invalid_params(server)
    return server, updates


@dataclass(frozen=True, slots=True)
class _Signature:
    """The parts of the state whose change is worth a notification."""

    status: LinkStatus
    flying: bool
    height_cm: int
    yaw_deg: int
    battery_pct: int | None
    log_length: int

    @classmethod
    def of(cls, runtime: DroneRuntime) -> _Signature:
        reading = runtime.link.reading()
        t = reading.telemetry
        return cls(
            status=reading.status,
            flying=runtime.link.is_flying(),
            height_cm=0 if t is None else t.height_cm,
            yaw_deg=0 if t is None else t.yaw_deg,
            battery_pct=None if t is None else t.battery_pct,
            log_length=len(runtime.link.flight_log),
        )

    def differs_materially(self, other: _Signature) -> bool:
        return (
            self.status is not other.status
            or self.flying != other.flying
            or abs(self.height_cm - other.height_cm) >= MATERIAL_HEIGHT_CM
            or abs(self.yaw_deg - other.yaw_deg) >= MATERIAL_YAW_DEG
            or self.battery_pct != other.battery_pct
            or self.log_length != other.log_length
        )


async def watch_state(runtime: DroneRuntime, notifiers: Sequence[ResourceUpdates]) -> None:
    """Run forever: publish `drone://state` updates when the state changes materially."""
    log = structlog.get_logger("drone.resources")
    previous: _Signature | None = None
    while True:
        await runtime.link.wait_changed()
        current = _Signature.of(runtime)
        if previous is not None and not current.differs_materially(previous):
            continue
        if previous is not None and current.log_length != previous.log_length:
            for n in notifiers:
                await n.publish(FLIGHT_LOG_URI)
        previous = current
        for n in notifiers:
            await n.publish(STATE_URI)
        log.debug("state_published")
