"""All of the drone server's settings in one place, from CLI flags or `TELLO_MCP_*` variables.

A flag wins over its environment variable, which wins over the default. Every setting is
listed in `SETTINGS` once, with its type, default and help, so the CLI, the environment and
the README cannot disagree.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from servers.drone.link import LinkConfig
from servers.drone.protocol import ProtocolConfig
from servers.drone.safety import SafetyEnvelope
from servers.http import LOCAL_HOSTS, LOCAL_ORIGINS, HttpSettings

ENV_PREFIX = "TELLO_MCP_"


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    kind: type[Any]
    default: Any
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1", "address the HTTP server listens on"),
    Setting("port", int, 8000, "port the HTTP server listens on"),
    Setting("transport", str, "http", "http (streamable HTTP, both MCP eras) or stdio", ("http", "stdio")),
    Setting(
        "allowed_hosts",
        str,
        ",".join(LOCAL_HOSTS),
        "comma-separated Host values accepted (name, name:port, name:*), or * for any (behind a gateway)",
    ),
    Setting("allowed_origins", str, ",".join(LOCAL_ORIGINS), "comma-separated Origin values accepted"),
    Setting("drone_host", str, "192.168.10.1", "the drone's IP address"),
    Setting("drone_port", int, 8889, "the drone's command port"),
    Setting("bind_host", str, "0.0.0.0", "local address for the command, state and video sockets"),
    Setting("state_port", int, 8890, "local port the drone sends state packets to"),
    Setting("video_port", int, 11111, "local port the drone sends video to"),
    Setting("keepalive_s", float, 5.0, "seconds between keepalive 'command's when the link is quiet"),
    Setting("stale_after_s", float, 1.0, "seconds without a state packet before readings are 'stale'"),
    Setting("max_height_cm", int, 300, "safety envelope: highest allowed height"),
    Setting("max_distance_cm", int, 500, "safety envelope: furthest allowed distance from the takeoff point"),
    Setting("min_takeoff_battery", int, 20, "safety envelope: takeoff refused below this battery %"),
    Setting("critical_battery", int, 10, "safety envelope: a flying drone lands by itself at this battery %"),
    Setting(
        "photo_idle_off_s", float, 30.0, "video stream switched off after this many seconds without a photo"
    ),
    Setting("sim", bool, False, "embed the drone simulator and fly it instead of a real drone"),
    Setting("time_scale", float, 1.0, "run simulated time this many times faster (embedded simulator only)"),
    Setting("log_format", str, "json", "json (production) or console", ("json", "console")),
    Setting("log_level", str, "info", "debug, info, warning or error", ("debug", "info", "warning", "error")),
)


@dataclass(frozen=True, slots=True)
class DroneSettings:
    """The resolved settings (see `SETTINGS` for what each one means)."""

    host: str = "127.0.0.1"
    port: int = 8000
    transport: Literal["http", "stdio"] = "http"
    allowed_hosts: tuple[str, ...] = LOCAL_HOSTS
    allowed_origins: tuple[str, ...] = LOCAL_ORIGINS
    drone_host: str = "192.168.10.1"
    drone_port: int = 8889
    bind_host: str = "0.0.0.0"
    state_port: int = 8890
    video_port: int = 11111
    keepalive_s: float = 5.0
    stale_after_s: float = 1.0
    max_height_cm: int = 300
    max_distance_cm: int = 500
    min_takeoff_battery: int = 20
    critical_battery: int = 10
    photo_idle_off_s: float = 30.0
    sim: bool = False
    time_scale: float = 1.0
    log_format: Literal["json", "console"] = "json"
    log_level: str = "info"
    envelope: SafetyEnvelope = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "envelope",
            SafetyEnvelope(
                max_height_cm=self.max_height_cm,
                max_distance_cm=self.max_distance_cm,
                min_takeoff_battery=self.min_takeoff_battery,
                critical_battery=self.critical_battery,
            ),
        )
        if self.time_scale != 1.0 and not self.sim:
            raise ValueError("time_scale only applies to the embedded simulator (--sim)")
        if self.keepalive_s <= 0 or self.keepalive_s >= 15:
            raise ValueError(f"keepalive_s={self.keepalive_s} must be in (0, 15): the drone lands after 15 s")

    def http(self) -> HttpSettings:
        return HttpSettings(
            host=self.host,
            port=self.port,
            allowed_hosts=self.allowed_hosts,
            allowed_origins=() if self.allowed_hosts == ("*",) else self.allowed_origins,
        )

    def link(self, *, drone_host: str | None = None, drone_port: int | None = None) -> LinkConfig:
        return LinkConfig(
            drone_host=drone_host or self.drone_host,
            drone_port=drone_port or self.drone_port,
            bind_host=self.bind_host,
            state_host=self.bind_host,
            state_port=self.state_port,
            protocol=ProtocolConfig(keepalive_s=self.keepalive_s, stale_after_s=self.stale_after_s),
        )


def _parse(setting: Setting, raw: str) -> Any:
    if setting.kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{setting.env}={raw!r}: expected true or false")
    if setting.name in ("allowed_hosts", "allowed_origins"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    value = setting.kind(raw)
    if setting.choices is not None and value not in setting.choices:
        raise ValueError(f"{setting.name}={raw!r}: expected one of {', '.join(setting.choices)}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for s in SETTINGS:
        text = s.help.replace("%", "%%")  # argparse %-formats help strings
        if s.kind is bool:
            parser.add_argument(
                s.flag, action=argparse.BooleanOptionalAction, default=None, help=f"{text} [{s.env}]"
            )
        else:
            parser.add_argument(
                s.flag, default=None, choices=s.choices, help=f"{text} (default {s.default}) [{s.env}]"
            )


def from_sources(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> DroneSettings:
    """Resolve every setting: flag, then `TELLO_MCP_*` variable, then default."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for s in SETTINGS:
        flag_value = None if args is None else getattr(args, s.name, None)
        if flag_value is not None:
            values[s.name] = flag_value if isinstance(flag_value, bool) else _parse(s, str(flag_value))
        elif s.env in env:
            values[s.name] = _parse(s, env[s.env])
    return DroneSettings(**values)


def parse_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> DroneSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_sources(parser.parse_args(list(argv)), environ)
