"""What a newcomer meets on the HTTP side: a wrong path is in the log, a busy port is one line."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servers.http import build_app
from tests.mcp.demo import DemoState, build_demo, demo_settings

TELLO_MCP = Path(sys.executable).parent / "tello-mcp"


async def _gone(_: Request) -> Response:
    return Response("no such recording", status_code=404)


@pytest.mark.anyio
async def test_every_404_is_logged_with_its_path_and_the_mcp_paths() -> None:
    app = build_app(
        {"/alpha": build_demo("alpha", DemoState())},
        settings=demo_settings(),
        extra_routes=[Route("/gone", _gone, methods=["GET"])],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        with structlog.testing.capture_logs() as logs:
            unknown = await http.post("/mcp", json={})  # what an Inspector that appends /mcp asks
            by_route = await http.get("/gone")  # a route's own 404, not the router's
            fine = await http.get("/healthz")
    assert (unknown.status_code, by_route.status_code, fine.status_code) == (404, 404, 200)
    found = [entry for entry in logs if entry["event"] == "http_not_found"]
    assert [(e["method"], e["path"]) for e in found] == [("POST", "/mcp"), ("GET", "/gone")]
    assert found[0]["mcp_endpoints"] == "/alpha"


@pytest.mark.anyio
async def test_a_hostile_404_path_is_cut_in_the_log() -> None:
    app = build_app({"/alpha": build_demo("alpha", DemoState())}, settings=demo_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        with structlog.testing.capture_logs() as logs:
            assert (await http.get("/" + "x" * 5000)).status_code == 404
    [entry] = [e for e in logs if e["event"] == "http_not_found"]
    assert len(entry["path"]) < 300


@pytest.mark.parametrize("server", ["everything", "drone"])
def test_a_busy_port_is_one_line_naming_the_address_and_the_settings(server: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = ["--sim"] if server == "drone" else []
        done = subprocess.run(
            [str(TELLO_MCP), "serve", server, *extra, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"tello-mcp: 127.0.0.1:{port} is already in use")
    assert "--port" in line
    assert "TELLO_MCP_PORT" in line


def test_an_address_not_on_this_machine_names_the_host_settings() -> None:
    done = subprocess.run(
        [str(TELLO_MCP), "serve", "everything", "--host", "192.0.2.1", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    assert "192.0.2.1:0" in line
    assert "--host" in line
    assert "TELLO_MCP_HOST" in line
