"""`drone-sim` / `python -m drone_sim`: run one simulated drone until SIGINT or SIGTERM.

Stdout carries exactly one line, saying where the drone listens, so a script can start the
simulator and read its address; logs go to stderr. `--ground-truth PATH` hands what really
happened to a process that cannot read `GroundTruth` directly: at exit it writes one JSON
object a line (every command the drone executed, every event, every loss burst).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import structlog

from drone_sim.config import DroneConfig
from drone_sim.faults import Faults, parse_delay
from drone_sim.server import DroneSimulator, SimConfig
from tello_io.clock import ScaledClock


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _percent(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"expected a percentage in [0, 100], got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a UDP port, got {text}")
    return value


def _delay(text: str) -> tuple[float, float]:
    try:
        return parse_delay(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _burst(text: str) -> tuple[float, float]:
    seconds, sep, every = text.partition(":")
    try:
        burst = (float(seconds), float(every))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected S:EVERY in seconds, got {text!r}") from None
    if not sep or not 0 < burst[0] < burst[1]:
        raise argparse.ArgumentTypeError(f"expected S:EVERY with 0 < S < EVERY, got {text!r}")
    return burst


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drone-sim",
        description="A UDP DJI Tello / RoboMaster TT simulator. Times are simulated seconds.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument(
        "--port", type=_port, default=8889, help="command port; 0 = ephemeral (default %(default)s)"
    )
    parser.add_argument(
        "--state-port", type=_port, default=8890, help="state packets go here (default %(default)s)"
    )
    parser.add_argument(
        "--video-port", type=_port, default=11111, help="video goes here (default %(default)s)"
    )
    parser.add_argument("--speedup", type=_positive, default=1.0, help="simulated seconds per real second")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault RNG")
    parser.add_argument(
        "--battery", type=_percent, default=100.0, help="initial battery %% (default %(default)s)"
    )
    parser.add_argument("--serial", default=DroneConfig().serial, help="answer to sn? (default %(default)s)")
    parser.add_argument("--no-video", action="store_true", help="ignore streamon (no H.264 stream)")
    parser.add_argument(
        "--no-mission-pad", action="store_true", help="omit mid;x;y;z;mpry from state packets"
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument("--loss", type=_probability, default=0.0, help="drop probability per command/reply")
    faults.add_argument(
        "--delay", type=_delay, default=(0.0, 0.0), metavar="S[:J]", help="reply delay S +- J s"
    )
    faults.add_argument("--dup", type=_probability, default=0.0, help="probability a reply is sent twice")
    faults.add_argument(
        "--emergency-silence",
        type=_probability,
        default=0.5,
        help="probability emergency is not answered (default %(default)s)",
    )
    faults.add_argument(
        "--reboot-after", type=_non_negative, default=None, metavar="S", help="reboot once after S s"
    )
    faults.add_argument("--state-dropout", action="store_true", help="send no state packets")
    faults.add_argument(
        "--burst",
        type=_burst,
        default=None,
        metavar="S:EVERY",
        help="total loss (commands, replies, state) for S s at the end of every EVERY s",
    )
    parser.add_argument(
        "--ground-truth", type=Path, default=None, metavar="PATH", help="write what happened here at exit"
    )
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default %(default)s)")
    return parser


def simulator_from_args(args: argparse.Namespace) -> DroneSimulator:
    delay, jitter = args.delay
    config = SimConfig(
        host=args.host,
        port=args.port,
        state_port=args.state_port,
        video_port=args.video_port,
        drone=DroneConfig(
            initial_battery_pct=args.battery,
            serial=args.serial,
            mission_pad_fields=not args.no_mission_pad,
        ),
    )
    faults = Faults(
        loss=args.loss,
        delay_s=delay,
        jitter_s=jitter,
        dup=args.dup,
        emergency_silence=args.emergency_silence,
        reboot_after_s=args.reboot_after,
        state_dropout=args.state_dropout,
        seed=args.seed,
    )
    return DroneSimulator(
        config, clock=ScaledClock(args.speedup), faults=faults, video=None if args.no_video else "auto"
    )


async def bursts(sim: DroneSimulator, seconds: float, every: float, log: list[tuple[float, float]]) -> None:
    """Forever: `every - seconds` s of the configured faults, then `seconds` s in which nothing
    gets through either way (a WiFi drop-out). Each burst goes into `log` as (start, end)."""
    while True:
        await sim.clock.sleep(every - seconds)
        loss, dropout = sim.faults.loss, sim.faults.state_dropout
        start = sim.clock.now()
        sim.faults.loss, sim.faults.state_dropout = 1.0, True
        try:
            await sim.clock.sleep(seconds)
        finally:
            sim.faults.loss, sim.faults.state_dropout = loss, dropout
            log.append((start, sim.clock.now()))


def ground_truth_lines(sim: DroneSimulator, burst_log: Sequence[tuple[float, float]] = ()) -> list[str]:
    """What happened, one JSON object a line: executed commands, events, loss bursts."""
    records: list[dict[str, Any]] = [
        {
            "kind": "executed",
            "seq": r.seq,
            "t": r.t,
            "text": r.text,
            "flight_action": r.is_flight_action,
            "outcome": r.outcome.value,
            "reply": r.reply,
            "finished_t": r.finished_t,
        }
        for r in sim.truth.executed
    ]
    records += [
        {"kind": "event", "t": e.t, "event": e.kind.value, "detail": e.detail} for e in sim.truth.events
    ]
    records += [{"kind": "burst", "t": start, "until": end} for start, end in burst_log]
    return [json.dumps(record) for record in records]


async def serve(
    sim: DroneSimulator, *, ground_truth: Path | None = None, burst: tuple[float, float] | None = None
) -> None:
    """Run `sim` until SIGINT/SIGTERM, announcing the address on stdout once it is bound; then
    write the ground truth to `ground_truth`, if given."""
    burst_log: list[tuple[float, float]] = []
    # The handlers go in before the announcement: a supervisor may signal as soon as it reads it.
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with sim, anyio.create_task_group() as tg:
                if burst is not None:
                    tg.start_soon(bursts, sim, *burst, burst_log)
                host, port = sim.address
                speedup = getattr(sim.clock, "speedup", 1.0)
                where = f"udp://{host}:{port} (state -> :{sim.state_port}, speedup {speedup:g})"
                print(f"drone_sim listening on {where}", flush=True)
                async for signum in signals:
                    structlog.get_logger("drone_sim").info("sim_stopping", signal=signal.Signals(signum).name)
                    break
                tg.cancel_scope.cancel()
    finally:
        if ground_truth is not None:
            text = "".join(f"{line}\n" for line in ground_truth_lines(sim, burst_log))
            with anyio.CancelScope(shield=True):
                await anyio.Path(ground_truth).write_text(text, encoding="utf-8")


def configure_logging(level: str) -> None:
    """structlog key-value lines on stderr (stdout carries only the listening announcement).

    The simulator is a program of its own: it configures structlog itself rather than through
    `servers.logs` (embedded in a server, it logs through that server's configuration)."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    configure_logging(str(args.log_level))
    anyio.run(
        functools.partial(serve, simulator_from_args(args), ground_truth=args.ground_truth, burst=args.burst)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
