"""Everything that makes one simulated drone differ from another, with realistic defaults.

Values are simulated seconds, centimetres and percent. Timings follow field reports of the
Tello/RMTT (takeoff ~5-6 s to ~80 cm, land ~3 s, flips ~2 s, ~13 min of flight per battery);
tests shorten them through a faster `ScaledClock`, never by editing physics.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DroneConfig:
    # Identity, as answered to `sn?`, `hardware?`, `sdk?`, `wifi?`.
    serial: str = "0TQDG7REDACTED"
    hardware: str = "RMTT"
    sdk_version: str = "30"
    wifi_snr: int = 90

    initial_battery_pct: float = 100.0
    mission_pad_fields: bool = True
    """Include `mid;x;y;z;mpry` in state packets (present only in some modes on real drones)."""
    keepalive_supported: bool = False
    """Some firmware answers `keepalive` with an error: by default it is an unknown command, so
    clients must use `command` as their heartbeat."""

    # Flight timings.
    takeoff_s: float = 5.5
    takeoff_spinup_s: float = 2.0
    takeoff_height_cm: float = 80.0
    land_speed_cm_s: float = 50.0
    land_overhead_s: float = 1.5
    default_speed_cm_s: float = 100.0
    move_overhead_s: float = 1.0
    rotation_rate_deg_s: float = 90.0
    rotate_overhead_s: float = 0.5
    flip_s: float = 2.0
    reboot_s: float = 4.0
    min_height_cm: float = 20.0
    """Moves, curves and `rc` never take the drone lower than this while flying."""
    rc_max_speed_cm_s: float = 100.0
    rc_max_yaw_rate_deg_s: float = 100.0

    # Link timers (the real drone's, on the simulated clock).
    idle_timeout_s: float = 15.0
    """Leave SDK mode (stop state packets, ignore all but `command`) after this long without a command."""
    auto_land_after_s: float = 15.0
    """Land on its own after this long without a command while hovering."""

    # Power and heat.
    flight_minutes: float = 13.0
    """Minutes of flight from 100 % to 0 %."""
    motors_idle_minutes: float = 40.0
    standby_minutes: float = 90.0
    low_battery_land_pct: float = 5.0
    min_takeoff_battery_pct: float = 10.0
    min_flip_battery_pct: float = 50.0
    temp_base_c: float = 60.0
    temp_hot_c: float = 85.0
    temp_spread_c: float = 2.0
    temp_time_constant_s: float = 120.0

    # Sensors.
    baro_ground_m: float = 220.0
    tof_range_cm: float = 800.0
    """Beyond this the downward ToF is out of range: state `tof:6553`, `tof?` -> `8190mm`."""
    ext_tof_mm: int = 8190
    """What the RMTT module's forward ToF reads (`EXT tof?`): 8190 = nothing in range."""
    accel_at_rest_mg: tuple[float, float, float] = (-3.0, 1.0, -999.0)
