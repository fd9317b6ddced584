"""The JWT verifier's key sources: a JWKS file that changes on disk, and a JWKS URL served by a
real local HTTP server, whose fetches are counted (cached, bounded, refetched for a new key)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servers.auth.settings import AccessSettings
from servers.auth.tokens import MIN_REFETCH_S, JwksFile, JwksUrl, JwtVerifier, scopes_of, verifier_for
from servers.http import HttpSettings, serve
from tests.auth.keys import AUDIENCE, ISSUER, PILOT, Issuer

pytestmark = pytest.mark.anyio


@dataclass
class JwksServer:
    """Serves `document` at /jwks.json and counts the requests."""

    document: dict[str, Any]
    fetches: int = 0
    port: int = 0
    status: int = 200
    padding: int = 0
    log: list[str] = field(default_factory=list[str])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    async def endpoint(self, _: Request) -> Response:
        self.fetches += 1
        body = {**self.document, "padding": "x" * self.padding} if self.padding else self.document
        return JSONResponse(body, status_code=self.status)


@contextlib.asynccontextmanager
async def jwks_server(document: dict[str, Any]) -> AsyncGenerator[JwksServer]:
    jwks = JwksServer(document)
    app = Starlette(routes=[Route("/jwks.json", jwks.endpoint)])
    settings = HttpSettings(port=0, shutdown_timeout=1.0)
    async with anyio.create_task_group() as tg:
        jwks.port = await tg.start(serve, app, settings)
        yield jwks
        tg.cancel_scope.cancel()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(source: JwksFile | JwksUrl, **overrides: Any) -> JwtVerifier:
    return JwtVerifier(source, issuer=ISSUER, audience=[AUDIENCE], **overrides)


async def test_a_jwks_url_is_cached_and_refetched_boundedly_for_a_new_key(issuer: Issuer) -> None:
    clock = Clock()
    async with jwks_server(issuer.jwks()) as served:
        check = verifier(JwksUrl(served.url, cache_s=300, clock=clock))
        for _ in range(3):
            accepted = await check.verify_token(issuer.token("erin", PILOT))
            assert accepted is not None
            assert accepted.subject == "erin"
            assert accepted.scopes == list(PILOT)
        assert served.fetches == 1
        # The authorization server rotates to a new key: tokens with its id fetch again, but at
        # most once per MIN_REFETCH_S however many arrive.
        rotated = Issuer.generate(kind="EC", kid="test-key-2")
        served.document = {"keys": [issuer.jwk(), rotated.jwk()]}
        for _ in range(5):
            assert await check.verify_token(rotated.token("erin")) is None
        assert served.fetches == 1
        clock.now += MIN_REFETCH_S + 1
        assert await check.verify_token(rotated.token("erin")) is not None
        assert served.fetches == 2
        # Past the cache time the keys are fetched again; a failed fetch keeps the last good keys
        # (were the failed answers taken, the first key would be gone).
        served.document = {"keys": [rotated.jwk()]}
        served.status = 500
        clock.now += 301
        assert await check.verify_token(issuer.token("erin")) is not None
        assert served.fetches == 3
        # An oversized document is refused, not read whole.
        served.status, served.padding = 200, 300 * 1024
        clock.now += 301
        assert await check.verify_token(issuer.token("erin")) is not None
        assert served.fetches == 4


async def test_a_jwks_file_is_read_again_when_it_changes(issuer: Issuer, tmp_path: Path) -> None:
    path = issuer.write_jwks(tmp_path / "jwks.json")
    check = verifier(JwksFile(str(path)))
    assert await check.verify_token(issuer.token()) is not None
    rotated = Issuer.generate(kind="EC", kid="test-key-2")
    assert await check.verify_token(rotated.token()) is None
    path.write_text(json.dumps({"keys": [rotated.jwk()]}) + " " * 8, encoding="utf-8")
    assert await check.verify_token(rotated.token()) is not None
    assert await check.verify_token(issuer.token()) is None


async def test_leeway_and_scope_claims(issuer: Issuer, tmp_path: Path) -> None:
    path = issuer.write_jwks(tmp_path / "jwks.json")
    lenient = verifier(JwksFile(str(path)), leeway_s=60)
    strict = verifier(JwksFile(str(path)), leeway_s=0)
    just_expired = issuer.token(lifetime_s=-10)
    assert await lenient.verify_token(just_expired) is not None
    assert await strict.verify_token(just_expired) is None
    assert scopes_of({"scp": ["drone:read", 7, "drone:fly"]}) == ["drone:read", "drone:fly"]
    assert scopes_of({"scope": "drone:read  drone:fly"}) == ["drone:read", "drone:fly"]
    assert scopes_of({}) == []


JWT: dict[str, Any] = {"jwks_file": "k.json", "issuer": ISSUER, "audience": (AUDIENCE,)}


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"jwks_file": "k.json", "issuer": ISSUER}, "auth_audience"),
        ({"jwks_file": "k.json", "audience": (AUDIENCE,)}, "auth_issuer"),
        ({**JWT, "algorithms": ("HS256",)}, "public-key"),
        ({**JWT, "jwks_url": "https://x.example/jwks"}, "not both"),
        ({**JWT, "token": "t"}, "exclude each other"),
        ({**JWT, "leeway_s": 3600.0}, "leeway"),
        ({"jwks_url": "file:///etc/passwd", "issuer": ISSUER, "audience": (AUDIENCE,)}, "http"),
        ({"rate_limit_actions": -1}, "rate limit"),
    ],
)
def test_settings_refuse_what_would_be_unsafe_or_ambiguous(bad: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        AccessSettings(**bad)


def test_off_by_default_and_a_missing_key_file_fails_at_start_up(tmp_path: Path) -> None:
    assert AccessSettings().mode == "off"
    assert verifier_for(AccessSettings()) is None
    with pytest.raises(FileNotFoundError):  # a missing JWKS file fails at start-up, not per request
        verifier_for(
            AccessSettings(jwks_file=str(tmp_path / "missing.json"), issuer=ISSUER, audience=(AUDIENCE,))
        )


async def test_a_tab_or_newline_in_the_scope_claim_does_not_make_two_scopes(
    issuer: Issuer, tmp_path: Path
) -> None:
    check = verifier(JwksFile(str(issuer.write_jwks(tmp_path / "jwks.json"))))
    for sep in ("\t", "\n", "\r", "\x0b"):
        access = await check.verify_token(issuer.token(scope=f"drone:read{sep}drone:fly"))
        assert access is not None
        assert access.scopes == [f"drone:read{sep}drone:fly"]
    assert scopes_of({"scp": "drone:read\tdrone:fly drone:admin"}) == ["drone:read\tdrone:fly", "drone:admin"]


async def test_a_token_living_longer_than_the_maximum_is_refused(issuer: Issuer, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    check = verifier(JwksFile(str(jwks)), max_lifetime_s=3600, leeway_s=30)
    now = int(time.time())
    within = issuer.token("erin", PILOT, lifetime_s=3600)
    assert await check.verify_token(within) is not None
    # Issued long ago, still valid by `exp`: its lifetime gives it away.
    old = issuer.token("erin", PILOT, iat=now - 7000, exp=now + 600)
    assert await check.verify_token(old) is None
    # No `iat` to compare with: `exp` two hours ahead is beyond the maximum.
    far = issuer.token("erin", PILOT, lifetime_s=7200, iat=None)
    assert await check.verify_token(far) is None
    assert await check.verify_token(issuer.token("erin", PILOT, lifetime_s=3620, iat=None)) is not None


def test_the_maximum_token_lifetime_is_a_day_by_default_and_must_be_positive(
    issuer: Issuer, tmp_path: Path
) -> None:
    jwks = str(issuer.write_jwks(tmp_path / "jwks.json"))
    settings = AccessSettings(jwks_file=jwks, issuer=ISSUER, audience=(AUDIENCE,))
    made = verifier_for(settings)
    assert isinstance(made, JwtVerifier)
    assert made.max_lifetime_s == 24 * 3600
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="maximum token lifetime"):
            AccessSettings(jwks_file="k.json", issuer=ISSUER, audience=(AUDIENCE,), max_token_lifetime_s=bad)
