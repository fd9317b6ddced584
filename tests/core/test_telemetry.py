"""The state packet, parsed by key (reference "State packet")."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.drone.core.errors import ProtocolError
from servers.drone.core.replies import decode_datagram
from servers.drone.core.telemetry import MissionPad, Telemetry, parse_state

from .helpers import STATE_PACKET

PAD_KEYS = ["mid", "x", "y", "z", "mpry"]
REQUIRED_KEYS = ["pitch", "roll", "yaw", "vgx", "vgy", "vgz", "templ", "temph", "tof", "h", "bat", "baro"]
REQUIRED_KEYS += ["time", "agx", "agy", "agz"]

REFERENCE_TELEMETRY = Telemetry(
    pitch_deg=0,
    roll_deg=0,
    yaw_deg=0,
    vgx_dm_s=0,
    vgy_dm_s=0,
    vgz_dm_s=0,
    temp_low_c=60,
    temp_high_c=62,
    tof_cm=10,
    height_cm=0,
    battery_pct=87,
    baro_m=12.34,
    motor_time_s=0,
    agx_mg=-3.0,
    agy_mg=1.0,
    agz_mg=-999.0,
    mission_pad=MissionPad(id=-1, x_cm=-100, y_cm=-100, z_cm=-100, pitch=0, roll=0, yaw=0),
)


def _pairs(packet: str) -> list[tuple[str, str]]:
    body = packet.strip().rstrip(";")
    return [(k, v) for k, _, v in (item.partition(":") for item in body.split(";"))]


def _join(pairs: list[tuple[str, str]], ending: str = ";\r\n") -> str:
    return ";".join(f"{k}:{v}" for k, v in pairs) + ending


def test_reference_packet_with_mission_pad() -> None:
    assert parse_state(STATE_PACKET) == REFERENCE_TELEMETRY


def test_packet_without_mission_pad_fields() -> None:
    pairs = [(k, v) for k, v in _pairs(STATE_PACKET) if k not in PAD_KEYS]
    t = parse_state(_join(pairs))
    assert t.mission_pad is None
    assert t == dataclasses.replace(REFERENCE_TELEMETRY, mission_pad=None)


@pytest.mark.parametrize("ending", ["", ";", "\r\n", ";\r\n", ";\n", ";\r\n\r\n", ";\x00"])
def test_line_endings(ending: str) -> None:
    body = STATE_PACKET.strip().rstrip(";")
    assert parse_state(decode_datagram((body + ending).encode())) == REFERENCE_TELEMETRY


def test_state_through_decode_datagram() -> None:
    assert parse_state(decode_datagram(STATE_PACKET.encode("ascii"))) == REFERENCE_TELEMETRY


def test_mission_pad_values() -> None:
    packet = STATE_PACKET.replace(
        "mid:-1;x:-100;y:-100;z:-100;mpry:0,0,0", "mid:4;x:12;y:-34;z:56;mpry:1,-2,3"
    )
    assert parse_state(packet).mission_pad == MissionPad(4, 12, -34, 56, 1, -2, 3)


def test_fields_map_to_their_names() -> None:
    values = {k: str(i + 1) for i, k in enumerate(REQUIRED_KEYS)}
    t = parse_state(_join(list(values.items())))
    assert (t.pitch_deg, t.roll_deg, t.yaw_deg) == (1, 2, 3)
    assert (t.vgx_dm_s, t.vgy_dm_s, t.vgz_dm_s) == (4, 5, 6)
    assert (t.temp_low_c, t.temp_high_c, t.tof_cm, t.height_cm, t.battery_pct) == (7, 8, 9, 10, 11)
    assert (t.baro_m, t.motor_time_s) == (12.0, 13)
    assert (t.agx_mg, t.agy_mg, t.agz_mg) == (14.0, 15.0, 16.0)


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_required_key_is_rejected(key: str) -> None:
    pairs = [(k, v) for k, v in _pairs(STATE_PACKET) if k != key]
    with pytest.raises(ProtocolError, match=rf"\b{key}\b"):
        parse_state(_join(pairs))


@pytest.mark.parametrize("key", REQUIRED_KEYS + PAD_KEYS)
def test_duplicate_key_is_rejected(key: str) -> None:
    pairs = _pairs(STATE_PACKET)
    pairs.append(next(p for p in pairs if p[0] == key))
    with pytest.raises(ProtocolError, match="twice"):
        parse_state(_join(pairs))


def _subsets(keys: list[str]) -> list[list[str]]:
    return [[k for i, k in enumerate(keys) if mask >> i & 1] for mask in range(1, 2 ** len(keys) - 1)]


@pytest.mark.parametrize("present", _subsets(PAD_KEYS), ids=lambda p: "+".join(p))
def test_partial_mission_pad_fields_are_rejected(present: list[str]) -> None:
    pairs = [(k, v) for k, v in _pairs(STATE_PACKET) if k not in PAD_KEYS or k in present]
    with pytest.raises(ProtocolError, match="mission-pad"):
        parse_state(_join(pairs))


@pytest.mark.parametrize("mpry", ["0,0", "0,0,0,0", "", "a,b,c", "0;0;0", "1.5,0,0"])
def test_bad_mpry_is_rejected(mpry: str) -> None:
    with pytest.raises(ProtocolError):
        parse_state(STATE_PACKET.replace("mpry:0,0,0", f"mpry:{mpry}"))


def test_unknown_keys_from_newer_firmware_are_ignored() -> None:
    pairs = [("fw", "1.2.3"), *_pairs(STATE_PACKET), ("extra", "x")]
    assert parse_state(_join(pairs)) == REFERENCE_TELEMETRY


def test_integral_fields_sent_as_decimals_are_accepted_when_whole() -> None:
    t = parse_state(STATE_PACKET.replace("bat:87", "bat:87.00").replace("h:0", "h:-0.0"))
    assert (t.battery_pct, t.height_cm) == (87, 0)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("bat:87", "bat:87.5"),
        ("bat:87", "bat:"),
        ("bat:87", "bat:x"),
        ("h:0", "h:nan"),
        ("tof:10", "tof:inf"),
        ("baro:12.34", "baro:abc"),
        ("agx:-3.00", "agx:"),
        ("mid:-1", "mid:m1"),
        ("bat:87;", "bat:87;;"),
        ("bat:87;", "bat87;"),
        ("bat:87;", ":87;bat:87;"),
    ],
)
def test_bad_values_and_items_are_rejected(old: str, new: str) -> None:
    assert old in STATE_PACKET
    with pytest.raises(ProtocolError):
        parse_state(STATE_PACKET.replace(old, new, 1))


@pytest.mark.parametrize("text", ["", ";", "\r\n", "   ", "ok", "87", "pitch:0;roll:-1;yaw:0;"])
def test_non_state_text_is_rejected(text: str) -> None:
    with pytest.raises(ProtocolError):
        parse_state(text)


@pytest.mark.parametrize(("old", "new"), [("baro:12.34", "baro:nan"), ("agz:-999.00", "agz:-inf")])
def test_non_finite_float_fields_are_rejected(old: str, new: str) -> None:
    with pytest.raises(ProtocolError):
        parse_state(STATE_PACKET.replace(old, new))


# ---- hypothesis ----------------------------------------------------------------------------------

ints = st.integers(-(10**6), 10**6)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@st.composite
def telemetry_values(draw: st.DrawFn) -> tuple[dict[str, str], Telemetry]:
    values: dict[str, int | float] = {k: draw(ints) for k in REQUIRED_KEYS}
    for k in ("baro", "agx", "agy", "agz"):
        values[k] = draw(finite)
    raw = {k: str(v) for k, v in values.items()}
    pad: MissionPad | None = None
    if draw(st.booleans()):
        p = [draw(ints) for _ in range(7)]
        raw |= {
            "mid": str(p[0]),
            "x": str(p[1]),
            "y": str(p[2]),
            "z": str(p[3]),
            "mpry": f"{p[4]},{p[5]},{p[6]}",
        }
        pad = MissionPad(*p)
    expected = Telemetry(
        pitch_deg=int(values["pitch"]),
        roll_deg=int(values["roll"]),
        yaw_deg=int(values["yaw"]),
        vgx_dm_s=int(values["vgx"]),
        vgy_dm_s=int(values["vgy"]),
        vgz_dm_s=int(values["vgz"]),
        temp_low_c=int(values["templ"]),
        temp_high_c=int(values["temph"]),
        tof_cm=int(values["tof"]),
        height_cm=int(values["h"]),
        battery_pct=int(values["bat"]),
        baro_m=float(values["baro"]),
        motor_time_s=int(values["time"]),
        agx_mg=float(values["agx"]),
        agy_mg=float(values["agy"]),
        agz_mg=float(values["agz"]),
        mission_pad=pad,
    )
    return raw, expected


@settings(max_examples=200, deadline=None)
@given(telemetry_values(), st.randoms(use_true_random=False), st.sampled_from(["", ";", ";\r\n", "\r\n"]))
def test_keys_in_any_order_parse_to_the_same_telemetry(
    case: tuple[dict[str, str], Telemetry], rnd: object, ending: str
) -> None:
    raw, expected = case
    items = list(raw.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert parse_state(_join(items, ending)) == expected


@settings(max_examples=150, deadline=None)
@given(st.permutations(REQUIRED_KEYS + PAD_KEYS))
def test_reference_packet_in_any_key_order(order: list[str]) -> None:
    values = dict(_pairs(STATE_PACKET))
    assert parse_state(_join([(k, values[k]) for k in order])) == REFERENCE_TELEMETRY


@settings(max_examples=150, deadline=None)
@given(st.sets(st.sampled_from(REQUIRED_KEYS), min_size=1), st.permutations(REQUIRED_KEYS + PAD_KEYS))
def test_any_missing_required_key_is_named(missing: set[str], order: list[str]) -> None:
    values = dict(_pairs(STATE_PACKET))
    with pytest.raises(ProtocolError) as err:
        parse_state(_join([(k, values[k]) for k in order if k not in missing]))
    assert all(k in str(err.value) for k in missing)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_parse_state_returns_or_raises_protocol_error_on_any_text(text: str) -> None:
    try:
        t = parse_state(text)
    except ProtocolError:
        return
    assert isinstance(t, Telemetry)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_state_bytes_return_or_raise_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_state(decode_datagram(data))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*REQUIRED_KEYS, *PAD_KEYS, "", " ", "zz"]),
            st.one_of(ints.map(str), finite.map(str), st.text(max_size=8), st.just("1,2,3")),
        ),
        max_size=25,
    )
)
def test_key_value_soup_returns_or_raises_protocol_error(pairs: list[tuple[str, str]]) -> None:
    try:
        t = parse_state(_join(pairs))
    except ProtocolError:
        return
    keys = [k.strip() for k, _ in pairs]
    assert set(REQUIRED_KEYS) <= set(keys)
    assert len(keys) == len(set(keys))
    assert (t.mission_pad is None) == (not set(PAD_KEYS) & set(keys))
    assert math.isfinite(t.pitch_deg)
