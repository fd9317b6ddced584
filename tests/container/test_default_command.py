"""`docker run tello-mcp` with no arguments serves something useful: the image's ENTRYPOINT + CMD,
run from the installed wheel (what the image installs; no Docker daemon here) with the image's
environment, serves every server with the drone on the embedded simulator, connected."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.container.test_dockerfile import DOCKERFILE, environment, only, stages
from tests.support.serve import Served, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
async def bare_run(wheel_venv: Path, tmp_path: Path, anyio_backend: object) -> AsyncGenerator[Served]:
    runtime = stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]
    entrypoint, command = only(runtime, "ENTRYPOINT").exec_form(), only(runtime, "CMD").exec_form()
    image_env = {k: v for k, v in environment(runtime).items() if k != "PATH"}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TELLO_MCP_")},
        **image_env,
        "TELLO_MCP_HOST": "127.0.0.1",  # the image listens on 0.0.0.0; the test keeps to loopback
        "TELLO_MCP_PORT": "0",
    }
    argv = [str(wheel_venv / entrypoint[0]), *entrypoint[1:], *command]
    async with serving(argv, tmp_path / "stderr.log", cwd=tmp_path, env=env) as served:
        yield served


async def test_the_bare_image_serves_the_simulator_demo(bare_run: Served) -> None:
    assert "embedded simulator" in bare_run.banner
    assert {"drone", "everything", "fetch"} <= set(bare_run.endpoints.values())
    with anyio.fail_after(60):
        async with Client(bare_run.url("/drone"), mode="2026-07-28") as client:
            state = await client.call_tool("get_state", {})
    assert state.structured_content is not None
    assert state.structured_content["freshness"]["link"] == "connected"
    assert state.structured_content["flight"] == "landed"
