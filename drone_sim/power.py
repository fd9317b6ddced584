"""Battery drain and motor heat: slow quantities that limit what a session can do.

Kept as pure functions of the flight state and accumulated motor time so the drone model can
integrate them exactly between events and predict when a threshold (low-battery landing, dead
battery) will be crossed instead of polling for it.
"""

from __future__ import annotations

import math

from drone_sim.config import DroneConfig
from drone_sim.flight import FlightState


def drain_pct_per_s(state: FlightState, config: DroneConfig) -> float:
    if state is FlightState.OFF:
        return 0.0
    if state.airborne:
        minutes = config.flight_minutes
    elif state is FlightState.MOTORS_ON:
        minutes = config.motors_idle_minutes
    else:
        minutes = config.standby_minutes
    return 100.0 / (minutes * 60.0) if minutes > 0 else math.inf


def temperatures_c(motor_time_s: float, config: DroneConfig) -> tuple[int, int]:
    """(lowest, highest) board temperature: rises towards `temp_hot_c` with motor time."""
    heat = 1.0 - math.exp(-motor_time_s / config.temp_time_constant_s)
    low = config.temp_base_c + (config.temp_hot_c - config.temp_base_c) * heat
    return round(low), round(low + config.temp_spread_c)


def reported_battery(level_pct: float) -> int:
    """The integer the drone reports: rounded up, so `set_battery(30)` reads back as 30."""
    return max(0, min(100, math.ceil(level_pct - 1e-9)))
