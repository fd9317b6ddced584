"""Random interleavings of callers, faults and time never run a flight action twice.

Several callers share the link at once (each command is its own task; an `Await` step lets
the batch finish), the WiFi degrades and recovers between them, and time passes while
commands are in flight. Whatever happens, the simulator must never have received or run a
non-idempotent command more often than callers sent it, every call must end, and every error
must be a documented one (`Rig.call` checks each).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drone_sim import Faults
from servers.drone.core import commands
from servers.drone.core.commands import Command
from tests.link.rig import Rig, at_most_once_problems, make_rig

pytestmark = pytest.mark.virtual_time

KINDS = ("move", "rotate", "read", "land", "stop", "emergency", "takeoff")


@dataclass(frozen=True)
class Cmd:
    kind: str


@dataclass(frozen=True)
class Await:
    pass


@dataclass(frozen=True)
class Fault:
    loss: float
    dup: float
    delay_s: float


@dataclass(frozen=True)
class Elapse:
    seconds: float


Step = Cmd | Await | Fault | Elapse

faults_strategy = st.builds(
    Fault,
    st.sampled_from((0.0, 0.3, 0.6)),
    st.sampled_from((0.0, 0.5)),
    st.sampled_from((0.0, 0.3, 1.5)),  # 1.5 s: replies come after a read's timeout
)
steps_strategy = st.tuples(
    faults_strategy,  # the WiFi as the session starts
    st.lists(
        st.one_of(
            st.builds(Cmd, st.sampled_from(KINDS)),
            st.builds(Cmd, st.sampled_from(("move", "move", "rotate", "read"))),
            st.just(Await()),
            faults_strategy,
            st.builds(Elapse, st.sampled_from((0.2, 1.0, 3.0))),
        ),
        min_size=3,
        max_size=12,
    ),
).map(lambda pair: [pair[0], *pair[1]])


def _builder() -> Iterator[dict[str, Command]]:
    """Per kind, a fresh command each time; moves and rotations get unique texts."""
    reads = itertools.cycle(("battery?", "height?", "attitude?", "tof?", "speed?"))
    directions = itertools.cycle(("forward", "right", "back", "left", "up", "down"))
    for n in itertools.count():
        yield {
            "move": commands.move(next(directions), 20 + n, speed_cm_s=100),
            "rotate": commands.rotate("cw" if n % 2 else "ccw", 5 + n),
            "read": commands.query(next(reads)),
            "land": commands.simple("land"),
            "stop": commands.simple("stop"),
            "emergency": commands.simple("emergency"),
            "takeoff": commands.simple("takeoff"),
        }


async def _play(rig: Rig, steps: list[Step]) -> None:
    build = _builder()
    i = 0
    while i < len(steps):
        async with anyio.create_task_group() as batch:
            while i < len(steps) and not isinstance(steps[i], Await):
                match steps[i]:
                    case Cmd(kind=kind):
                        batch.start_soon(functools.partial(rig.call, next(build)[kind], bound_s=600.0))
                        await anyio.lowlevel.checkpoint()  # let it reach the link in order
                    case Fault(loss=loss, dup=dup, delay_s=delay):
                        rig.sim.faults.loss, rig.sim.faults.dup, rig.sim.faults.delay_s = loss, dup, delay
                    case Elapse(seconds=seconds):
                        await rig.elapse(seconds)
                    case _:
                        pass
                i += 1
        i += 1


@pytest.mark.anyio
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps_strategy, seed=st.integers(0, 2**16))
async def test_no_interleaving_runs_a_flight_action_twice(
    anyio_backend: str, steps: list[Step], seed: int
) -> None:
    async with make_rig(speedup=40.0, faults=Faults(seed=seed)) as rig:
        assert (await rig.call(commands.simple("takeoff"))).ok
        await _play(rig, steps)
        rig.faults_off()
        problems = at_most_once_problems(rig.sim, rig.calls)
        assert not problems, "\n".join(problems)
