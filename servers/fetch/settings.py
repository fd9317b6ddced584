"""`FetchSettings`: who the fetcher says it is, what it may reach, and its caps."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import anyio

from servers.fetch.addresses import Allowlist, IPAddress, parse_ip_literal

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""(host name, port) -> the addresses to consider. Every one is checked; the first one is dialled."""

DEFAULT_USER_AGENT: Final = (
    "ModelContextProtocol/1.0 (Autonomous; +https://github.com/modelcontextprotocol/servers)"
)
"""The reference server's autonomous user agent, so robots.txt rules written for it apply to us."""

MiB: Final = 1024 * 1024


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The system resolver (getaddrinfo, in a worker thread via anyio), de-duplicated, in its order."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canonname, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]
        address = parse_ip_literal(text)
        if address is not None:
            found[address] = None
    return list(found)


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """Safe defaults: public internet only, robots.txt obeyed, bounded in bytes and time.

    `allow` lists networks (`127.0.0.1`, `10.0.0.0/8`, `::1`) and host names whose addresses
    are fetched despite the address rules: for tests and trusted deployments only.
    """

    user_agent: str = DEFAULT_USER_AGENT
    allow: tuple[str, ...] = ()
    robots_txt: bool = True
    max_redirects: int = 5
    max_response_bytes: int = 5 * MiB
    """Bytes on the wire (compressed), per response."""
    max_decompressed_bytes: int = 10 * MiB
    """Bytes after gzip/deflate decoding, per response; also bounds the extraction work."""
    max_robots_bytes: int = 512 * 1024
    total_timeout: float = 30.0
    """Seconds for the whole call: robots.txt, every redirect hop, every body."""
    connect_timeout: float = 10.0
    default_max_length: int = 5000
    resolver: Resolver = system_resolver
    ssl_context: ssl.SSLContext | None = None
    """TLS for https (default: the system trust store). It must verify certificates and host names."""
    allowlist: Allowlist = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.allow, str):
            raise TypeError("allow is a tuple of networks/host names, not a string")
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "allowlist", Allowlist.parse(self.allow))
        sizes = ("max_response_bytes", "max_decompressed_bytes", "max_robots_bytes", "default_max_length")
        for name in sizes:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")
        if self.total_timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.ssl_context is not None and (
            not self.ssl_context.check_hostname or self.ssl_context.verify_mode != ssl.CERT_REQUIRED
        ):
            raise ValueError("ssl_context must verify certificates and host names")
        if not self.user_agent.strip() or any(c in self.user_agent for c in "\r\n"):
            raise ValueError("user_agent must be one non-empty line")
