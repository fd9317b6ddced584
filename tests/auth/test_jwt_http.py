"""OAuth resource-server mode over HTTP: real RSA-signed JWTs, a real `mcp.Client` in both eras,
the simulator's ground truth as the judge of what reached the drone.

One app serves the module (JWT mode, rate limit 2 flight actions per hour); each test uses its
own token subjects, so limits and identities do not mix between tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import jwt
import pytest
import structlog
from mcp.shared.exceptions import MCPError
from mcp_types import TextResourceContents

from servers.auth.gate import METADATA_PATH
from servers.drone.scopes import ADMIN, EMERGENCY, FLY, READ
from tests.auth.harness import client, guarded, jwt_access
from tests.auth.keys import ISSUER, PILOT, READ_ONLY, Issuer, bearer
from tests.drone_server.harness import (
    Served,
    assert_nothing_sent,
    land_if_flying,
    mark,
    structured,
    text_of,
)
from tests.metrics.scrape import Scrape, scrape
from tests.support.eras import ACCEPT, ERAS, LEGACY_INIT

pytestmark = pytest.mark.anyio

RATE = 2
MCP_PATHS = ("/drone", "/drone-search", "/drone-code", "/drone-codesearch")


@pytest.fixture(scope="module")
async def served(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> AsyncGenerator[Served]:
    access = jwt_access(
        issuer, tmp_path_factory.mktemp("jwks"), rate_limit_actions=RATE, rate_limit_window_s=3600
    )
    async with guarded(access) as started:
        yield started


def _www_authenticate(response: httpx.Response) -> dict[str, str]:
    header = response.headers["WWW-Authenticate"]
    assert header.startswith("Bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


async def test_no_token_is_401_with_the_paths_resource_metadata(served: Served) -> None:
    since = mark(served.truth)
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as http:
        for path in MCP_PATHS:
            refused = await http.post(path, json=LEGACY_INIT, headers=ACCEPT)
            assert refused.status_code == 401, path
            challenge = _www_authenticate(refused)
            assert challenge["error"] == "invalid_token"
            assert challenge["resource_metadata"] == f"{served.base}{METADATA_PATH}{path}"
        for path in ("/drone-status", "/admin/drone-address"):
            refused = await http.get(path)
            assert refused.status_code == 401, path
            assert _www_authenticate(refused)["resource_metadata"] == f"{served.base}{METADATA_PATH}"
        for probe in ("/healthz", "/readyz"):
            assert (await http.get(probe)).status_code == 200, probe
    assert_nothing_sent(served.truth, since)


def _forged(issuer: Issuer) -> dict[str, str]:
    """Tokens that must each get 401, by what is wrong with them."""
    impostor = Issuer.generate(kind="EC", kid=issuer.kid)  # the same key id, another key
    good = issuer.token("mallory", PILOT)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raised = _b64(json.dumps({**claims, "scope": "drone:admin"}).encode()).decode()
    return {
        "wrong issuer": Issuer(issuer.key, issuer.kid, issuer.alg, issuer="https://evil.example").token(
            "mallory", PILOT
        ),
        "wrong audience": Issuer(issuer.key, issuer.kid, issuer.alg, audience="someone-else").token(
            "mallory", PILOT
        ),
        "expired beyond the leeway": issuer.token("mallory", PILOT, lifetime_s=-120),
        "not yet valid": issuer.token("mallory", PILOT, nbf=int(time.time()) + 600),
        "signed by another key": impostor.token("mallory", PILOT),
        "payload changed after signing": f"{header}.{raised}.{signature}",
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode()).decode()}.{payload}.",
        "HS256 keyed with the public JWK": _hs256(claims, json.dumps(issuer.jwk()).encode(), issuer.kid),
        "unknown key id": issuer.token("mallory", PILOT, headers={"kid": "nobody"}),
        "no subject": _without(issuer, "sub"),
        "no expiry": _without(issuer, "exp"),
        "not a JWT": "hello",
    }


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """The key-confusion attack, by hand (PyJWT itself refuses to sign with a public key)."""
    signing_input = b".".join(
        _b64(json.dumps(part).encode()) for part in ({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    )
    return (signing_input + b"." + _b64(hmac.new(secret, signing_input, hashlib.sha256).digest())).decode()


def _without(issuer: Issuer, claim: str) -> str:
    now = int(time.time())
    payload = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": "x",
        "exp": now + 300,
        "scope": "drone:fly",
    }
    del payload[claim]
    return jwt.encode(payload, issuer.key, algorithm=issuer.alg, headers={"kid": issuer.kid})


async def test_forged_expired_and_foreign_tokens_are_401(served: Served, issuer: Issuer) -> None:
    since = mark(served.truth)
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as http:
        for what, token in _forged(issuer).items():
            refused = await http.post("/drone", json=LEGACY_INIT, headers={**ACCEPT, **bearer(token)})
            assert refused.status_code == 401, what
            assert _www_authenticate(refused)["error"] == "invalid_token", what
        accepted = await http.post(
            "/drone", json=LEGACY_INIT, headers={**ACCEPT, **bearer(issuer.token("mallory"))}
        )
        assert accepted.status_code == 200
    assert_nothing_sent(served.truth, since)


async def test_protected_resource_metadata(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as http:
        for path in ("", *MCP_PATHS):
            response = await http.get(METADATA_PATH + path, headers={"Origin": "http://elsewhere.example"})
            assert response.status_code == 200, path
            document = response.json()
            assert document["resource"] == served.base + path
            assert document["authorization_servers"] == [ISSUER]
            assert document["bearer_methods_supported"] == ["header"]
            assert {READ, FLY, EMERGENCY} <= set(document["scopes_supported"])
            assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("mode", ERAS)
async def test_a_read_only_token_reads_but_cannot_fly(served: Served, issuer: Issuer, mode: str) -> None:
    async with client(served.url, issuer.token(f"reader-{mode}", READ_ONLY), mode) as reader:
        state = structured(await reader.call_tool("get_state"))
        assert state["flight"] == "landed"
        contents = (await reader.read_resource("drone://state")).contents
        assert isinstance(contents[0], TextResourceContents)
        assert json.loads(contents[0].text)
        since = mark(served.truth)
        for tool, scope in (("takeoff", FLY), ("emergency", EMERGENCY)):
            refused = await reader.call_tool(tool, {"confirm": True} if tool == "emergency" else {})
            assert refused.is_error
            text = text_of(refused)
            assert f"{tool} needs the {scope} scope" in text, text
            assert text.endswith("nothing was sent"), text
        assert_nothing_sent(served.truth, since)
    assert not served.runtime.link.is_flying()


@pytest.mark.parametrize("mode", ERAS)
async def test_search_mode_checks_the_inner_tools_scope(served: Served, issuer: Issuer, mode: str) -> None:
    async with client(
        f"{served.base}/drone-search", issuer.token(f"searcher-{mode}", READ_ONLY), mode
    ) as agent:
        read = await agent.call_tool("invoke_tool", {"name": "get_battery", "arguments": {}})
        assert not read.is_error, text_of(read)
        since = mark(served.truth)
        refused = await agent.call_tool("invoke_tool", {"name": "takeoff", "arguments": {}})
        assert refused.is_error
        assert "takeoff needs the drone:fly scope" in text_of(refused)
        assert_nothing_sent(served.truth, since)


async def test_the_mode_tools_take_drone_read(served: Served, issuer: Issuer) -> None:
    token = issuer.token("operator-modes", (ADMIN,))
    refused: list[tuple[str, str]] = []
    for path, tool, arguments in (
        ("/drone-search", "get_tool", {"query": "battery"}),
        ("/drone-search", "invoke_tool", {"name": "get_battery"}),
        ("/drone-code", "run_code", {"code": "await get_battery()"}),
        ("/drone-codesearch", "get_tool", {"query": "battery"}),
    ):
        async with client(f"{served.base}{path}", token, "legacy") as agent:
            since = mark(served.truth)
            result = await agent.call_tool(tool, arguments)
            assert_nothing_sent(served.truth, since)
        assert result.is_error, text_of(result)
        refused.append((tool, text_of(result)))
    assert refused == [
        (
            tool,
            f"{tool} needs the drone:read scope, which this client's token does not grant "
            f"(it grants: {ADMIN}); nothing was searched or run",
        )
        for tool in ("get_tool", "invoke_tool", "run_code", "get_tool")
    ]
    async with client(
        f"{served.base}/drone-search", issuer.token("reader-modes", READ_ONLY), "legacy"
    ) as agent:
        found = await agent.call_tool("get_tool", {"query": "battery"})
    assert not found.is_error, text_of(found)


@pytest.mark.parametrize("mode", ERAS)
async def test_code_mode_checks_each_inner_calls_scope(served: Served, issuer: Issuer, mode: str) -> None:
    script = "const s = await get_state(); await takeoff(); return s.flying;"
    async with client(f"{served.base}/drone-code", issuer.token(f"coder-{mode}", READ_ONLY), mode) as agent:
        since = mark(served.truth)
        result = await agent.call_tool("run_code", {"code": script})
        assert_nothing_sent(served.truth, since)
    report = json.loads(text_of(result).split("\n", 1)[-1])
    by_name = {entry["name"]: entry for entry in report["trace"]}
    assert by_name["get_state"]["outcome"] == "ok"
    assert by_name["takeoff"]["outcome"] == "error"
    assert "takeoff needs the drone:fly scope" in report["error"]  # the uncaught call's words, once
    assert not served.runtime.link.is_flying()


async def test_flight_actions_are_rate_limited_per_client(served: Served, issuer: Issuer) -> None:
    try:
        async with client(served.url, issuer.token("bob", PILOT), "2026-07-28") as bob:
            assert not (await bob.call_tool("takeoff")).is_error  # 1
            assert not (await bob.call_tool("move", {"direction": "up", "distance_cm": 20})).is_error  # 2
            since = mark(served.truth)
            refused = await bob.call_tool("rotate", {"direction": "clockwise", "degrees": 90})
            assert refused.is_error
            text = text_of(refused)
            retry = re.search(r"retry in (\d+) s", text)
            assert retry is not None, text
            assert 3500 <= int(retry.group(1)) <= 3600
            assert f"{RATE} flight actions per 3600 s" in text
            assert "nothing was sent" in text
            assert_nothing_sent(served.truth, since)
            # Another client has its own budget; a bad argument does not use it up.
            async with client(served.url, issuer.token("carol", PILOT), "legacy") as carol:
                bad = await carol.call_tool("rotate", {"direction": "clockwise", "degrees": 9000})
                assert bad.is_error
                assert "rate limit" not in text_of(bad)
                assert not (
                    await carol.call_tool("rotate", {"direction": "clockwise", "degrees": 90})
                ).is_error
                assert not (
                    await carol.call_tool("rotate", {"direction": "counter-clockwise", "degrees": 90})
                ).is_error
                assert "rate limit" in text_of(
                    await carol.call_tool("rotate", {"direction": "clockwise", "degrees": 90})
                )
            # Landing is never limited: a client at its limit can always bring the drone down.
            assert not (await bob.call_tool("land")).is_error
            # The flight log says who asked for what (the outcome comes from the link's receive
            # loop: the identity is the caller's, not that loop's).
            log = await bob.read_resource("drone://flight-log")
            assert isinstance(log.contents[0], TextResourceContents)
            entries = json.loads(log.contents[0].text)
            by_command = {(e["command"], e["client"]) for e in entries}
            asked = {("takeoff", "bob"), ("up 20", "bob"), ("cw 90", "carol"), ("ccw 90", "carol")}
            assert asked <= by_command
            assert ("land", "bob") in by_command
    finally:
        await land_if_flying(served.runtime)
    assert not served.runtime.link.is_flying()


async def test_refusals_that_sent_nothing_leave_the_rate_limit(served: Served, issuer: Issuer) -> None:
    try:
        async with client(served.url, issuer.token("dave", PILOT), "2026-07-28") as dave:
            await land_if_flying(served.runtime)
            since = mark(served.truth)
            for _ in range(RATE + 1):  # on the ground: the envelope refuses, nothing is sent
                refused = await dave.call_tool("move", {"direction": "up", "distance_cm": 20})
                assert refused.is_error
                assert "not flying" in text_of(refused)
                assert "rate limit" not in text_of(refused)
            assert_nothing_sent(served.truth, since)
            # The whole budget is still there: RATE actions fly, the next is limited.
            assert not (await dave.call_tool("takeoff")).is_error
            assert not (await dave.call_tool("move", {"direction": "up", "distance_cm": 20})).is_error
            limited = await dave.call_tool("move", {"direction": "up", "distance_cm": 20})
            assert "rate limit" in text_of(limited)
    finally:
        await land_if_flying(served.runtime)


async def test_auth_and_rate_limit_refusals_are_told_apart_in_metrics(served: Served, issuer: Issuer) -> None:
    """`tello_mcp_tool_calls_total` counts a call refused for a missing scope as `refused_auth`
    and one over the flight-action limit as `rate_limited`, not as a plain tool error."""

    def calls(s: Scrape, tool: str, outcome: str) -> float:
        return s.value("tello_mcp_tool_calls_total", path="/drone", tool=tool, outcome=outcome)

    before = await scrape(served.base)
    try:
        async with client(served.url, issuer.token("erin", READ_ONLY), "2026-07-28") as reader:
            assert (await reader.call_tool("takeoff")).is_error
        async with client(served.url, issuer.token("frank", PILOT), "2026-07-28") as pilot:
            assert not (await pilot.call_tool("takeoff")).is_error
            assert not (await pilot.call_tool("move", {"direction": "up", "distance_cm": 20})).is_error
            limited = await pilot.call_tool("move", {"direction": "up", "distance_cm": 20})
            assert "rate limit" in text_of(limited)
    finally:
        await land_if_flying(served.runtime)
    after = await scrape(served.base)
    assert calls(after, "takeoff", "refused_auth") - calls(before, "takeoff", "refused_auth") == 1
    assert calls(after, "move", "rate_limited") - calls(before, "move", "rate_limited") == 1
    assert calls(after, "move", "ok") - calls(before, "move", "ok") == 1


async def test_the_admin_route_needs_the_admin_scope(served: Served, issuer: Issuer) -> None:
    address = json.dumps({"host": "127.0.0.9"})
    before = served.runtime.link.drone_address
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as http:
        pilot = bearer(issuer.token("pilot", PILOT))
        refused = await http.post(
            "/admin/drone-address", content=address, headers={"Content-Type": "application/json", **pilot}
        )
        assert refused.status_code == 403
        assert _www_authenticate(refused)["error"] == "insufficient_scope"
        assert ADMIN in refused.json()["error_description"]
        assert served.runtime.link.drone_address == before
        admin = bearer(issuer.token("operator", (ADMIN,)))
        shown = await http.get("/admin/drone-address", headers=admin)
        assert shown.status_code == 200
        assert shown.json()["drone"] == before
        moved = await http.post(
            "/admin/drone-address", content=address, headers={"Content-Type": "application/json", **admin}
        )
        assert moved.status_code == 200
        assert served.runtime.link.drone_address.startswith("127.0.0.9:")
        host, port = before.rsplit(":", 1)
        back = await http.post("/admin/drone-address", json={"host": host, "port": int(port)}, headers=admin)
        assert back.status_code == 200
        assert served.runtime.link.drone_address == before
        status = await http.get("/drone-status", headers=pilot)
        assert status.status_code == 200


async def test_the_client_identity_is_in_every_log_line_of_a_call(served: Served, issuer: Issuer) -> None:
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with client(served.url, issuer.token("dave", READ_ONLY), "legacy") as dave:
            await dave.call_tool("get_battery")
            await dave.call_tool("takeoff")
    calls = [e for e in logs if e.get("event") == "tool_call" and e.get("tool") == "get_battery"]
    assert calls, logs
    assert {e.get("client") for e in calls} == {"dave"}, calls
    refusals = [e for e in logs if e.get("event") == "tool_refused"]
    assert refusals, logs
    assert {e.get("client") for e in refusals} == {"dave"}, refusals


@pytest.mark.parametrize("mode", ERAS)
async def test_a_token_without_drone_read_reads_nothing(served: Served, issuer: Issuer, mode: str) -> None:
    async with client(served.url, issuer.token(f"operator-{mode}", (ADMIN,)), mode) as operator:
        listed = {tool.name for tool in (await operator.list_tools()).tools}
        assert "get_state" in listed  # listing is not a read of the drone
        refused = await operator.call_tool("get_state")
        assert refused.is_error
        assert "get_state needs the drone:read scope" in text_of(refused)
        with pytest.raises(MCPError, match="drone:read"):
            await operator.read_resource("drone://state")
        # Documentation is open to any valid token.
        skill = await operator.read_resource("skill://drone-operations/SKILL.md")
        assert skill.contents
