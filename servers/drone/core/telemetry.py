"""The ~10 Hz state packet: `key:value;` pairs, parsed by key, not by position.

The mission-pad fields (`mid;x;y;z;mpry`) appear only in some modes and firmware, so they are
optional; every other field is required, and unknown keys from newer firmware are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from servers.drone.core.errors import ProtocolError


@dataclass(frozen=True, slots=True)
class MissionPad:
    """The detected mission pad (`mid` -1 when none) and the drone's position relative to it."""

    id: int
    x_cm: int
    y_cm: int
    z_cm: int
    pitch: int
    roll: int
    yaw: int


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One state packet in the drone's own units (see field names)."""

    pitch_deg: int
    roll_deg: int
    yaw_deg: int
    vgx_dm_s: int
    vgy_dm_s: int
    vgz_dm_s: int
    temp_low_c: int
    temp_high_c: int
    tof_cm: int
    height_cm: int
    battery_pct: int
    baro_m: float
    motor_time_s: int
    agx_mg: float
    agy_mg: float
    agz_mg: float
    mission_pad: MissionPad | None = None


_REQUIRED: Final = (
    "pitch", "roll", "yaw", "vgx", "vgy", "vgz", "templ", "temph", "tof", "h", "bat", "baro", "time",
    "agx", "agy", "agz",
)  # fmt: skip
_PAD_KEYS: Final = ("mid", "x", "y", "z", "mpry")


def _int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        # Some firmware sends integral fields as "0.00"; accept them only when integral.
        number = _float(key, raw)
        if not number.is_integer():
            raise ProtocolError(f"state field {key!r} is not an integer: {raw!r}") from None
        return int(number)


def _float(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ProtocolError(f"state field {key!r} is not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise ProtocolError(f"state field {key!r} is not finite: {raw!r}")
    return value


def parse_state(text: str) -> Telemetry:
    """Parse one state packet, or raise `ProtocolError` naming what is wrong."""
    body = text.strip().rstrip(";")
    if not body:
        raise ProtocolError("empty state packet")
    raw: dict[str, str] = {}
    for item in body.split(";"):
        key, sep, value = item.partition(":")
        key = key.strip()
        if not sep or not key:
            raise ProtocolError(f"state item {item!r} is not key:value")
        if key in raw:
            raise ProtocolError(f"state key {key!r} appears twice")
        raw[key] = value.strip()

    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ProtocolError(f"state packet lacks {', '.join(missing)}")

    pad: MissionPad | None = None
    present = [k for k in _PAD_KEYS if k in raw]
    if present:
        if len(present) != len(_PAD_KEYS):
            raise ProtocolError(f"partial mission-pad fields: {', '.join(present)}")
        mpry = raw["mpry"].split(",")
        if len(mpry) != 3:
            raise ProtocolError(f"mpry must be pitch,roll,yaw: {raw['mpry']!r}")
        p, r, y = (_int("mpry", v) for v in mpry)
        pad = MissionPad(
            id=_int("mid", raw["mid"]),
            x_cm=_int("x", raw["x"]),
            y_cm=_int("y", raw["y"]),
            z_cm=_int("z", raw["z"]),
            pitch=p,
            roll=r,
            yaw=y,
        )
    return Telemetry(
        pitch_deg=_int("pitch", raw["pitch"]),
        roll_deg=_int("roll", raw["roll"]),
        yaw_deg=_int("yaw", raw["yaw"]),
        vgx_dm_s=_int("vgx", raw["vgx"]),
        vgy_dm_s=_int("vgy", raw["vgy"]),
        vgz_dm_s=_int("vgz", raw["vgz"]),
        temp_low_c=_int("templ", raw["templ"]),
        temp_high_c=_int("temph", raw["temph"]),
        tof_cm=_int("tof", raw["tof"]),
        height_cm=_int("h", raw["h"]),
        battery_pct=_int("bat", raw["bat"]),
        baro_m=_float("baro", raw["baro"]),
        motor_time_s=_int("time", raw["time"]),
        agx_mg=_float("agx", raw["agx"]),
        agy_mg=_float("agy", raw["agy"]),
        agz_mg=_float("agz", raw["agz"]),
        mission_pad=pad,
    )
