"""The skill through the skills extension (`io.modelcontextprotocol/skills`, SEP-2640) on every
drone path, through a real client: the declaration, `skills/list` and `skills/get`, the file
manifest (checked against what `resources/read` serves, byte for byte) and
`resources/directory/read`. The conformance suite's `sep-2640-*` scenarios check the same over
HTTP in `tests/conformance/`."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import mcp_types as types
import pytest
import yaml
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict

from servers.drone.config import DroneSettings
from servers.drone.runtime import DroneRuntime
from servers.skills import DIRECTORY_MIME, SKILLS_DIR, SKILLS_EXTENSION
from tests.skills.snippets import SKILL_URI, mode_text, path_of, servers_of
from tool_modes.code import CodeRunner
from tool_modes.modes import MODES

pytestmark = pytest.mark.anyio

SKILL_DIR = SKILLS_DIR / "drone-operations"
ROOT = "skill://drone-operations"


class _Call(types.Request[dict[str, Any], str]):
    """A request for a method the SDK has no type for (the extension's)."""

    method: str  # pyright: ignore[reportIncompatibleVariableOverride]
    params: dict[str, Any]  # pyright: ignore[reportIncompatibleVariableOverride]


async def call(
    client: Client, method: Literal["skills/list", "skills/get", "resources/directory/read"], **params: str
) -> dict[str, Any]:
    result = await client.session.send_request(_Call(method=method, params=params), _Result)
    return dict(result.model_extra or {})


class _Result(BaseModel):
    model_config = ConfigDict(extra="allow")


@pytest.fixture
async def mounts() -> AsyncIterator[dict[str, MCPServer[Any]]]:
    """Every mode path over one runtime that is never started (nothing here flies)."""
    async with CodeRunner(workers=1) as runner:
        yield servers_of(DroneRuntime(DroneSettings(sim=True)), runner)


def on_disk() -> set[str]:
    return {f"{ROOT}/{p.relative_to(SKILL_DIR).as_posix()}" for p in SKILL_DIR.rglob("*.md")}


def front_matter(text: str) -> dict[str, Any]:
    return yaml.safe_load(text.split("---\n", 2)[1])


async def test_every_path_declares_the_extension_and_lists_the_skill_with_its_files(
    mounts: dict[str, MCPServer[Any]],
) -> None:
    for mode in MODES:
        async with Client(mounts[path_of(mode)], mode="auto") as client:
            assert client.protocol_version == "2026-07-28"
            capabilities = client.server_capabilities
            listed = await call(client, "skills/list")
            got = await call(client, "skills/get", uri=SKILL_URI)
            served: dict[str, bytes] = {}
            for item in listed["skills"][0]["resources"]:
                (content,) = (await client.read_resource(item["uri"])).contents
                assert isinstance(content, types.TextResourceContents)
                served[item["uri"]] = content.text.encode("utf-8")
            resources = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert (capabilities.extensions or {})[SKILLS_EXTENSION] == {"directoryRead": True}
        assert capabilities.resources is not None
        (entry,) = listed["skills"]
        assert entry["uri"] == SKILL_URI
        assert got["skill"] == entry
        assert "nextCursor" not in got
        assert {"ttlMs", "cacheScope"} <= set(listed)
        assert {"ttlMs", "cacheScope"} <= set(got)
        manifest = {item["uri"]: item for item in entry["resources"]}
        assert len(manifest) == len(entry["resources"]), "a file is listed twice"
        assert set(manifest) == on_disk()
        for uri, data in served.items():
            assert manifest[uri]["digest"] == f"sha256:{hashlib.sha256(data).hexdigest()}", uri
            assert manifest[uri]["size"] == len(data), uri
        # This path's own text is its SKILL.md: served, digested and described from its front matter.
        assert served[SKILL_URI].decode() == mode_text(mode)
        assert entry["frontmatter"] == front_matter(mode_text(mode))
        skill_md = resources[SKILL_URI]
        assert (skill_md.name, skill_md.mime_type) == ("drone-operations", "text/markdown")
        assert skill_md.description == entry["frontmatter"]["description"]


async def test_unknown_skill_and_non_directories_are_invalid_params(
    mounts: dict[str, MCPServer[Any]],
) -> None:
    async with Client(mounts[path_of("code")], mode="auto") as client:
        with pytest.raises(MCPError) as unknown:
            await call(client, "skills/get", uri="skill://no-such-skill/SKILL.md")
        with pytest.raises(MCPError) as not_a_folder:
            await call(client, "resources/directory/read", uri=SKILL_URI)
        with pytest.raises(MCPError) as elsewhere:
            await call(client, "resources/directory/read", uri="skill://no-such-skill")
    for refused in (unknown, not_a_folder, elsewhere):
        assert refused.value.error.code == types.INVALID_PARAMS


async def test_directories_list_their_direct_children(mounts: dict[str, MCPServer[Any]]) -> None:
    async with Client(mounts[path_of("standard")], mode="auto") as client:
        root = (await call(client, "resources/directory/read", uri=ROOT))["resources"]
        modes = (await call(client, "resources/directory/read", uri=f"{ROOT}/modes"))["resources"]
    assert {(r["uri"], r["mimeType"]) for r in root} == {
        (SKILL_URI, "text/markdown"),
        (f"{ROOT}/modes", DIRECTORY_MIME),
        (f"{ROOT}/prompts", DIRECTORY_MIME),
    }
    assert {r["uri"] for r in modes} == {f"{ROOT}/modes/{p.name}" for p in (SKILL_DIR / "modes").glob("*.md")}
    assert all(r["mimeType"] == "text/markdown" and r["size"] > 0 for r in modes)
