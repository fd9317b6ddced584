"""What the drone tools return: pydantic models, so every tool publishes an output schema and
structured content. Every model that carries a reading carries its freshness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

LinkState = Literal["connected", "stale", "disconnected"]


class Freshness(BaseModel):
    link: LinkState = Field(
        description=(
            "connected: state packets are fresh; stale: they stopped; disconnected: the drone does not answer"
        )
    )
    state_age_s: float | None = Field(description="seconds since the last state packet (null: none yet)")


class Attitude(BaseModel):
    pitch_deg: int
    roll_deg: int
    yaw_deg: int


class Velocity(BaseModel):
    x_cm_s: int
    y_cm_s: int
    z_cm_s: int


class Acceleration(BaseModel):
    x_g: float
    y_g: float
    z_g: float


class MissionPadModel(BaseModel):
    id: int = Field(description="-1 when no pad is detected")
    x_cm: int
    y_cm: int
    z_cm: int


class TelemetryModel(BaseModel):
    height_cm: int
    tof_cm: int
    battery_pct: int
    attitude: Attitude
    velocity: Velocity
    acceleration: Acceleration
    temperature_low_c: int
    temperature_high_c: int
    barometer_m: float
    flight_time_s: int = Field(description="motor-on time in seconds")
    mission_pad: MissionPadModel | None


class PositionModel(BaseModel):
    x_cm: float = Field(description="forward of the takeoff point, along the takeoff heading")
    y_cm: float = Field(description="left of the takeoff point")
    z_cm: float
    heading_deg: float = Field(description="clockwise from the takeoff heading")
    uncertainty_cm: float = Field(
        description="grows by the length of every move whose outcome telemetry could not settle"
    )


class DroneState(BaseModel):
    freshness: Freshness
    flight: Literal["flying", "landed", "unknown"]
    drone: str = Field(description="drone address")
    telemetry: TelemetryModel | None = Field(description="last state packet (null before the first one)")
    position_estimate: PositionModel | None = Field(
        description="dead-reckoned from confirmed moves; null when landed"
    )
    speed_cm_s: int | None = Field(description="speed last set through this server (null: unknown)")
    hold: dict[str, str | float] | None = Field(
        default=None,
        description="an operator's hold (who set it, since when): flight actions are refused; null: none",
    )


class BatteryResult(BaseModel):
    percent: int
    source: Literal["live", "state"] = Field(
        description="live: answered by battery? now; state: last state packet"
    )
    age_s: float = Field(description="age of the value in seconds (0 for a live read)")
    freshness: Freshness


SensorName = Literal[
    "height",
    "tof",
    "temperature",
    "attitude",
    "barometer",
    "acceleration",
    "speed",
    "flight_time",
    "wifi_snr",
    "sdk_version",
    "serial_number",
    "hardware",
]


class SensorResult(BaseModel):
    sensor: SensorName
    value: float | int | str | dict[str, float]
    unit: str
    raw: str = Field(description="the drone's reply, verbatim")
    latency_ms: float
    freshness: Freshness


class ActionResult(BaseModel):
    """The outcome of a flight action, with the state it left the drone in."""

    command: str = Field(description="the SDK command (sent only if `sent`)")
    reply: str = Field(description="the drone's reply, verbatim ('' when it sent none)")
    latency_ms: float
    sent: bool = Field(default=True, description="whether the command went to the drone")
    note: str | None = Field(default=None, description="what else to know, e.g. 'already on the ground'")
    state: DroneState


class EmergencyResult(BaseModel):
    command: str
    confirmed: bool = Field(description="whether the drone acknowledged; emergency is often unanswered")
    state: DroneState


class PhotoResult(BaseModel):
    width: int
    height: int
    frame_age_s: float = Field(description="how old the frame was when returned")
    jpeg_bytes: int
    freshness: Freshness
