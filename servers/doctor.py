"""`tello-mcp doctor`: check a drone step by step, before serving it, and say what to fix.

Each step needs the ones before it, so the first failure names the real problem and the steps
after it are skipped:

1. **address**: the drone's address is one a Tello can have, and this machine has a route to it
   (which local address it would use);
2. **ports**: the command, state (8890) and video (11111) ports can be bound here (nothing else,
   such as a running `tello-mcp serve` or djitellopy, holds them);
3. **command**: the drone answers `command` (SDK mode), with the round trip;
4. **state packets**: they arrive on the state port (a firewall that lets the replies in may
   still drop them: they come to a fixed port);
5. **SDK version** (`sdk?`) and **battery** (`battery?`, against the takeoff minimum);
6. **video**: after `streamon`, H.264 arrives on the video port (then `streamoff`).

Nothing here takes off or moves: `command`, `sdk?`, `battery?`, `streamon`, `streamoff` only.
The network and clock are injected like the link's, so tests run it against `drone_sim`.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import sys
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import anyio

from tello_io.clock import Clock, ScaledClock
from tello_io.datagram import DatagramNetwork, DatagramSocket, UdpNetwork

__all__ = ["Check", "DoctorConfig", "diagnose", "render"]

Status = Literal["ok", "warn", "fail", "skip"]

WIFI_HINT = (
    "is this machine on the drone's WiFi (TELLO-XXXXXX / RMTT-XXXXXX), or for station mode on the "
    "network the drone joined? Is the drone switched on (its LED blinks yellow when ready)?"
)


@dataclass(frozen=True, slots=True)
class Check:
    """One step's outcome: what was found, and what to do about it (`fix`, empty when nothing)."""

    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class DoctorConfig:
    drone_host: str = "192.168.10.1"
    drone_port: int = 8889
    bind_host: str = "0.0.0.0"
    state_port: int = 8890
    video_port: int = 11111
    min_takeoff_battery: int = 20
    reply_timeout_s: float = 1.0
    attempts: int = 3
    state_wait_s: float = 2.0
    video_wait_s: float = 4.0


@dataclass
class _Run:
    config: DoctorConfig
    network: DatagramNetwork
    clock: Clock
    checks: list[Check] = field(default_factory=list[Check])

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> bool:
        self.checks.append(Check(name, status, detail, fix))
        return status in ("ok", "warn")

    @property
    def target(self) -> tuple[str, int]:
        return (self.config.drone_host, self.config.drone_port)


_LATER = ("command", "state packets", "SDK version", "battery", "video")
_STEPS = ("address", "ports", *_LATER)


async def diagnose(
    config: DoctorConfig, *, network: DatagramNetwork | None = None, clock: Clock | None = None
) -> list[Check]:
    """Every step, in order; those after a failure come back as `skip`."""
    run = _Run(config, network or UdpNetwork(), clock or ScaledClock(1.0))
    if _address(run):
        async with _sockets(run) as socks:
            if socks is not None:
                await _talk(run, *socks)
    done = {c.name for c in run.checks}
    run.checks.extend(Check(name, "skip", "needs the steps above") for name in _STEPS if name not in done)
    return run.checks


def _address(run: _Run) -> bool:
    host = run.config.drone_host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return run.add(
            "address",
            "fail",
            f"{host!r} is not an IP address",
            "give the drone's IP address with --drone-host or TELLO_MCP_DRONE_HOST "
            "(192.168.10.1 on its own WiFi)",
        )
    from servers.drone.app import drone_address_refusal

    refused = drone_address_refusal(str(address))
    if refused is not None:
        return run.add("address", "fail", refused, "set --drone-host / TELLO_MCP_DRONE_HOST to the drone's")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((str(address), run.config.drone_port))  # no datagram: asks for a route only
            local = probe.getsockname()[0]
        except OSError as exc:
            return run.add("address", "fail", f"no route to {host}: {exc.strerror or exc}", WIFI_HINT)
    detail = f"{host}:{run.config.drone_port}, reached from this machine's {local}"
    if host == "192.168.10.1" and not str(local).startswith("192.168.10."):
        return run.add(
            "address",
            "warn",
            detail,
            "192.168.10.1 is the drone's own WiFi, but this machine's address toward it is not on "
            "192.168.10.0/24: join the drone's WiFi (TELLO-XXXXXX / RMTT-XXXXXX)",
        )
    return run.add("address", "ok", detail)


@contextlib.asynccontextmanager
async def _sockets(run: _Run) -> AsyncGenerator[tuple[DatagramSocket, DatagramSocket, DatagramSocket] | None]:
    c = run.config
    wanted = (
        ("command", 0, "--bind-host / TELLO_MCP_BIND_HOST"),
        ("state", c.state_port, "--state-port / TELLO_MCP_STATE_PORT"),
        ("video", c.video_port, "--video-port / TELLO_MCP_VIDEO_PORT"),
    )
    async with contextlib.AsyncExitStack() as stack:
        bound: list[DatagramSocket] = []
        for what, port, setting in wanted:
            try:
                sock = await run.network.bind(c.bind_host, port)
            except OSError as exc:
                taken = exc.errno == errno.EADDRINUSE
                run.add(
                    "ports",
                    "fail",
                    f"UDP {c.bind_host}:{port} ({what}) "
                    + ("is taken by another program" if taken else f"cannot be bound: {exc.strerror or exc}"),
                    "stop what holds it (a running tello-mcp serve, djitellopy, the Tello app), or change "
                    f"{setting}; a real drone always sends state to 8890 and video to 11111",
                )
                yield None
                return
            stack.push_async_callback(sock.aclose)
            bound.append(sock)
        ports = ", ".join(f"{w} {s.local_address[1]}" for (w, _, _), s in zip(wanted, bound, strict=True))
        run.add("ports", "ok", f"UDP {ports} free on {c.bind_host}")
        yield bound[0], bound[1], bound[2]


async def _ask(run: _Run, sock: DatagramSocket, text: str) -> tuple[str | None, float]:
    """Send `text` up to `attempts` times; the first reply from the drone, and its round trip."""
    for _ in range(run.config.attempts):
        sent = run.clock.now()
        sock.send_nowait(text.encode(), run.target)
        with run.clock.move_on_after(run.config.reply_timeout_s):
            while True:
                data, source = await sock.receive()
                if source == run.target:
                    return data.decode(errors="replace").strip(), run.clock.now() - sent
    return None, 0.0


async def _first_datagram(run: _Run, sock: DatagramSocket, within_s: float) -> bytes | None:
    with run.clock.move_on_after(within_s):
        while True:
            data, (host, _) = await sock.receive()
            if host == run.config.drone_host:
                return data
    return None


async def _talk(run: _Run, cmd: DatagramSocket, state: DatagramSocket, video: DatagramSocket) -> None:
    c = run.config
    reply, rtt = await _ask(run, cmd, "command")
    if reply is None:
        run.add(
            "command",
            "fail",
            f"no answer to 'command' from {c.drone_host}:{c.drone_port} "
            f"({c.attempts} tries, {c.reply_timeout_s:g} s each)",
            f"{WIFI_HINT} Is --drone-host / TELLO_MCP_DRONE_HOST right? A firewall may drop the "
            "replies: allow inbound UDP from the drone",
        )
        return
    if reply != "ok":
        run.add("command", "warn", f"'command' answered {reply!r}, not 'ok'", "power-cycle it, run again")
    else:
        run.add("command", "ok", f"answered 'ok' in {rtt * 1000:.0f} ms: the drone is in SDK mode")

    packet = await _first_datagram(run, state, c.state_wait_s)
    battery_from_state: str | None = None
    if packet is None:
        run.add(
            "state packets",
            "fail",
            f"none on UDP {state.local_address[1]} within {c.state_wait_s:g} s, though the drone answers",
            f"a firewall drops inbound UDP {c.state_port} (e.g. `sudo ufw allow {c.state_port}/udp`), or "
            "NAT is in the way: in a container use host networking (`docker run --network host`)",
        )
    else:
        parts = packet.decode(errors="replace").strip().strip(";").split(";")
        fields = dict(part.split(":", 1) for part in parts if ":" in part)
        battery_from_state = fields.get("bat")
        run.add("state packets", "ok", f"arriving on UDP {state.local_address[1]} ({len(fields)} fields)")

    sdk, _ = await _ask(run, cmd, "sdk?")
    if sdk is not None and sdk.isdigit():
        run.add("SDK version", "ok", f"SDK {sdk} (Tello EDU / RoboMaster TT: LED, matrix and ToF work)")
    else:
        run.add(
            "SDK version",
            "warn",
            f"'sdk?' answered {sdk!r}: an original Tello (SDK 1.3 / 2.0)",
            "flying works; set_led, show_matrix and the ToF sensor need a RoboMaster TT",
        )

    battery, _ = await _ask(run, cmd, "battery?")
    level = battery if battery is not None and battery.isdigit() else battery_from_state
    if level is None or not level.isdigit():
        run.add("battery", "warn", f"'battery?' answered {battery!r}", "read it again before flying")
    elif int(level) < c.min_takeoff_battery:
        run.add(
            "battery",
            "warn",
            f"{level} %: below the takeoff minimum of {c.min_takeoff_battery} %",
            "charge the battery: takeoff will be refused",
        )
    else:
        run.add("battery", "ok", f"{level} %")

    on, _ = await _ask(run, cmd, "streamon")
    frames = await _first_datagram(run, video, c.video_wait_s) if on == "ok" else None
    await _ask(run, cmd, "streamoff")
    if frames is not None:
        run.add("video", "ok", f"H.264 arriving on UDP {video.local_address[1]} after 'streamon'")
    else:
        said = "" if on == "ok" else f" ('streamon' answered {on!r})"
        run.add(
            "video",
            "fail",
            f"no video on UDP {video.local_address[1]} within {c.video_wait_s:g} s{said}",
            f"a firewall drops inbound UDP {c.video_port} (e.g. `sudo ufw allow {c.video_port}/udp`); "
            "capture_photo needs it, flying does not",
        )


_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def render(checks: Sequence[Check], drone_host: str = "192.168.10.1") -> str:
    """One line per step, and an indented `fix:` line under each that has one."""
    lines: list[str] = []
    for check in checks:
        lines.append(f"[{_MARK[check.status]}] {check.name}: {check.detail}")
        if check.fix:
            lines.append(f"       fix: {check.fix}")
    failed = [c.name for c in checks if c.status == "fail"]
    lines.append(
        f"ready: tello-mcp serve drone --drone-host {drone_host}"
        if not failed
        else f"not ready: fix {failed[0]} first"
    )
    return "\n".join(lines) + "\n"


def run_doctor(config: DoctorConfig) -> int:
    """`tello-mcp doctor`: print the checks; exit status 1 if any failed."""
    checks = anyio.run(diagnose, config)
    sys.stdout.write(render(checks, config.drone_host))
    return 1 if any(c.status == "fail" for c in checks) else 0
