"""`AccessSettings`: who may call the suite over HTTP, with which scopes, how often.

Off by default (the embedded localhost run). Three ways in:

* JWT mode (an OAuth 2.1 resource server): `jwks_file` or `jwks_url` set. Tokens are JWTs
  signed by the authorization server `issuer`, for one of `audience`, checked against its
  published keys with a bounded clock skew.
* Static mode: `token` or `token_file` set. One shared bearer token, compared in constant
  time, granting `static_scopes`: for a single operator or a gateway that authenticates
  callers itself.
* Off: neither. Every call is allowed; the client identity is the remote address.

The per-client rate limit on flight actions works in every mode (`rate_limit_actions`, 0 off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlparse

__all__ = ["DEFAULT_MAX_LIFETIME_S", "MAX_LEEWAY_S", "AccessMode", "AccessSettings"]

MAX_LEEWAY_S: Final = 300.0
"""The largest clock skew accepted as a setting: more would keep expired tokens alive."""

DEFAULT_MAX_LIFETIME_S: Final = 24 * 3600.0
"""The longest a JWT may live unless configured otherwise: a day, so a leaked token of an
authorization server that issues year-long tokens is still refused."""

ASYMMETRIC: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""The JWS algorithms a resource server may accept: public-key ones only (an HMAC key would
have to be shared with every resource server, and its JWK is a secret)."""

AccessMode = Literal["off", "jwt", "static"]


@dataclass(frozen=True, slots=True)
class AccessSettings:
    """Access control for every HTTP endpoint but the probes (see the module docstring)."""

    jwks_file: str = ""
    """A JWKS document (`{"keys": [...]}`) on disk: the authorization server's public keys."""
    jwks_url: str = ""
    """Where the authorization server publishes its JWKS (fetched with a timeout, cached)."""
    issuer: str = ""
    """The `iss` every token must carry (JWT mode); also the authorization server advertised in
    the protected-resource metadata."""
    audience: tuple[str, ...] = ()
    """Accepted `aud` values: a token must name at least one (JWT mode)."""
    resource_url: str = ""
    """This server's public base URL (`https://mcp.example`), for the protected-resource
    metadata; empty: derived from each request's scheme and Host."""
    leeway_s: float = 30.0
    """Clock skew tolerated on `exp`/`nbf`/`iat`, at most `MAX_LEEWAY_S`."""
    max_token_lifetime_s: float = DEFAULT_MAX_LIFETIME_S
    """The longest a JWT may live (`exp - iat`) and the furthest ahead its `exp` may be."""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    jwks_cache_s: float = 300.0
    """Seconds a fetched JWKS is used before it is fetched again."""
    token: str = ""
    """The static bearer token (prefer `token_file`, or the environment, to a command line)."""
    token_file: str = ""
    static_scopes: tuple[str, ...] = ("drone:read", "drone:fly", "drone:emergency", "drone:admin")
    """Scopes the static token grants."""
    admin_scope: str = "drone:admin"
    """Scope an `/admin/...` route needs."""
    rate_limit_actions: int = 0
    """Flight actions one client may start per window (0: no limit)."""
    rate_limit_window_s: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.audience, str) or isinstance(self.algorithms, str):
            raise TypeError("audience/algorithms are tuples of strings, not a string")
        if not (math.isfinite(self.leeway_s) and 0 <= self.leeway_s <= MAX_LEEWAY_S):
            raise ValueError(
                f"auth leeway must be between 0 and {MAX_LEEWAY_S:g} seconds, got {self.leeway_s!r}"
            )
        if not (math.isfinite(self.max_token_lifetime_s) and self.max_token_lifetime_s > 0):
            raise ValueError(
                "maximum token lifetime must be a positive number of seconds, "
                f"got {self.max_token_lifetime_s!r}"
            )
        if not (math.isfinite(self.jwks_cache_s) and self.jwks_cache_s > 0):
            raise ValueError(
                f"JWKS cache time must be a positive number of seconds, got {self.jwks_cache_s!r}"
            )
        if self.rate_limit_actions < 0:
            raise ValueError("rate limit actions must be 0 (off) or positive")
        if not (math.isfinite(self.rate_limit_window_s) and self.rate_limit_window_s > 0):
            raise ValueError(
                f"rate limit window must be a positive number of seconds, got {self.rate_limit_window_s!r}"
            )
        jwt_on = bool(self.jwks_file or self.jwks_url)
        static_on = bool(self.token or self.token_file)
        if self.jwks_file and self.jwks_url:
            raise ValueError("set one of auth_jwks_file and auth_jwks_url, not both")
        if self.token and self.token_file:
            raise ValueError("set one of auth_token and auth_token_file, not both")
        if jwt_on and static_on:
            raise ValueError(
                "JWT (auth_jwks_*) and static-token (auth_token*) access control exclude each other"
            )
        if jwt_on:
            if urlparse(self.issuer).scheme not in ("http", "https"):
                raise ValueError(
                    f"JWT mode needs auth_issuer, the tokens' iss, as an http(s) URL (got {self.issuer!r})"
                )
            if not self.audience:
                raise ValueError("JWT access control needs auth_audience (what the tokens' aud must name)")
            unsafe = [a for a in self.algorithms if a not in ASYMMETRIC]
            if unsafe or not self.algorithms:
                raise ValueError(
                    f"auth_algorithms must be public-key JWS algorithms ({', '.join(sorted(ASYMMETRIC))}), "
                    f"got {', '.join(self.algorithms) or 'none'}"
                )
        if self.jwks_url and urlparse(self.jwks_url).scheme not in ("http", "https"):
            raise ValueError(f"auth_jwks_url must be an http(s) URL, got {self.jwks_url!r}")
        if self.resource_url and urlparse(self.resource_url).scheme not in ("http", "https"):
            raise ValueError(f"auth_resource_url must be an http(s) URL, got {self.resource_url!r}")

    @property
    def mode(self) -> AccessMode:
        if self.jwks_file or self.jwks_url:
            return "jwt"
        if self.token or self.token_file:
            return "static"
        return "off"

    def static_token(self) -> str:
        """The static token, read from `token_file` if that is where it is (whitespace stripped)."""
        text = Path(self.token_file).read_text(encoding="utf-8") if self.token_file else self.token
        token = text.strip()
        if not token:
            raise ValueError("the static bearer token is empty")
        return token
