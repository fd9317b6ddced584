"""`tello-mcp`: serve the suite's MCP servers (`serve [NAME ...]`), run the simulator (`sim`), or
summarize flight recordings (`flights [DIR|FILE]`).

`tello-mcp serve` runs every server in one process (the drone, with `--sim` on the embedded
simulator); `tello-mcp serve drone` runs one, as a Kubernetes Deployment does. Every flag has a
`TELLO_MCP_*` environment variable, shown in `--help`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib.util
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import structlog
from starlette.applications import Starlette

from servers.auth.tokens import verifier_for
from servers.config import SERVE, ServeSettings, SettingsGroup, settings_table
from servers.drain import drain_of
from servers.drone.config import DRONE
from servers.http import ANY, ListenError, serve
from servers.logs import configure_logging
from servers.metrics import METRICS_PATH, metrics_app
from servers.registry import SERVERS
from servers.suite import Component, ServerEntry, build_suite_app, endpoints, nested, opened, other_routes
from servers.tracing import export_settings, exporting
from servers.version import package_version
from servers.workers import ServedBy, follow_parent, refusal, run_workers, worker_of

_HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None
"""uvloop where it is installed (a dependency on Linux and macOS): the faster event loop,
through anyio's backend options since uvicorn runs inside `anyio.run`."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tello-mcp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    names = ", ".join(SERVERS)
    serve_parser = sub.add_parser(
        "serve",
        help=f"serve MCP servers over streamable HTTP or stdio ({names}; default all)",
        description=(
            f"Serve the named servers ({names}) in one process, or all of them if none is named. "
            "Every flag can also be set with the TELLO_MCP_* variable shown in its help."
        ),
    )
    _add_serve_arguments(serve_parser, "which servers to run")
    sub.add_parser("sim", help="run the UDP drone simulator (see 'tello-mcp sim --help')", add_help=False)
    settings = sub.add_parser(
        "settings",
        help="show the settings `serve` would use (value, and whether from a flag, variable or default)",
        description=(
            "Show every setting `tello-mcp serve` would use with these flags and this environment: "
            "its value and where it came from (flag, TELLO_MCP_* variable, or default). Takes the "
            "same arguments as `serve`. --markdown prints the reference table instead (variable, "
            "flag, default, meaning), as in the README."
        ),
    )
    settings.add_argument(
        "--markdown", action="store_true", help="the reference table of every setting, as Markdown"
    )
    _add_serve_arguments(settings, "whose settings to show")
    doctor = sub.add_parser(
        "doctor",
        help="check a real drone step by step (address, ports, command, state, SDK, battery, video)",
        description=(
            "Check the drone at --drone-host step by step and say what to fix: its address and the "
            "route to it, the local UDP ports, the 'command' answer, state packets, SDK version, "
            "battery and video. Sends only command, sdk?, battery?, streamon and streamoff: "
            "nothing flies. Exit status 1 if a step failed."
        ),
    )
    DRONE.add_arguments(doctor)
    flights = sub.add_parser(
        "flights",
        help="summarize flight recordings (duration, distance, max height, battery, commands, ...)",
        description=(
            "Print a summary of each flight recording in DIR (oldest first), or of one recording "
            "given as a file: duration, distance flown (dead-reckoned), max height, battery used, "
            "flight-log entries, refusals and telemetry verdicts."
        ),
    )
    flights.add_argument(
        "path",
        nargs="?",
        metavar="DIR|FILE",
        help=f"a recording directory or one .mcap file (default: ${FLIGHTS_ENV}, else {FLIGHTS_DEFAULT})",
    )
    flights.add_argument("--json", action="store_true", help="one JSON object per recording, one per line")
    return parser


def _add_serve_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    names = ", ".join(SERVERS)
    parser.add_argument("servers", nargs="*", metavar="SERVER", help=f"{what}: {names} (default: all)")
    SERVE.add_arguments(parser)
    for entry in SERVERS.values():
        entry.settings.add_arguments(parser)


SECRET_SETTINGS = frozenset({"auth_token", "request_state_keys"})
"""Shown as set or not, never by value."""


def settings_in_effect(
    args: argparse.Namespace, environ: Mapping[str, str], groups: Sequence[SettingsGroup[Any]]
) -> str:
    """`tello-mcp settings`: each setting's value in effect and where it came from. Bad values
    raise ValueError naming the flag or variable, as `serve` would."""
    rows = [("setting", "value", "from")]
    for group in groups:
        for s in group.settings:
            flag_value = getattr(args, s.name, None)
            if flag_value is not None:
                value = (
                    flag_value if isinstance(flag_value, bool) else s.parse(str(flag_value), source=s.flag)
                )
                source = f"flag {s.flag}"
            elif s.env in environ:
                value, source = s.parse(environ[s.env], source=s.env), f"variable {s.env}"
            else:
                value, source = s.default, "default"
            shown = dataclasses.replace(s, default=value).shown_default
            if s.name in SECRET_SETTINGS and shown:
                shown = "(set, not shown)"
            rows.append((f"{s.env} {s.flag}", shown or "(empty)", source))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "".join(f"{a.ljust(widths[0])}  {b.ljust(widths[1])}  {c}\n" for a, b, c in rows)


FLIGHTS_ENV = "TELLO_MCP_FLIGHT_RECORDING_DIR"
FLIGHTS_DEFAULT = ".cache/flights"
"""Where `make run` records."""


def _flights(parser: argparse.ArgumentParser, path: str | None, as_json: bool) -> int:
    """`tello-mcp flights [DIR|FILE]`: see its help."""
    import json
    import os
    from pathlib import Path

    from servers.drone.recorder import MAGIC, FlightSummary, is_recording_name, summarize

    where = Path(path or os.environ.get(FLIGHTS_ENV) or FLIGHTS_DEFAULT)
    if where.is_dir():
        files = sorted(p for p in where.iterdir() if is_recording_name(p.name))
        if not files:
            print(f"no flight recordings in {where}")
            return 0
    elif where.is_file():
        with where.open("rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                parser.error(f"{where} is not an MCAP file")
        files = [where]
    else:
        parser.error(f"no such directory or file: {where} (the --flight-recording-dir of `serve`)")
    summaries: list[FlightSummary] = []
    for p in files:
        try:
            summaries.append(summarize(p))
        except (KeyError, TypeError, ValueError) as exc:  # an MCAP file of another recorder
            print(f"{p}: not a tello-mcp flight recording (no {exc})", file=sys.stderr)
    if not summaries:
        return 1
    if as_json:
        for s in summaries:
            print(json.dumps(dataclasses.asdict(s)))
        return 0
    header = (
        "recording",
        "duration",
        "distance",
        "max height",
        "battery used",
        "commands",
        "refusals",
        "verdicts",
    )
    rows = [header] + [
        (
            s.name,
            f"{s.duration_s:.1f} s",
            f"{s.distance_m:.2f} m",
            f"{s.max_height_cm} cm",
            f"{s.battery_used_pct} %",
            str(s.commands),
            str(s.refusals),
            str(s.verdicts),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`tello-mcp settings`: see its help."""
    import os

    every = [SERVE, *(entry.settings for entry in SERVERS.values())]
    if args.markdown:
        print(settings_table(every), end="")
        return 0
    unknown = [n for n in args.servers if n not in SERVERS]
    if unknown:
        parser.error(f"unknown server {', '.join(unknown)}: choose from {', '.join(SERVERS)}")
    named = list(dict.fromkeys(args.servers)) or [n for n, e in SERVERS.items() if e.in_all]
    try:
        print(settings_in_effect(args, os.environ, [SERVE, *(SERVERS[n].settings for n in named)]), end="")
    except ValueError as exc:
        parser.error(str(exc))
    return 0


def _doctor(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`tello-mcp doctor`: see its help."""
    from servers.doctor import DoctorConfig, run_doctor

    try:
        drone = DRONE.resolve(args)
    except ValueError as exc:
        parser.error(str(exc))
    return run_doctor(
        DoctorConfig(
            drone_host=drone.drone_host,
            drone_port=drone.drone_port,
            bind_host=drone.bind_host,
            state_port=drone.state_port,
            video_port=drone.video_port,
            min_takeoff_battery=drone.min_takeoff_battery,
        )
    )


@dataclass(frozen=True, slots=True)
class ServePlan:
    """What `tello-mcp serve ...` will run: the servers by name, with their resolved settings."""

    common: ServeSettings
    servers: dict[str, Any]


def plan(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> ServePlan:
    """Resolve `serve` arguments (without the word `serve`) and the environment, as `main` does.
    Bad input exits with status 2 and a message naming the flag, like any argparse error."""
    parser = _parser()
    own, command = _split_command(list(argv))
    args = parser.parse_args(["serve", *own])
    args.upstream_command = command
    return _plan(parser, args, environ)


def _split_command(argv: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """`serve proxy ... -- COMMAND ARGS`: our arguments, and the upstream command after `--`."""
    if "--" not in argv:
        return argv, ()
    at = argv.index("--")
    return argv[:at], tuple(argv[at + 1 :])


def _plan(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str] | None
) -> ServePlan:
    command: tuple[str, ...] = getattr(args, "upstream_command", ())
    if command and list(args.servers) != ["proxy"]:
        parser.error("a command after -- is the upstream of `tello-mcp serve proxy` only")
    names: list[str] = list(dict.fromkeys(args.servers)) or [n for n, e in SERVERS.items() if e.in_all]
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        parser.error(f"unknown server {', '.join(unknown)}: choose from {', '.join(SERVERS)}")
    try:
        common = SERVE.resolve(args, environ)
        chosen = {n: SERVERS[n].settings.resolve(args, environ) for n in names}
        if "proxy" in chosen:
            chosen["proxy"] = dataclasses.replace(chosen["proxy"], command=command)
            chosen["proxy"].target()  # exactly one upstream
    except ValueError as exc:
        parser.error(str(exc))
    if common.transport == "stdio" and len(names) != 1:
        parser.error(f"--transport stdio serves one server: name it ({', '.join(SERVERS)})")
    return ServePlan(common, chosen)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    own, command = _split_command(sys.argv[1:] if argv is None else list(argv))
    args, rest = parser.parse_known_args(own)
    args.upstream_command = command
    if args.command == "sim":
        from drone_sim.__main__ import main as sim_main

        return sim_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "settings":
        return _settings(parser, args)
    if args.command == "flights":
        return _flights(parser, args.path, args.json)
    if args.command == "doctor":
        return _doctor(parser, args)
    chosen = _plan(parser, args, None)
    refused = refusal(chosen.common, list(chosen.servers))
    if refused is not None:
        parser.error(refused)
    try:
        # Here, not in the plan (whose settings are parsed one by one in tests): contradicting
        # auth settings, or a missing key or token file, end in one line, not a traceback.
        verifier_for(chosen.common.access())
    except (ValueError, OSError) as exc:
        parser.error(f"access control: {exc}")
    try:
        traces = export_settings(os.environ)
    except ValueError as exc:
        parser.error(f"traces: {exc}")
    configure_logging(chosen.common.log_format, chosen.common.log_level)
    entries = [(SERVERS[name], settings) for name, settings in chosen.servers.items()]
    status = 0
    try:
        if chosen.common.workers > 1 and worker_of() is None:
            status = run_workers(own, chosen.common, chosen.servers)
        else:
            with exporting(traces), contextlib.suppress(KeyboardInterrupt):
                anyio.run(_main, chosen.common, entries, backend_options={"use_uvloop": _HAVE_UVLOOP})
    except* ListenError as failed:
        # One line naming the address and the settings that move it, not a traceback.
        print(f"tello-mcp: {failed.exceptions[0]}", file=sys.stderr)
        status = 1
    return status


async def _main(common: ServeSettings, entries: list[tuple[ServerEntry[Any], Any]]) -> None:
    async with opened(entries) as components:
        if common.transport == "stdio":
            await _serve_stdio(components[0])
        else:
            await _serve_http(common, components)


async def _serve_http(common: ServeSettings, components: list[Component]) -> None:
    http = common.http()
    worker = worker_of()
    if worker is not None:
        # A handshake-era client's requests may arrive on several connections (the SDK's opens a
        # GET stream, then POSTs on another), which the kernel may hand to different workers:
        # sessions cannot live in one process, so the handshake era runs sessionless.
        http = dataclasses.replace(http, stateless=True)
    app = build_suite_app(components, http)
    if worker is not None:
        follow_parent()
        app.add_middleware(ServedBy)
    log = structlog.get_logger("tello_mcp")
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            port: int = await tg.start(serve, app, http)
            metrics_port = 0
            if common.metrics_port:
                # Its own listener, so the main port's Host allow-list stays as strict as it is.
                probes = getattr(app.state, "probe_routes", ())
                listener = dataclasses.replace(
                    http, port=common.metrics_port, allowed_hosts=(ANY,), allowed_origins=()
                )
                metrics_port = await tg.start(serve, metrics_app(probes), listener)
            # Everything start-up allocated is long-lived: keep it out of the collector's full
            # passes, which took ~130 ms each at 64 clients and most of the p99 (benchmarks).
            gc.collect()
            gc.freeze()
            shown = "127.0.0.1" if http.host in ("0.0.0.0", "") else http.host
            base = f"http://{shown}:{port}"
            scrape = f", metrics http://{shown}:{metrics_port}{METRICS_PATH}" if metrics_port else ""
            served, others = endpoints(components, base), other_routes(components, base)
            access = http.access.mode
            lines = [
                f"tello-mcp {package_version()}: {_count(len(served), 'MCP endpoint')}"
                + (f" and {_count(len(others), 'more route')}" if others else "")
                + ("; access control off" if access == "off" else f"; access control on ({access} tokens)")
                + f" (probes {base}/healthz {base}/readyz{scrape})"
                + ("" if worker is None else f", {worker[1]} worker processes"),
                *(f"  {line}" for line in [*served, *others]),
            ]
            if worker is None or worker[0] == 0:  # the banner once, from the first worker
                print("\n".join(lines))
                sys.stdout.flush()
            async for signum in signals:
                log.info("shutdown_signal", signal=signal.Signals(signum).name)
                break
            await _drain(app, http.shutdown_timeout, signals)
            tg.cancel_scope.cancel()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


ABORT_S = 1.0
"""Seconds the calls ended at the drain's deadline get to send their error."""


async def _drain(app: Starlette, within_s: float, signals: AsyncIterator[int]) -> None:
    """Shutdown before the listener closes (see `servers.drain.Drain`): /readyz 503, new calls
    refused, the drone landed, then up to `within_s` seconds for the calls in flight to end; a
    second signal cuts that short. Calls still running then are ended with an error (`abort`).
    Uvicorn's own graceful stop (open connections get another `shutdown_timeout`) and the
    lifespans' exits (the link lands again if need be) follow."""
    drain = drain_of(app)
    drain.begin()
    log = structlog.get_logger("tello_mcp")
    started = anyio.current_time()
    aborted = 0  # calls still running at the deadline, ended with an error
    async with anyio.create_task_group() as tg:

        async def second_signal() -> None:
            async for signum in signals:
                log.warning("shutdown_hurried", signal=signal.Signals(signum).name)
                tg.cancel_scope.cancel()

        tg.start_soon(second_signal)
        with anyio.move_on_after(within_s):
            await drain.run_hooks()
            await drain.idle()
        tg.cancel_scope.cancel()
    if drain.in_flight:
        aborted = drain.abort()
        with anyio.move_on_after(ABORT_S):
            await drain.idle(quiet_s=0)
    drain.close_streams()
    log.info(
        "shutdown_drained",
        seconds=round(anyio.current_time() - started, 3),
        aborted=aborted,
        still_in_flight=drain.in_flight,
        refused=drain.refused,
    )


async def _serve_stdio(component: Component) -> None:
    """MCP over stdin/stdout for local clients: stdout carries only protocol messages."""
    # A print() left in a block buffer would reach the real stdout when the SDK restores it.
    reconfigure: Callable[..., object] | None = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)
    async with nested([component.lifespan] if component.lifespan is not None else []):
        await component.stdio.run_stdio_async()


if __name__ == "__main__":
    raise SystemExit(main())
