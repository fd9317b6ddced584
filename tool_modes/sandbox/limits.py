"""What one `run_code` run may use. Every limit is enforced, and a run that hits one ends with
an error naming it (the `limit` key of `LIMIT_NAMES`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final

MIB: Final = 1024 * 1024

LIMIT_NAMES: Final = {
    "cpu": "script CPU time",
    "tool_wait": "tool-await time",
    "memory": "memory",
    "stack": "stack",
    "tool_calls": "tool calls",
    "output": "output size",
    "code_size": "code size",
    "never_settles": "never-settling promise",
}


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run budgets (the first six) and the worker processes' own confinement (the rest).

    The script's own execution and the time it spends awaiting tool calls are separate
    budgets: a takeoff alone takes 5-8 s and a 1 m square with landing about 30 s, so the
    lab's "15 s" bounds the JavaScript, while flying is bounded by `tool_wait_s`.
    """

    exec_s: float = 15.0
    """CPU seconds the script itself may run (QuickJS interrupt, RLIMIT_CPU as a backstop)."""
    tool_wait_s: float = 300.0
    """Wall-clock seconds the script may spend blocked on tool calls, summed over the run."""
    memory_bytes: int = 16 * MIB
    """The run's JavaScript heap."""
    stack_bytes: int = 256 * 1024
    """The run's JavaScript stack."""
    max_tool_calls: int = 100
    """Tool calls one run may make."""
    max_output_bytes: int = 256 * 1024
    """JSON of the whole result (result, logs, trace, error: cut to fit); also the cap on
    captured logs and on the JSON of the run's tool-call arguments, one call or all together
    (the server decodes and traces every one of them on its event loop)."""
    max_code_bytes: int = 100_000
    """Source size accepted."""
    worker_address_space_bytes: int = 1024 * MIB
    """RLIMIT_AS of each worker process (Python + engine + the run's heap)."""
    worker_nice: int = 0
    """Scheduling niceness of the workers. The server does not need it to stay punctual (it
    sleeps in epoll and the scheduler favours woken sleepers: a 100 ms timer fired at most
    ~8-15 ms late with 16 scripts spinning, at niceness 0 or 10 alike), while on a loaded
    machine every niceness step slows each pipe round trip (2.2 ms per run at 0, 5 ms at 5).
    Raise it where scripts must yield to other processes on the host."""
    unresponsive_s: float | None = None
    """Wall-clock seconds a computing worker may stay silent before it is killed; default
    2 x `exec_s` + 5 s (CPU time is at most wall time; the slack absorbs a loaded machine)."""

    def watchdog_s(self) -> float:
        return self.unresponsive_s if self.unresponsive_s is not None else 2 * self.exec_s + 5.0

    def for_worker(self) -> dict[str, float | int | None]:
        """The per-run part, as sent to the worker with each run."""
        return {
            key: value
            for key, value in asdict(self).items()
            if key
            in (
                "exec_s",
                "memory_bytes",
                "stack_bytes",
                "max_tool_calls",
                "max_output_bytes",
                "max_code_bytes",
            )
        }
