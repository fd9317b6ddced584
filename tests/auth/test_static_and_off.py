"""The static bearer-token mode, and access control off: identity from the remote address, the
rate limit still per client, and nothing asked of the caller."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import structlog

from servers.auth.settings import AccessSettings
from servers.drone.scopes import FLY
from tests.auth.harness import client, guarded
from tests.auth.keys import bearer
from tests.drone_server.harness import assert_nothing_sent, land_if_flying, mark, structured, text_of

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-static-token-for-tests"


async def test_static_token_mode(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    access = AccessSettings(token_file=str(token_file), static_scopes=("drone:read",))
    async with guarded(access) as served:
        since = mark(served.truth)
        async with httpx.AsyncClient(base_url=served.base, timeout=10) as http:
            for headers in ({}, bearer(TOKEN + "x"), bearer(TOKEN[:-1]), {"Authorization": f"Basic {TOKEN}"}):
                refused = await http.get("/drone-status", headers=headers)
                assert refused.status_code == 401, headers
                challenge = refused.headers["WWW-Authenticate"]
                assert challenge.startswith("Bearer ")
                assert "resource_metadata" not in challenge
            assert (await http.get("/drone-status", headers=bearer(TOKEN))).status_code == 200
            assert (await http.get("/.well-known/oauth-protected-resource")).status_code == 404  # no AS
        for mode in ("legacy", "2026-07-28"):
            async with client(served.url, TOKEN, mode) as holder:
                assert structured(await holder.call_tool("get_state"))["flight"] == "landed"
                refused = await holder.call_tool("takeoff")
                assert refused.is_error
                assert FLY in text_of(refused)
        assert_nothing_sent(served.truth, since)


async def test_off_identity_is_the_remote_address_and_the_limit_still_holds() -> None:
    async with guarded(AccessSettings(rate_limit_actions=1, rate_limit_window_s=600)) as served:
        try:
            with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
                async with client(served.url, None, "2026-07-28") as anyone:
                    assert not (await anyone.call_tool("takeoff")).is_error
                    since = mark(served.truth)
                    refused = await anyone.call_tool("move", {"direction": "up", "distance_cm": 20})
                    assert_nothing_sent(served.truth, since)
                    assert refused.is_error
                    retry = re.search(r"retry in (\d+) s", text_of(refused))
                    assert retry is not None, text_of(refused)
                    assert 590 <= int(retry.group(1)) <= 600, text_of(refused)
                    assert not (await anyone.call_tool("land")).is_error
        finally:
            await land_if_flying(served.runtime)
    takeoffs = [e for e in logs if e.get("event") == "tool_call" and e.get("tool") == "takeoff"]
    assert takeoffs, logs
    assert {e.get("client") for e in takeoffs} == {"127.0.0.1"}, takeoffs
