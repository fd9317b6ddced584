"""The long flight both bad-WiFi batteries fly (the core's in `tests/core`, the link's in
`tests/link`): short and long moves, rotations and `go`s, every text distinct so that each
step can be traced to the simulator's record of it."""

from __future__ import annotations

from servers.drone.core import commands
from servers.drone.core.commands import Command

SPEED = 20
"""cm/s: moves of 100-300 cm fly 5-15 s, far past the 5 s keepalive; lost ones wait longer."""

FLIGHT_PLAN: tuple[Command, ...] = (
    commands.move("up", 30, speed_cm_s=SPEED),
    commands.move("forward", 300, speed_cm_s=SPEED),
    commands.rotate("cw", 90),
    commands.move("left", 100, speed_cm_s=SPEED),
    commands.go(100, 50, 20, 40),
    commands.move("down", 30, speed_cm_s=SPEED),
    commands.rotate("ccw", 180),
    commands.move("back", 200, speed_cm_s=SPEED),
    commands.move("right", 60, speed_cm_s=SPEED),
    commands.move("up", 50, speed_cm_s=SPEED),
    commands.go(-100, 0, -20, 50),
    commands.rotate("cw", 45),
    commands.move("forward", 40, speed_cm_s=SPEED),
    commands.move("down", 40, speed_cm_s=SPEED),
    commands.move("left", 150, speed_cm_s=SPEED),
    commands.rotate("ccw", 90),
    commands.move("right", 80, speed_cm_s=SPEED),
    commands.go(0, 120, 30, 60),
    commands.move("back", 50, speed_cm_s=SPEED),
    commands.move("down", 35, speed_cm_s=SPEED),
    commands.rotate("cw", 30),
    commands.move("forward", 25, speed_cm_s=SPEED),
)
