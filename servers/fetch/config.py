"""The fetcher's operator settings (`--fetch-*` flags, `TELLO_MCP_FETCH_*` variables) and its
suite component: `tello-mcp serve fetch` serves it at `/fetch`, stateless, so it scales out.

Defaults come from `FetchSettings`, so they are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from servers.config import SettingsGroup, default_of
from servers.fetch.server import build_fetch_server
from servers.fetch.settings import FetchSettings
from servers.http import Endpoint
from servers.suite import Component

FETCH_PATH: Final = "/fetch"


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """The resolved fetcher settings (see `FETCH` for what each one means)."""

    fetch_user_agent: str = default_of(FetchSettings, "user_agent")
    fetch_allow: tuple[str, ...] = default_of(FetchSettings, "allow")
    fetch_robots_txt: bool = default_of(FetchSettings, "robots_txt")
    fetch_max_redirects: int = default_of(FetchSettings, "max_redirects")
    fetch_max_response_bytes: int = default_of(FetchSettings, "max_response_bytes")
    fetch_max_decompressed_bytes: int = default_of(FetchSettings, "max_decompressed_bytes")
    fetch_total_timeout_s: float = default_of(FetchSettings, "total_timeout")
    fetch_connect_timeout_s: float = default_of(FetchSettings, "connect_timeout")
    fetch_max_length: int = default_of(FetchSettings, "default_max_length")

    def settings(self) -> FetchSettings:
        return FetchSettings(
            user_agent=self.fetch_user_agent,
            allow=self.fetch_allow,
            robots_txt=self.fetch_robots_txt,
            max_redirects=self.fetch_max_redirects,
            max_response_bytes=self.fetch_max_response_bytes,
            max_decompressed_bytes=self.fetch_max_decompressed_bytes,
            total_timeout=self.fetch_total_timeout_s,
            connect_timeout=self.fetch_connect_timeout_s,
            default_max_length=self.fetch_max_length,
        )


FETCH = SettingsGroup(
    "fetch (website fetcher)",
    FetchConfig,
    {
        "fetch_user_agent": "User-Agent sent, and matched against robots.txt rules",
        "fetch_allow": (
            "comma-separated networks/host names fetched despite the private-address rules "
            "(e.g. 10.0.0.0/8,intranet.example); empty: public internet only"
        ),
        "fetch_robots_txt": "obey robots.txt (off only for trusted, human-driven use)",
        "fetch_max_redirects": "redirects followed per fetch",
        "fetch_max_response_bytes": "largest response body on the wire, in bytes",
        "fetch_max_decompressed_bytes": "largest response body after gzip/deflate decoding, in bytes",
        "fetch_total_timeout_s": "seconds a whole fetch may take (robots.txt, redirects, body)",
        "fetch_connect_timeout_s": "seconds a TCP/TLS connect may take",
        "fetch_max_length": "default max_length of the fetch tool, in characters",
    },
)


def fetch_component(config: FetchConfig) -> Component:
    """The fetcher at `/fetch`: no lifespan, no readiness beyond serving, no state between calls."""
    settings = config.settings()
    server = build_fetch_server(settings)
    allowed = ",".join(settings.allow) or "public internet only"
    return Component(
        name="fetch",
        mounts={FETCH_PATH: Endpoint(server, stateless=True)},
        stdio=server,
        detail=f"{allowed}; robots.txt {'obeyed' if settings.robots_txt else 'ignored'}",
    )
