"""`tello-mcp settings` shows the values `serve` would use and where each came from; a bad value
names the flag or the variable it came from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from servers.cli import plan

TELLO_MCP = Path(sys.executable).parent / "tello-mcp"


def _settings(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TELLO_MCP_")} | env
    return subprocess.run(
        [str(TELLO_MCP), "settings", *argv], capture_output=True, text=True, timeout=60, env=environ
    )


def _rows(stdout: str) -> dict[str, tuple[str, str]]:
    """variable -> (value, from)."""
    rows: dict[str, tuple[str, str]] = {}
    for line in stdout.splitlines()[1:]:
        variable, _flag, value, *source = line.split()
        rows[variable] = (value, " ".join(source))
    return rows


def test_each_value_is_shown_with_where_it_came_from() -> None:
    done = _settings("drone", "--host", "0.0.0.0", "--sim", TELLO_MCP_PORT="9001", TELLO_MCP_HOST="10.1.1.1")
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert rows["TELLO_MCP_HOST"] == ("0.0.0.0", "flag --host")  # the flag wins over the variable
    assert rows["TELLO_MCP_PORT"] == ("9001", "variable TELLO_MCP_PORT")
    assert rows["TELLO_MCP_SIM"] == ("true", "flag --sim")
    assert rows["TELLO_MCP_DRONE_HOST"] == ("192.168.10.1", "default")
    assert "TELLO_MCP_FETCH_ALLOW" not in rows  # only the named server's settings, and the shared ones


def test_what_settings_shows_is_what_serve_resolves() -> None:
    env = {"TELLO_MCP_MAX_HEIGHT_CM": "250", "TELLO_MCP_LOG_FORMAT": "console"}
    rows = _rows(_settings("drone", "--keepalive-s", "4", **env).stdout)
    planned = plan(["drone", "--keepalive-s", "4"], environ=env)
    assert rows["TELLO_MCP_MAX_HEIGHT_CM"] == (
        str(planned.servers["drone"].max_height_cm),
        rows["TELLO_MCP_MAX_HEIGHT_CM"][1],
    )
    assert rows["TELLO_MCP_KEEPALIVE_S"][0] == str(planned.servers["drone"].keepalive_s)
    assert rows["TELLO_MCP_LOG_FORMAT"][0] == planned.common.log_format


def test_a_secret_is_shown_as_set_never_by_value() -> None:
    done = _settings(TELLO_MCP_AUTH_TOKEN="s3cret-token")
    assert "s3cret-token" not in done.stdout
    assert "(set, not shown)" in done.stdout


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {"TELLO_MCP_PORT": "abc"}, "TELLO_MCP_PORT='abc': expected an integer"),
        (["--port", "abc"], {}, "--port='abc': expected an integer"),
        ([], {"TELLO_MCP_STALE_AFTER_S": "soon"}, "TELLO_MCP_STALE_AFTER_S='soon': expected a number"),
        ([], {"TELLO_MCP_SIM": "maybe"}, "TELLO_MCP_SIM='maybe': expected true or false"),
    ],
)
@pytest.mark.parametrize("command", ["settings", "serve"])
def test_a_bad_value_names_the_variable_or_the_flag(
    command: str, argv: list[str], env: dict[str, str], message: str
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TELLO_MCP_")} | env
    done = subprocess.run(
        [str(TELLO_MCP), command, "drone", *argv], capture_output=True, text=True, timeout=60, env=environ
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"tello-mcp: error: {message}"
