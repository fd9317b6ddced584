"""A UDP DJI Tello / RoboMaster TT simulator faithful enough to develop the whole suite against.

Layers, one module each: `commands` (the SDK parser), `flight` (state machine), `motion` and
`power` (physics), `drone` (the sans-IO drone: datagrams and time in, replies out), `faults`
(seeded link faults), `truth` (ground truth for tests), `server` (the anyio UDP transport) and
`__main__` (the `drone-sim` CLI). `video` and `pose` provide the camera.
"""

import logging as _logging
import sys as _sys

import structlog as _structlog

from drone_sim.commands import Command, ParseError, parse
from drone_sim.config import DroneConfig
from drone_sim.drone import Drone, Handled, Output, Reply, StartVideo, StopVideo
from drone_sim.faults import Faults
from drone_sim.flight import FlightState, Trigger
from drone_sim.pose import Pose
from drone_sim.records import (
    DroppedReply,
    EventKind,
    ExecutedCommand,
    Outcome,
    ReceivedDatagram,
    SentReply,
    SimEvent,
    Transition,
)
from drone_sim.server import DroneSimulator, SimConfig, VideoFactory, VideoStream
from drone_sim.truth import GroundTruth

__all__ = [
    "Command",
    "Drone",
    "DroneConfig",
    "DroneSimulator",
    "DroppedReply",
    "EventKind",
    "ExecutedCommand",
    "Faults",
    "FlightState",
    "GroundTruth",
    "Handled",
    "Outcome",
    "Output",
    "ParseError",
    "Pose",
    "ReceivedDatagram",
    "Reply",
    "SentReply",
    "SimConfig",
    "SimEvent",
    "StartVideo",
    "StopVideo",
    "Transition",
    "Trigger",
    "VideoFactory",
    "VideoStream",
    "parse",
]

if not _structlog.is_configured():
    # structlog's own default prints every event, debug included, to stdout: until a program
    # configures logging (`drone-sim` does, and so does a server embedding the simulator),
    # INFO and above go to stderr.
    _structlog.configure(
        wrapper_class=_structlog.make_filtering_bound_logger(_logging.INFO),
        logger_factory=_structlog.PrintLoggerFactory(_sys.stderr),
    )
