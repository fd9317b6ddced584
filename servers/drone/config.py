"""The drone server's own settings (where the drone is, the link's timing, the safety envelope).

What every server shares (listen address, Host/Origin allow-lists, transport, logging) is
`servers.config.ServeSettings`. Each default here is taken from the component that uses it
(`LinkConfig`, `ProtocolConfig`, `SafetyEnvelope`, the camera and photo service), so it is
written once; `DRONE` lists the fields operators set, with their help.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from servers.config import SettingsGroup, default_of
from servers.drone.camera import VIDEO_PORT
from servers.drone.core.protocol import ProtocolConfig
from servers.drone.core.safety import SafetyEnvelope
from servers.drone.link import LinkConfig
from servers.drone.photo import PHOTO_IDLE_OFF_S


@dataclass(frozen=True, slots=True)
class DroneSettings:
    """The resolved drone settings (see `DRONE` for what each one means)."""

    drone_host: str = default_of(LinkConfig, "drone_host")
    drone_port: int = default_of(LinkConfig, "drone_port")
    bind_host: str = default_of(LinkConfig, "bind_host")
    state_port: int = default_of(LinkConfig, "state_port")
    video_port: int = VIDEO_PORT
    keepalive_s: float = default_of(ProtocolConfig, "keepalive_s")
    stale_after_s: float = default_of(ProtocolConfig, "stale_after_s")
    max_height_cm: int = default_of(SafetyEnvelope, "max_height_cm")
    min_height_cm: int = default_of(SafetyEnvelope, "min_height_cm")
    max_distance_cm: int = default_of(SafetyEnvelope, "max_distance_cm")
    min_takeoff_battery: int = default_of(SafetyEnvelope, "min_takeoff_battery")
    critical_battery: int = default_of(SafetyEnvelope, "critical_battery")
    photo_idle_off_s: float = PHOTO_IDLE_OFF_S
    deck_max_viewers: int = 8
    flight_recording_dir: str = ""
    flight_recording_max_mb: float = 500.0
    flight_recording_max_age_days: float = 30.0
    sim: bool = False
    time_scale: float = 1.0
    envelope: SafetyEnvelope = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "envelope",
            SafetyEnvelope(
                max_height_cm=self.max_height_cm,
                min_height_cm=self.min_height_cm,
                max_distance_cm=self.max_distance_cm,
                min_takeoff_battery=self.min_takeoff_battery,
                critical_battery=self.critical_battery,
            ),
        )
        if not 1 <= self.deck_max_viewers <= 1000:
            raise ValueError(f"deck_max_viewers={self.deck_max_viewers} must be between 1 and 1000")
        if self.time_scale != 1.0 and not self.sim:
            raise ValueError("time_scale only applies to the embedded simulator (--sim)")
        if self.keepalive_s <= 0 or self.keepalive_s >= 15:
            raise ValueError(f"keepalive_s={self.keepalive_s} must be in (0, 15): the drone lands after 15 s")

    def link(self, *, drone_host: str | None = None, drone_port: int | None = None) -> LinkConfig:
        return LinkConfig(
            drone_host=drone_host or self.drone_host,
            drone_port=drone_port or self.drone_port,
            bind_host=self.bind_host,
            state_host=self.bind_host,
            state_port=self.state_port,
            protocol=ProtocolConfig(keepalive_s=self.keepalive_s, stale_after_s=self.stale_after_s),
        )


DRONE = SettingsGroup(
    "drone",
    DroneSettings,
    {
        "drone_host": "the drone's IP address",
        "drone_port": "the drone's command port",
        "bind_host": "local address for the command, state and video sockets",
        "state_port": "local port the drone sends state packets to",
        "video_port": "local port the drone sends video to",
        "keepalive_s": "seconds between keepalive 'command's when the link is quiet",
        "stale_after_s": "seconds without a state packet before readings are 'stale'",
        "max_height_cm": "safety envelope: highest allowed height",
        "min_height_cm": "safety envelope: lowest height a move may end at or a flip start from",
        "max_distance_cm": "safety envelope: furthest allowed distance from the takeoff point",
        "min_takeoff_battery": "safety envelope: takeoff refused below this battery %",
        "critical_battery": "safety envelope: a flying drone lands by itself at this battery %",
        "photo_idle_off_s": "video stream switched off after this many seconds without a photo",
        "deck_max_viewers": "flight deck (/deck): live viewers at once (more: 503)",
        "flight_recording_dir": "record every flight as MCAP into this directory (empty: off)",
        "flight_recording_max_mb": "flight recordings: oldest deleted while the directory holds more MB",
        "flight_recording_max_age_days": "flight recordings: deleted after this many days",
        "sim": "embed the drone simulator and fly it instead of a real drone",
        "time_scale": "run simulated time this many times faster (embedded simulator only)",
    },
)
