"""`battery?` round-trip latency: our DroneLink vs djitellopy vs a bare blocking UDP socket.

All three ask the same real-speed simulator (127.0.0.2:8889 by default) in the same run, one
after the other, with the same pause between requests (longer than the link's 20 ms settle
window, so each request finds the wire free and a caller's single-request latency is what is
measured). djitellopy is paced at 150 ms, above its own 100 ms minimum between commands, so its
figure is its reply polling (every 100 ms), not an artificial queue.

Goals: djitellopy/ours >= 100x (we answer as soon as the datagram lands) and ours/bare <= 3x
(the link adds little over the floor a blocking socket sets). Exit status 1 if one is missed.

So that a pass or a fail means something on a loaded 2-core machine, ours and the bare socket
are measured in several trials, back to back within each trial (their order alternating from
trial to trial), each after its own warm-up and with the garbage collector paused; a goal is
judged on the median of the per-trial ratios, so one trial disturbed by a neighbour's burst of
work cannot decide it. djitellopy is measured once: its figure is its 100 ms reply polling.
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass

import anyio

from benchmarks.rig import SimThread, free_udp_ports, simulator
from drone_sim.djitellopy import shared_ports
from servers.drone.core import commands
from servers.drone.core.protocol import LinkStatus
from servers.drone.link import DroneLink, LinkConfig
from servers.logs import configure_logging

DESCRIPTION = "battery? round-trip latency: DroneLink vs djitellopy vs a bare UDP socket, same simulator."
GOAL_VS_DJITELLOPY = 100.0
GOAL_VS_BARE = 3.0
LOCAL = "127.0.0.1"


@dataclass(frozen=True)
class Sample:
    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    state_port: int
    ours: int
    """Measured requests through DroneLink, per trial."""
    bare: int
    """Measured requests on the bare socket, per trial."""
    djitellopy: int
    warmup: int
    """Unmeasured requests before each trial's measured ones."""
    gap_s: float
    djitellopy_gap_s: float
    trials: int = 5


@dataclass(frozen=True)
class Trial:
    ours: Sample
    bare: Sample


@contextmanager
def gc_paused() -> Iterator[None]:
    """No collector pause inside a measured block (collected before it instead)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# ---- the three clients ------------------------------------------------------------------------


def measure_ours(sim: SimThread, opts: Options) -> Sample:
    """Through `DroneLink`, with production logging (JSON at INFO) rendered to a null stream."""

    async def run() -> list[float]:
        host, port = sim.address
        config = LinkConfig(drone_host=host, drone_port=port, bind_host=LOCAL, state_host=LOCAL, state_port=0)
        async with DroneLink(config, sim.clock) as link:
            sim.stream_state_to(link.state_port)
            with anyio.fail_after(5):
                while link.status() is not LinkStatus.CONNECTED:
                    await link.wait_changed()
            battery = commands.query("battery?")
            out: list[float] = []
            for i in range(opts.warmup + opts.ours):
                await anyio.sleep(opts.gap_s)
                start = time.perf_counter()
                reply = await link.request(battery)
                elapsed = time.perf_counter() - start
                assert isinstance(reply.value, int), reply
                if i >= opts.warmup:
                    out.append(elapsed)
            return out

    with redirect_stderr(io.StringIO()):
        configure_logging("json", logging.INFO)
        try:
            seconds = anyio.run(run)
        finally:
            configure_logging("console", logging.WARNING)
    return Sample("ours (DroneLink)", seconds)


def measure_bare(sim: SimThread, opts: Options) -> Sample:
    """The floor: one blocking socket, sendto then recvfrom, nothing else."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOCAL, 0))
        sock.settimeout(1.0)
        sock.sendto(b"command", sim.address)
        assert sock.recvfrom(1024)[0] == b"ok"
        out: list[float] = []
        for i in range(opts.warmup + opts.bare):
            time.sleep(opts.gap_s)
            start = time.perf_counter()
            sock.sendto(b"battery?", sim.address)
            data, _ = sock.recvfrom(1024)
            elapsed = time.perf_counter() - start
            assert data.isdigit(), data
            if i >= opts.warmup:
                out.append(elapsed)
    return Sample("bare UDP socket", out)


def measure_djitellopy(sim: SimThread, opts: Options) -> Sample:
    """djitellopy's `query_battery()` (its `get_battery()` only reads the last state packet)."""
    sim.stream_state_to(opts.state_port)
    with shared_ports(opts.port, opts.state_port) as session:
        session.Tello.LOGGER.setLevel(logging.WARNING)  # it logs every command at INFO on stderr
        tello = session.tello(opts.host)  # ended, and its sockets and threads cleaned up, on exit
        tello.connect()
        out: list[float] = []
        value = -1
        for i in range(1 + opts.djitellopy):
            time.sleep(opts.djitellopy_gap_s)
            start = time.perf_counter()
            value = tello.query_battery()
            elapsed = time.perf_counter() - start
            assert value == sim.battery_pct(), value
            if i >= 1:
                out.append(elapsed)
        assert tello.get_battery() == value
    return Sample("djitellopy", out)


# ---- report -----------------------------------------------------------------------------------


def measure_trials(sim: SimThread, opts: Options) -> list[Trial]:
    """Ours and the bare socket back to back, `opts.trials` times, alternating which goes first."""
    trials: list[Trial] = []
    for i in range(opts.trials):
        if i % 2 == 0:
            with gc_paused():
                ours = measure_ours(sim, opts)
            with gc_paused():
                bare = measure_bare(sim, opts)
        else:
            with gc_paused():
                bare = measure_bare(sim, opts)
            with gc_paused():
                ours = measure_ours(sim, opts)
        trials.append(Trial(ours, bare))
    return trials


def pooled(name: str, samples: Sequence[Sample]) -> Sample:
    return Sample(name, [s for sample in samples for s in sample.seconds])


def report(
    trials: Sequence[Trial], dji: Sample, opts: Options, write: Callable[[str], object] = print
) -> bool:
    ours = pooled("ours (DroneLink)", [t.ours for t in trials])
    bare = pooled("bare UDP socket", [t.bare for t in trials])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    write(f"battery? round trip against drone_sim on {opts.host}:{opts.port} (real time, load avg {load})")
    write(f"{'client':<20}{'n':>5}{'median ms':>12}{'p95 ms':>10}")
    for s in (ours, dji, bare):
        write(f"{s.name:<20}{len(s.seconds):>5}{s.median * 1e3:>12.3f}{s.p95 * 1e3:>10.3f}")
    per_dji = [dji.median / t.ours.median for t in trials]
    per_bare = [t.ours.median / t.bare.median for t in trials]
    write(
        f"{len(trials)} trials; per-trial djitellopy/ours: {', '.join(f'{r:.0f}x' for r in per_dji)}; "
        f"ours/bare: {', '.join(f'{r:.2f}x' for r in per_bare)}; goals judged on their medians"
    )
    vs_dji = statistics.median(per_dji)
    vs_bare = statistics.median(per_bare)
    ok_dji = vs_dji >= GOAL_VS_DJITELLOPY
    ok_bare = vs_bare <= GOAL_VS_BARE
    verdict = {True: "OK", False: "MISSED"}
    write(f"ratio djitellopy/ours: {vs_dji:.1f}x (goal >= {GOAL_VS_DJITELLOPY:g}x) {verdict[ok_dji]}")
    write(f"ratio ours/bare: {vs_bare:.2f}x (goal <= {GOAL_VS_BARE:g}x) {verdict[ok_bare]}")
    return ok_dji and ok_bare


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.2", help="simulator address (default 127.0.0.2)")
    parser.add_argument("--port", type=int, default=8889, help="command port, shared with djitellopy")
    parser.add_argument("--state-port", type=int, default=8890, help="djitellopy's state port")
    parser.add_argument(
        "--trials", type=int, default=5, help="trials of ours and the bare socket (default 5)"
    )
    parser.add_argument("--ours", type=int, default=60, help="iterations through DroneLink per trial")
    parser.add_argument("--bare", type=int, default=60, help="iterations on a bare socket per trial")
    parser.add_argument("--djitellopy", type=int, default=20, help="iterations through djitellopy")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few iterations on free ports instead of 8889/8890 (proves it runs; timings are rough)",
    )
    args = parser.parse_args(argv)
    if min(args.trials, args.ours, args.bare, args.djitellopy) < 1:
        parser.error("--trials, --ours, --bare and --djitellopy must be >= 1")
    port, state_port = args.port, args.state_port
    ours, bare, dji, warmup, trials = args.ours, args.bare, args.djitellopy, 10, args.trials
    if args.quick:
        port, state_port = free_udp_ports(2)
        ours, bare, dji, warmup, trials = min(ours, 15), min(bare, 15), min(dji, 3), 3, min(trials, 2)
    return Options(
        args.host, port, state_port, ours, bare, dji, warmup, gap_s=0.03, djitellopy_gap_s=0.15, trials=trials
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    with simulator(opts.host, opts.port, opts.state_port) as sim:
        trials = measure_trials(sim, opts)
        gc.collect()
        dji = measure_djitellopy(sim, opts)
    met = report(trials, dji, opts)
    sys.stdout.flush()
    return 0 if met else 1
