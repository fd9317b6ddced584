"""Replies as the real drone sends them, parsed into typed values.

The SDK documents bare numbers, but real firmware appends units (`15dm`, `875mm`, `11s`) and
ranges (`85~88C`); a parser that calls `int()` on them breaks on a real drone. Each form is
parsed strictly: a reply that does not have the form the pending command expects is *not its
reply* (it is a late or duplicate answer to something else) and the protocol core drops it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from servers.drone.core.commands import ReplyKind
from servers.drone.core.errors import ProtocolError

ERROR_PREFIXES: Final = ("error", "out of range", "forced stop", "unknown command")


@dataclass(frozen=True, slots=True)
class TemperatureRange:
    low_c: int
    high_c: int


@dataclass(frozen=True, slots=True)
class Attitude:
    pitch: int
    roll: int
    yaw: int


@dataclass(frozen=True, slots=True)
class Acceleration:
    """In thousandths of g, as the drone reports them (agz ≈ -1000 at rest)."""

    x: float
    y: float
    z: float


ReplyValue: TypeAlias = bool | int | float | str | TemperatureRange | Attitude | Acceleration | None


def is_error(text: str) -> bool:
    """Whether a reply is one of the drone's refusals (`error ...`, `out of range`, ...)."""
    lowered = text.strip().lower()
    return lowered.startswith(ERROR_PREFIXES)


# Bounded digit runs: no drone value needs more, and int() refuses > 4300 digits anyway.
_INT = re.compile(r"-?\d{1,9}")
_FLOAT = re.compile(r"-?\d{1,9}(?:\.\d{1,9})?")
_SECONDS = re.compile(r"(-?\d{1,9})s")
_DECIMETRES = re.compile(r"(-?\d{1,9})dm")
_MILLIMETRES = re.compile(r"(-?\d{1,9})mm")
_TEMPERATURE = re.compile(r"(-?\d{1,9})~(-?\d{1,9})C")
_EXT_TOF = re.compile(r"tof (-?\d{1,9})")
# Serial numbers and hardware names: letters and digits, so no other read's reply passes.
_TEXT = re.compile(r"[A-Za-z0-9]{1,64}")


def _pairs(text: str, keys: tuple[str, ...]) -> dict[str, float]:
    """`k:v;k:v;` → {k: v} requiring exactly `keys`."""
    fields: dict[str, float] = {}
    for item in text.rstrip(";").split(";"):
        key, sep, raw = item.partition(":")
        if not sep or key in fields:
            raise ProtocolError(f"malformed key:value list {text!r}")
        if not _FLOAT.fullmatch(raw):
            raise ProtocolError(f"non-numeric {key!r} in {text!r}")
        fields[key] = float(raw)
    if tuple(fields) != keys:
        raise ProtocolError(f"expected keys {keys} in {text!r}")
    return fields


def parse_reply(kind: ReplyKind, text: str) -> ReplyValue:
    """Parse a successful reply of the given form, or raise `ProtocolError`.

    Each value keeps the unit its form names (`15dm` → 15, `875mm` → 875); callers convert at
    the edge, where the unit is named in the field.
    """
    value = text.strip()
    match kind:
        case ReplyKind.OK:
            if value != "ok":
                raise ProtocolError(f"expected 'ok', got {text!r}")
            return True
        case ReplyKind.LED_OK | ReplyKind.MATRIX_OK:
            expected = "led ok" if kind is ReplyKind.LED_OK else "matrix ok"
            if value != expected:
                raise ProtocolError(f"expected {expected!r}, got {text!r}")
            return True
        case ReplyKind.INT:
            if not _INT.fullmatch(value):
                raise ProtocolError(f"expected an integer, got {text!r}")
            return int(value)
        case ReplyKind.FLOAT:
            if not _FLOAT.fullmatch(value):
                raise ProtocolError(f"expected a number, got {text!r}")
            return float(value)
        case ReplyKind.SECONDS:
            return _unit(_SECONDS, value, text, "seconds like '11s'")
        case ReplyKind.DECIMETRES:
            return _unit(_DECIMETRES, value, text, "decimetres like '15dm'")
        case ReplyKind.MILLIMETRES:
            return _unit(_MILLIMETRES, value, text, "millimetres like '875mm'")
        case ReplyKind.EXT_TOF:
            return _unit(_EXT_TOF, value, text, "'tof <mm>'")
        case ReplyKind.TEMPERATURE:
            m = _TEMPERATURE.fullmatch(value)
            if m is None:
                raise ProtocolError(f"expected a temperature range like '85~88C', got {text!r}")
            return TemperatureRange(int(m.group(1)), int(m.group(2)))
        case ReplyKind.ATTITUDE:
            f = _pairs(value, ("pitch", "roll", "yaw"))
            if not all(v.is_integer() for v in f.values()):
                raise ProtocolError(f"attitude angles are whole degrees, got {text!r}")
            return Attitude(int(f["pitch"]), int(f["roll"]), int(f["yaw"]))
        case ReplyKind.ACCELERATION:
            f = _pairs(value, ("agx", "agy", "agz"))
            return Acceleration(f["agx"], f["agy"], f["agz"])
        case ReplyKind.TEXT:
            # A free-text read must still not be an `ok`, a number, or an error from elsewhere.
            if not _TEXT.fullmatch(value) or value == "ok" or _FLOAT.fullmatch(value):
                raise ProtocolError(f"expected an identifier, got {text!r}")
            return value
        case ReplyKind.NONE:
            raise ProtocolError(f"this command is never answered, got {text!r}")


def _unit(pattern: re.Pattern[str], value: str, text: str, what: str) -> int:
    m = pattern.fullmatch(value)
    if m is None:
        raise ProtocolError(f"expected {what}, got {text!r}")
    return int(m.group(1))


def decode_datagram(data: bytes) -> str:
    """Datagram bytes → text. The drone speaks ASCII; anything else is garbage on the port."""
    try:
        return data.decode("ascii").strip("\r\n\x00 ")
    except UnicodeDecodeError:
        raise ProtocolError(f"non-ASCII datagram {data[:32]!r}") from None
