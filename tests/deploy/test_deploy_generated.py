"""The generated parts of `deploy/base/` are what `deploy/generate.py` writes from today's
sources: the skills, the drone server's tools, the Services and the namespace."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import generate
from tests.deploy.manifests import OVERLAYS, REPO, rendered

pytestmark = pytest.mark.anyio

SKILL_DIR = REPO / "skills" / "drone-operations"
MODE_PATHS = {
    "standard": "/drone",
    "search": "/drone-search",
    "code": "/drone-code",
    "codesearch": "/drone-codesearch",
}


async def test_committed_files_are_what_the_generator_writes() -> None:
    files = generate.outputs(await generate.served_tools())
    assert set(files) >= {generate.KAGENT_FILE, generate.HOSTS_DIR / "drone-mcp.env"}
    stale = [
        str(path.relative_to(REPO))
        for path, text in files.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    assert stale == [], f"out of date, run `python deploy/generate.py`: {stale}"


def test_generator_runs_as_a_script_and_checks() -> None:
    done = subprocess.run(
        [sys.executable, str(generate.DEPLOY / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO / "deploy",
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def _skill_body(mode: str) -> str:
    """Read independently of the generator: the mode's file, else the shared SKILL.md."""
    own = SKILL_DIR / "modes" / f"{mode}.md"
    text = (own if own.is_file() else SKILL_DIR / "SKILL.md").read_text(encoding="utf-8")
    if text.startswith("---\n"):
        text = text.split("\n---\n", 1)[1]
    return text.strip()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_agent_carries_its_modes_skill(overlay: str) -> None:
    m = rendered(overlay)
    agents = {a["metadata"]["name"]: a for a in m.kind("Agent")}
    assert set(agents) == {path.strip("/") for path in MODE_PATHS.values()}
    for mode, path in MODE_PATHS.items():
        message = agents[path.strip("/")]["spec"]["declarative"]["systemMessage"]
        assert message.strip() == _skill_body(mode)
        assert not message.startswith("---"), "front matter is catalogue data, not instructions"


def test_a_mode_file_takes_precedence_over_the_shared_skill(tmp_path: Path) -> None:
    skill = tmp_path / "drone-operations"
    (skill / "modes").mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: x\n---\nshared\n", encoding="utf-8")
    (skill / "modes" / "code.md").write_text("---\nname: y\n---\n# Code\nrun_code it\n", encoding="utf-8")
    assert generate.skill_text("code", skill) == "# Code\nrun_code it\n"
    assert generate.skill_text("search", skill) == "shared\n"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_allow_lists_name_every_service_name_a_caller_can_dial(overlay: str) -> None:
    m = rendered(overlay)
    for service in m.kind("Service"):
        name, ns = service["metadata"]["name"], service["metadata"]["namespace"]
        for deployment in m.pods_of(service):
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            values = [
                m.one("ConfigMap", s["configMapRef"]["name"], ns)["data"].get("TELLO_MCP_ALLOWED_HOSTS")
                for s in container["envFrom"]
            ]
            (allowed,) = [v for v in values if v is not None]
            hosts = allowed.split(",")
            for form in (name, f"{name}.{ns}", f"{name}.{ns}.svc.cluster.local"):
                assert form in hosts, (form, hosts)
            assert "*" not in hosts, "DNS-rebinding protection stays on"
            assert not [
                h for h in hosts if re.match(r"^[a-z]", h) and h.split(".")[0] not in (name, "localhost")
            ]
