"""drone_sim is a program of its own: it runs with the servers (and the tool modes) absent.

A djitellopy user can take the simulator alone. The check runs a fresh interpreter in which
importing `servers` or `tool_modes` fails, starts the simulator there on loopback, and flies a
`command` / `battery?` exchange against it over UDP.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import importlib.abc, socket, sys

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("servers", "tool_modes"):
                raise ModuleNotFoundError(f"{name} is absent in this test", name=name)
            return None

    sys.meta_path.insert(0, Absent())

    import anyio
    from drone_sim import DroneSimulator, SimConfig
    from tello_io.clock import ScaledClock

    async def main():
        config = SimConfig(host="127.0.0.1", port=0, state_port=0)
        async with DroneSimulator(config, clock=ScaledClock(1), video=None) as sim:
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.settimeout(10)
            replies = []
            for text in (b"command", b"battery?"):
                client.sendto(text, sim.address)
                replies.append(await anyio.to_thread.run_sync(client.recvfrom, 64))
            client.close()
        loaded = sorted({m.split(".")[0] for m in sys.modules} & {"servers", "tool_modes"})
        print([r[0].decode() for r in replies], loaded)

    anyio.run(main)
    """
)


def test_the_simulator_runs_without_the_servers() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    replies, loaded = done.stdout.strip().rsplit(" ", 1)
    assert replies.startswith("['ok', '"), done.stdout
    assert loaded == "[]"
