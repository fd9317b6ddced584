"""`tello-mcp`: serve the drone over MCP (`serve`) or run the simulator alone (`sim`)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence

import anyio
import structlog

from servers.drone import config
from servers.drone.app import build_drone_app, running
from servers.drone.config import DroneSettings
from servers.drone.runtime import DroneRuntime
from servers.drone.server import build_drone_server
from servers.http import serve
from servers.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tello-mcp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser(
        "serve",
        help="serve the drone tools over MCP (streamable HTTP or stdio)",
        description="Every flag can also be set with the TELLO_MCP_* variable shown in its help.",
    )
    config.add_arguments(serve_parser)
    sub.add_parser("sim", help="run the UDP drone simulator (see 'tello-mcp sim --help')", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = _parser().parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if args.command == "sim":
        from drone_sim.__main__ import main as sim_main

        return sim_main(rest)
    if rest:
        _parser().error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        settings = config.from_sources(args)
    except ValueError as exc:
        _parser().error(str(exc))
    configure_logging(settings.log_format, settings.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(_main, settings)
    return 0


async def _main(settings: DroneSettings) -> None:
    if settings.transport == "stdio":
        await _serve_stdio(settings)
    else:
        await _serve_http(settings)


async def _serve_http(settings: DroneSettings) -> None:
    http = settings.http()
    app = build_drone_app(DroneRuntime(settings), http)
    log = structlog.get_logger("tello_mcp")
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            port: int = await tg.start(serve, app, http)
            shown = "127.0.0.1" if http.host in ("0.0.0.0", "") else http.host
            where = "embedded simulator" if settings.sim else f"drone {settings.drone_host}"
            print(f"tello-mcp: MCP endpoint http://{shown}:{port}/drone ({where}); probes /healthz /readyz")
            sys.stdout.flush()
            async for signum in signals:
                log.info("shutdown_signal", signal=signal.Signals(signum).name)
                tg.cancel_scope.cancel()
                break


async def _serve_stdio(settings: DroneSettings) -> None:
    """MCP over stdin/stdout for local clients: stdout carries only protocol messages."""
    runtime = DroneRuntime(settings)
    server, updates = build_drone_server(runtime)
    # A print() left in a block buffer would reach the real stdout when the SDK restores it.
    reconfigure: Callable[..., object] | None = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)
    async with running(runtime, [updates]):
        await server.run_stdio_async()


if __name__ == "__main__":
    raise SystemExit(main())
