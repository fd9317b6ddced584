"""The scope map as data (every drone tool named in it), and the settings that turn access
control on (flags, `TELLO_MCP_*` variables, the CLI's usage errors)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.server.mcpserver import MCPServer

from servers.auth.ratelimit import RateLimiter
from servers.auth.scopes import declare_scopes, policy_of
from servers.cli import main
from servers.config import SERVE
from servers.drone.runtime import DroneRuntime
from servers.drone.scopes import ADMIN, DRONE_SCOPES, EMERGENCY, FLY, READ
from servers.drone.server import build_drone_server
from tests.auth.keys import AUDIENCE, ISSUER

pytestmark = pytest.mark.anyio


async def test_every_drone_tool_has_its_own_entry_and_the_issue_s_scopes() -> None:
    server, _ = build_drone_server(DroneRuntime())  # building opens nothing
    assert policy_of(server) is DRONE_SCOPES
    served = {tool.name for tool in await server.list_tools()}
    assert served == set(DRONE_SCOPES.tools), "a drone tool without an entry in servers/drone/scopes.py"
    by_scope = {
        READ: {"get_state", "get_battery", "get_sensor", "capture_photo", "deck_snapshot"},
        FLY: {
            "takeoff",
            "land",
            "move",
            "rotate",
            "flip",
            "go_to",
            "stop",
            "set_speed",
            "set_led",
            "show_matrix",
        },
        EMERGENCY: {"emergency"},
    }
    for scope, tools in by_scope.items():
        assert {t for t in served if DRONE_SCOPES.tool(t).scopes == {scope}} == tools, scope
    limited = {t for t in served if DRONE_SCOPES.tool(t).rate_limited}
    assert limited == {"takeoff", "move", "rotate", "flip", "go_to"}
    assert DRONE_SCOPES.resource("drone://state") == {READ}
    assert DRONE_SCOPES.resource("skill://drone-operations/SKILL.md") == frozenset()
    assert DRONE_SCOPES.tool("a_new_tool").scopes == {FLY}  # fails closed
    assert SERVE.cls().access().admin_scope == ADMIN


def test_a_policy_cannot_be_declared_on_a_server_that_would_not_enforce_it() -> None:
    with pytest.raises(TypeError, match="ReadableArgumentsServer"):
        declare_scopes(MCPServer(name="plain"), DRONE_SCOPES)


def test_the_settings_reach_the_http_settings(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    flags = SERVE.parse(
        ["--auth-jwks-file", str(jwks), "--auth-issuer", ISSUER, "--auth-audience", f"{AUDIENCE},other"]
    )
    access = flags.http().access
    assert (access.mode, access.jwks_file, access.audience) == ("jwt", str(jwks), (AUDIENCE, "other"))
    env = SERVE.parse([], environ={"TELLO_MCP_AUTH_TOKEN": "t0k", "TELLO_MCP_RATE_LIMIT_ACTIONS": "5"})
    assert (env.http().access.mode, env.http().access.rate_limit_actions) == ("static", 5)
    assert SERVE.parse([], environ={}).http().access.mode == "off"


def test_a_contradictory_auth_setup_is_refused_naming_the_setting() -> None:
    settings = SERVE.parse(["--auth-jwks-file", "jwks.json"], environ={})
    with pytest.raises(ValueError, match="auth_issuer"):
        settings.http()


def test_the_rate_limiter_window_and_bound() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 10.0, clock=lambda: now[0], max_clients=3)
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") == pytest.approx(10.0)
    now[0] = 4.0
    assert limiter.acquire("a") == pytest.approx(6.0)
    limiter.refund("a")
    assert limiter.acquire("a") is None  # the refund gave one back
    now[0] = 10.5
    assert limiter.acquire("a") is None  # the first one left the window
    for client in ("b", "c", "d", "e"):
        limiter.acquire(client)
    assert limiter.clients <= 3


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (
            [
                "--auth-jwks-file",
                "/nonexistent/jwks.json",
                "--auth-issuer",
                "https://a.example",
                "--auth-audience",
                "x",
            ],
            "No such file or directory",
        ),
        (["--auth-jwks-file", "jwks.json"], "JWT mode needs auth_issuer"),
        (["--auth-token-file", "/nonexistent/token"], "No such file or directory"),
    ],
)
def test_serve_refuses_a_broken_auth_setup_in_one_line(
    flags: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "drone", "--sim", *flags])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error: access control: " in err
    assert said in err
