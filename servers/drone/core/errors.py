"""The drone's error hierarchy: every failure a caller can see is one of these.

They are mapped to MCP tool results in exactly one place (`servers.drone.tools`), so the
wording a model reads is decided here, next to the condition that caused it.
"""

from __future__ import annotations

from typing import ClassVar


class DroneError(Exception):
    """Base class of everything the drone stack raises on purpose."""

    nothing_sent: ClassVar[bool] = False
    """True where the error means the action never reached the drone (refused before sending):
    such a call did nothing, so a per-client rate limit gives its count back."""


class OutOfRange(DroneError, ValueError):
    """A parameter outside the SDK's (or the safety envelope's) range. Nothing was sent."""

    nothing_sent = True

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}={value!r} is out of range: allowed {allowed}")


class ProtocolError(DroneError):
    """A datagram that does not have the form the SDK documents for it."""


class NotConnected(DroneError):
    """The link has no live drone to talk to, so nothing was sent."""

    nothing_sent = True


class ShuttingDown(NotConnected):
    """The server is shutting down and lands the drone: no new flight action is sent."""


class LinkBusy(DroneError):
    """Another command is on the wire; the SDK allows only one in flight."""

    nothing_sent = True


class CommandRejected(DroneError):
    """The drone answered with an error string (reported verbatim)."""

    def __init__(self, command: str, reply: str) -> None:
        self.command = command
        self.reply = reply
        super().__init__(f"drone rejected {command!r}: {reply!r}")


class CommandTimeout(DroneError):
    """A harmless (idempotent) command got no reply, even after its retries."""

    def __init__(self, command: str, attempts: int, waited_s: float) -> None:
        self.command = command
        self.attempts = attempts
        self.waited_s = waited_s
        super().__init__(f"no reply to {command!r} after {attempts} attempt(s) over {waited_s:.1f}s")


class OutcomeUnknown(DroneError):
    """A flight action got no reply in time. It is never re-sent. `verdict` says what the state
    stream proves about it (`servers.drone.core.verdict`): "executed", "did_not_start", "unknown"
    (None: not judged), with the `evidence`."""

    def __init__(
        self, command: str, waited_s: float, *, verdict: str | None = None, evidence: str | None = None
    ) -> None:
        self.command = command
        self.waited_s = waited_s
        self.verdict = verdict
        self.evidence = evidence
        head = f"no reply to {command!r} within {waited_s:.1f}s"
        match verdict:
            case "executed":
                text = (
                    f"{head}, but the state stream shows it ran: {evidence}. Verdict: executed. "
                    "It was NOT re-sent; do not send it again."
                )
            case "did_not_start":
                text = (
                    f"{head}, and the state stream shows it did not start: {evidence}. Verdict: did "
                    "not start. It was NOT re-sent; it is safe to send it again."
                )
            case _:
                seen = f" Telemetry: {evidence}." if evidence else ""
                text = (
                    f"{head}: outcome unknown, the drone may have executed it.{seen} It was NOT "
                    "re-sent. Check get_state before acting again."
                )
        super().__init__(text)


class Preempted(DroneError):
    """The command was overtaken by `emergency` or `stop` before its reply came."""

    def __init__(self, command: str, by: str) -> None:
        self.command = command
        self.by = by
        super().__init__(f"{command!r} was cancelled by {by!r} before it completed")


class SafetyViolation(DroneError):
    """The operator's safety envelope refuses this action. Nothing was sent.

    `limit` names the rule that refused it, from a fixed set (`max_height_cm`, `not_flying`,
    `operator_hold`, ...): what `/metrics` counts refusals by, never the message."""

    nothing_sent = True

    def __init__(self, message: str, *, limit: str = "other") -> None:
        super().__init__(message)
        self.limit = limit
