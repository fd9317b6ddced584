"""Fault injection: what WiFi and the real drone do to a client that a clean loopback never would.

One seeded RNG drives every random fault so a failing test replays exactly with its seed. The
object is deliberately mutable: a test flips `sim.faults.loss = 0.3` mid-flight to see the
client cope with a link that degrades, then restores it.

Semantics (all times on the simulator's clock):

* `loss`: probability that each incoming command datagram is dropped before the drone sees it,
  and, independently, that each outgoing reply datagram is dropped. State packets and video
  are not affected (use `state_dropout`).
* `delay_s` / `jitter_s`: every reply leaves after `delay_s + uniform(-jitter_s, +jitter_s)`
  (never negative) simulated seconds. Jitter can reorder replies, as on a real link.
* `dup`: probability that a reply is sent twice (both copies after the same delay).
* `emergency_silence`: probability that the drone does not answer `emergency` at all (the real
  one often does not; the motors stop either way).
* `reboot_after_s`: the drone reboots once, this long after the simulator started.
* `state_dropout`: no state packets at all while set.
* `lose_command` / `lose_reply`: a text prefix, one shot: the next command datagram starting
  with it is lost before the drone hears it, or the drone runs the next such command and its
  reply is lost. The switch clears itself once used (a test's precise "the move was lost").
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

_PROBABILITIES = frozenset({"loss", "dup", "emergency_silence"})
_DURATIONS = frozenset({"delay_s", "jitter_s"})


@dataclass
class Faults:
    loss: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    dup: float = 0.0
    emergency_silence: float = 0.5
    reboot_after_s: float | None = None
    state_dropout: bool = False
    lose_command: str | None = None
    lose_reply: str | None = None
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PROBABILITIES and not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        if name in _DURATIONS and float(value) < 0.0:
            raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
        if name == "reboot_after_s" and value is not None and float(value) < 0.0:
            raise ValueError(f"reboot_after_s must be >= 0 seconds, got {value!r}")
        super().__setattr__(name, value)

    def reseed(self, seed: int | None) -> None:
        """Restart the random sequence (e.g. at the start of each phase of a test)."""
        self.seed = seed
        self._rng = random.Random(seed)

    def _chance(self, p: float) -> bool:
        # No draw when the fault is off, so enabling one fault does not reshuffle the others'
        # sequence in a run where it stays off.
        return p > 0.0 and self._rng.random() < p

    def drop_command(self, text: str = "") -> bool:
        if self.lose_command is not None and text.startswith(self.lose_command):
            self.lose_command = None
            return True
        return self._chance(self.loss)

    def drop_reply(self, command_text: str = "") -> bool:
        """Whether the reply to `command_text` is lost."""
        if self.lose_reply is not None and command_text.startswith(self.lose_reply):
            self.lose_reply = None
            return True
        return self._chance(self.loss)

    def duplicate_reply(self) -> bool:
        return self._chance(self.dup)

    def silence_emergency(self) -> bool:
        return self._chance(self.emergency_silence)

    def reply_delay(self) -> float:
        if self.jitter_s <= 0.0:
            return self.delay_s
        return max(0.0, self.delay_s + self._rng.uniform(-self.jitter_s, self.jitter_s))


def parse_delay(text: str) -> tuple[float, float]:
    """`S` or `S:J` (simulated seconds) -> (delay, jitter), as given to `--delay`."""
    head, sep, tail = text.partition(":")
    try:
        delay = float(head)
        jitter = float(tail) if sep else 0.0
    except ValueError:
        raise ValueError(f"expected S or S:J in seconds, got {text!r}") from None
    if delay < 0 or jitter < 0:
        raise ValueError(f"delay and jitter must be >= 0, got {text!r}")
    return delay, jitter
