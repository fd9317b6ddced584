"""Every way a fetch can fail, in one small hierarchy mapped to `isError` results in one place.

FetchError              anything the model should read as a failed fetch
├── Refused             a safety rule said no; `rule` names it (see the README's safety table)
│   ├── AddressRefused  the URL, its scheme, or an address its host resolves to
│   ├── RobotsRefused   the site's robots.txt disallows autonomous fetching of the URL
│   └── LimitExceeded   a cap: redirects, response bytes, decompressed bytes, time
└── FetchFailed         no page: DNS, connection, TLS, HTTP error status, or not text
"""

from __future__ import annotations

from enum import StrEnum


class Rule(StrEnum):
    """The safety rules, by the name a refusal carries."""

    INVALID_URL = "invalid-url"
    SCHEME = "scheme"
    CREDENTIALS = "credentials"
    CLOUD_METADATA = "cloud-metadata"
    UNSPECIFIED = "unspecified"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    MULTICAST = "multicast"
    RESERVED = "reserved"
    PRIVATE = "private"
    NON_GLOBAL = "non-global"
    ROBOTS = "robots.txt"
    REDIRECTS = "redirect-limit"
    RESPONSE_SIZE = "response-size"
    DECOMPRESSED_SIZE = "decompressed-size"
    CONNECT_TIME = "connect-time"
    TOTAL_TIME = "total-time"


class FetchError(Exception):
    """A fetch that did not produce a page; the message is written for the model."""


class Refused(FetchError):
    """A safety rule refused the fetch; `rule` says which."""

    def __init__(self, rule: Rule, detail: str) -> None:
        super().__init__(f"Refused by rule '{rule}': {detail}")
        self.rule = rule
        self.detail = detail


class AddressRefused(Refused):
    """The URL may not be fetched: bad URL or scheme, or a forbidden address (before connecting)."""


class RobotsRefused(Refused):
    def __init__(self, detail: str) -> None:
        super().__init__(Rule.ROBOTS, detail)


class LimitExceeded(Refused):
    """A cap was hit; the fetch was abandoned and nothing of the response is returned."""


class FetchFailed(FetchError):
    """No page: name not found, connection or TLS failure, HTTP error status, or a binary body."""
