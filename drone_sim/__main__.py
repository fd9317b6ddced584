"""`drone-sim` / `python -m drone_sim`: run one simulated drone until SIGINT or SIGTERM.

Stdout carries exactly one line, saying where the drone listens, so a script can start the
simulator and read its address; logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

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


async def serve(sim: DroneSimulator) -> None:
    """Run `sim` until SIGINT/SIGTERM, announcing the address on stdout once it is bound."""
    # The handlers go in before the announcement: a supervisor may signal as soon as it reads it.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with sim:
            host, port = sim.address
            speedup = getattr(sim.clock, "speedup", 1.0)
            where = f"udp://{host}:{port} (state -> :{sim.state_port}, speedup {speedup:g})"
            print(f"drone_sim listening on {where}", flush=True)
            async for signum in signals:
                structlog.get_logger("drone_sim").info("sim_stopping", signal=signal.Signals(signum).name)
                break


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
    anyio.run(serve, simulator_from_args(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
