"""Token verifiers for the SDK's `BearerAuthBackend`: signed JWTs (PyJWT) and one static token.

Both implement the SDK's `TokenVerifier` protocol (`verify_token(token) -> AccessToken | None`):
`None` means "not a valid token here", which the SDK's middleware turns into a 401 with a
`WWW-Authenticate` header. Why a token was refused is logged (never the token itself).

The JWT verifier's keys come from a `KeySource`: a JWKS file (re-read when it changes on disk)
or a JWKS URL (fetched with a timeout and a size cap, cached for `jwks_cache_s`, fetched again
early when a token names a key id it does not know, but at most once per `MIN_REFETCH_S`, so
tokens with made-up key ids cannot turn the server into a JWKS-fetching loop).
"""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol, cast

import anyio
import httpx2
import jwt
import structlog
from mcp.server.auth.provider import AccessToken, TokenVerifier

from servers.auth.settings import ASYMMETRIC, DEFAULT_MAX_LIFETIME_S, AccessSettings

__all__ = [
    "JwksFile",
    "JwksUrl",
    "JwtVerifier",
    "KeySource",
    "StaticTokenVerifier",
    "scopes_of",
    "verifier_for",
]

_log = structlog.get_logger("auth.tokens")

STATIC_SUBJECT: Final = "static-token"
"""The client identity of whoever holds the static token."""

MIN_REFETCH_S: Final = 30.0
FETCH_TIMEOUT_S: Final = 5.0
MAX_JWKS_BYTES: Final = 256 * 1024

Jwk = Mapping[str, Any]


class KeySource(Protocol):
    async def keys(self, *, unknown_kid: bool = False) -> Sequence[Jwk]:
        """The current keys; `unknown_kid` says a token named a key id not among them."""
        ...


def _parse_jwks(raw: bytes, where: str) -> list[Jwk]:
    try:
        document: object = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{where}: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise TypeError(f"{where}: a JWKS is an object with a 'keys' list")
    keys = cast(dict[str, object], document).get("keys")
    if not isinstance(keys, list):
        raise TypeError(f"{where}: a JWKS is an object with a 'keys' list")
    return [cast(Jwk, k) for k in cast(list[object], keys) if isinstance(k, dict)]


class JwksFile:
    """A JWKS document on disk, read again whenever its modification time or size changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._keys: list[Jwk] = []
        self._load()  # a missing or broken file is a start-up error, not a 401 later

    def _load(self) -> None:
        stat = os.stat(self.path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        with open(self.path, "rb") as f:
            raw = f.read(MAX_JWKS_BYTES + 1)
        if len(raw) > MAX_JWKS_BYTES:
            raise ValueError(f"{self.path}: larger than {MAX_JWKS_BYTES} bytes")
        self._keys = _parse_jwks(raw, self.path)
        self._stamp = stamp
        _log.info("jwks_loaded", source=self.path, keys=len(self._keys))

    async def keys(self, *, unknown_kid: bool = False) -> Sequence[Jwk]:
        try:
            self._load()
        except (OSError, ValueError, TypeError) as exc:  # keep the last good keys
            _log.warning("jwks_reload_failed", source=self.path, error=str(exc))
        return self._keys


class JwksUrl:
    """A JWKS fetched over HTTP(S): cached, with bounded fetches (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        cache_s: float,
        timeout_s: float = FETCH_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.cache_s = cache_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._keys: list[Jwk] = []
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = anyio.Lock()

    def _due(self, now: float, unknown_kid: bool) -> bool:
        if self._tried_at is not None and now - self._tried_at < min(MIN_REFETCH_S, self.cache_s):
            return False  # fetched (or tried) moments ago: no second fetch, whatever the token says
        return self._fetched_at is None or unknown_kid or now - self._fetched_at >= self.cache_s

    async def keys(self, *, unknown_kid: bool = False) -> Sequence[Jwk]:
        if not self._due(self.clock(), unknown_kid):
            return self._keys
        async with self._lock:
            now = self.clock()
            if self._due(now, unknown_kid):
                self._tried_at = now
                try:
                    self._keys = await self._fetch()
                    self._fetched_at = now
                    _log.info("jwks_loaded", source=self.url, keys=len(self._keys))
                except (httpx2.HTTPError, ValueError, TypeError) as exc:
                    _log.warning("jwks_fetch_failed", source=self.url, error=str(exc) or type(exc).__name__)
        return self._keys

    async def _fetch(self) -> list[Jwk]:
        async with (
            httpx2.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as http,
            http.stream("GET", self.url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise ValueError(f"{self.url}: HTTP {response.status_code}")
            body = bytearray()
            with anyio.fail_after(self.timeout_s):
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise ValueError(f"{self.url}: larger than {MAX_JWKS_BYTES} bytes")
        return _parse_jwks(bytes(body), self.url)


def scopes_of(claims: Mapping[str, Any]) -> list[str]:
    """OAuth scopes from a JWT: `scope` (RFC 9068: space-separated) or `scp` (a list).

    Split on the space character only (RFC 6749 3.3: `scope-token *( SP scope-token )`):
    `str.split()` would also split on a tab or newline, so `"drone:read\tdrone:fly"` would
    grant two scopes where the authorization server issued one malformed one."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return [s for s in scope.split(" ") if s]
    scp = claims.get("scp")
    if isinstance(scp, list):
        return [s for s in cast(list[object], scp) if isinstance(s, str)]
    if isinstance(scp, str):
        return [s for s in scp.split(" ") if s]
    return []


class JwtVerifier(TokenVerifier):
    """JWTs signed by one of `source`'s keys, from `issuer`, for one of `audience`."""

    def __init__(
        self,
        source: KeySource,
        *,
        issuer: str,
        audience: Sequence[str],
        algorithms: Sequence[str] = ("RS256", "ES256"),
        leeway_s: float = 30.0,
        max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`max_lifetime_s`: the longest a token may live (`exp - iat`) and the furthest its
        `exp` may lie ahead, each plus the leeway: a stolen long-lived token stays a short risk."""
        unsafe = set(algorithms) - ASYMMETRIC
        if unsafe:
            raise ValueError(f"not public-key JWS algorithms: {', '.join(sorted(unsafe))}")
        self.source = source
        self.issuer = issuer
        self.audience = list(audience)
        self.algorithms = tuple(algorithms)
        self.leeway_s = leeway_s
        self.max_lifetime_s = max_lifetime_s
        self._clock = clock

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = await self._claims(token)
        except (jwt.PyJWTError, ValueError) as exc:
            _log.info("token_rejected", reason=str(exc) or type(exc).__name__)
            return None
        subject = str(claims["sub"])
        client = claims.get("client_id", claims.get("azp"))
        return AccessToken(
            token=token,
            client_id=str(client) if client is not None else subject,
            scopes=scopes_of(claims),
            # The SDK's backend checks `expires_at` against the clock again, without leeway.
            expires_at=int(claims["exp"] + self.leeway_s),
            subject=subject,
            claims=dict(claims),
        )

    async def _claims(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise ValueError(f"algorithm {alg!r} is not accepted (accepted: {', '.join(self.algorithms)})")
        kid = header.get("kid")
        jwk = _pick(await self.source.keys(), kid)
        if jwk is None and kid is not None:
            jwk = _pick(await self.source.keys(unknown_kid=True), kid)
        if jwk is None:
            raise ValueError(
                f"no key with id {kid!r}" if kid is not None else "no key id and not exactly one key"
            )
        if jwk.get("kty") == "oct" or jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
            raise ValueError(f"key {kid!r} is not a signing key for {alg}")
        key = jwt.PyJWK(dict(jwk), algorithm=str(alg))
        claims = jwt.decode(
            token,
            key=key.key,
            algorithms=[str(alg)],
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        self._check_lifetime(claims)
        return claims

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        limit = self.max_lifetime_s + self.leeway_s
        exp, iat = claims["exp"], claims.get("iat")  # numbers: `jwt.decode` checked both
        if isinstance(iat, int | float) and exp - iat > limit:
            raise ValueError(
                f"token lifetime {exp - iat:.0f} s (exp - iat) exceeds the maximum "
                f"{self.max_lifetime_s:.0f} s"
            )
        ahead = exp - self._clock()
        if ahead > limit:
            raise ValueError(
                f"token expires in {ahead:.0f} s, beyond the maximum lifetime {self.max_lifetime_s:.0f} s"
            )


def _pick(keys: Sequence[Jwk], kid: object) -> Jwk | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((k for k in keys if k.get("kid") == kid), None)


class StaticTokenVerifier(TokenVerifier):
    """One shared bearer token, compared in constant time, granting `scopes`."""

    def __init__(self, token: str, scopes: Sequence[str]) -> None:
        if not token:
            raise ValueError("the static bearer token is empty")
        self._token = token.encode()
        self.scopes = list(scopes)

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.encode(), self._token):
            _log.info("token_rejected", reason="not the static token")
            return None
        return AccessToken(token=token, client_id=STATIC_SUBJECT, scopes=self.scopes, subject=STATIC_SUBJECT)


def verifier_for(settings: AccessSettings) -> TokenVerifier | None:
    """The verifier `settings` ask for, or None with access control off."""
    if settings.mode == "static":
        return StaticTokenVerifier(settings.static_token(), settings.static_scopes)
    if settings.mode == "jwt":
        source: KeySource = (
            JwksFile(settings.jwks_file)
            if settings.jwks_file
            else JwksUrl(settings.jwks_url, cache_s=settings.jwks_cache_s)
        )
        return JwtVerifier(
            source,
            issuer=settings.issuer,
            audience=settings.audience,
            algorithms=settings.algorithms,
            leeway_s=settings.leeway_s,
            max_lifetime_s=settings.max_token_lifetime_s,
        )
    return None
