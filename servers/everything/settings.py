"""The few knobs of the "everything" demo server."""

from __future__ import annotations

from dataclasses import dataclass

from servers.config import SettingsGroup


@dataclass(frozen=True, slots=True)
class EverythingSettings:
    """Timings and sizes; the defaults match the reference TypeScript server where it has one."""

    long_running_duration_s: float = 10.0
    """Default total duration of `trigger-long-running-operation` (the caller may pass its own)."""
    long_running_steps: int = 5
    """Default number of progress steps of `trigger-long-running-operation`."""
    max_long_running_duration_s: float = 300.0
    """Longest operation a caller may ask for: a demo must not pin a worker for hours."""
    research_stage_s: float = 1.0
    """Duration of each of the four stages of `simulate-research-query`."""
    page_size: int = 10
    """Items per page of `resources/list`."""
    listed_resources: int = 100
    """Dynamic text resources listed by `resources/list`, so that the list needs paging."""
    max_gzip_input_bytes: int = 64 * 1024
    """Largest input `gzip-file-as-resource` compresses."""
    max_link_payload_bytes: int = 4 * 1024
    """Largest compressed payload a `gzip-file-as-resource` resource link may carry in its URI."""
    request_state_keys: tuple[str, ...] = ()
    """Shared keys sealing 2026-07-28 `requestState` (multi-round calls), so that any replica can
    continue a call another one started. Empty: a random per-process key (one replica only)."""

    def __post_init__(self) -> None:
        if self.long_running_steps < 1:
            raise ValueError("long_running_steps must be at least 1")
        if self.long_running_duration_s < 0 or self.research_stage_s < 0:
            raise ValueError("durations cannot be negative")
        if self.long_running_duration_s > self.max_long_running_duration_s:
            raise ValueError("long_running_duration_s exceeds max_long_running_duration_s")
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.listed_resources < 0:
            raise ValueError("listed_resources cannot be negative")
        if isinstance(self.request_state_keys, str):
            raise TypeError("request_state_keys is a tuple of strings, not a string")


EVERYTHING = SettingsGroup(
    "everything (demo server)",
    EverythingSettings,
    {
        "page_size": "items per page of resources/list on the everything server",
        "max_long_running_duration_s": "longest long-running operation (s) the everything server accepts",
        "request_state_keys": (
            "comma-separated keys sealing 2026-07-28 request state, the same on every replica of the "
            "everything server (a secret: set it from one); empty: a per-process key"
        ),
    },
)
