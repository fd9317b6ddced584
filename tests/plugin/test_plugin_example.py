"""`examples/` passes as a user runs it: pytest in a project directory outside this checkout,
with tello-mcp installed from its wheel into a fresh venv, the fixtures coming from the wheel's
`pytest11` entry point and nothing from this repository's test tree or conftest files.

The venv is set up as tests/packaging/test_wheel.py does it: the wheel alone, its third-party
dependencies (pytest and anyio included) through a path entry to the development venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DEV_SITE = Path(sysconfig.get_paths()["purelib"])


@pytest.fixture(scope="module")
def python(wheel_venv: Path) -> Path:
    """A fresh venv's python with the wheel built from this checkout (and nothing else of ours)."""
    return wheel_venv / "python"


def _clean_env() -> dict[str, str]:
    """This run's environment without anything that would point pytest or Python back here."""
    dropped = ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k not in dropped}


def test_the_plugin_comes_from_the_wheels_entry_point(python: Path) -> None:
    probe = (
        "import importlib.metadata as m; "
        "[ep] = [e for e in m.entry_points(group='pytest11') if e.name == 'tello_mcp']; "
        "print(ep.load().__file__)"
    )
    done = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, timeout=60, cwd="/", env=_clean_env()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(python.parent.parent)), done.stdout


def test_the_example_passes_in_a_users_project(python: Path, tmp_path: Path) -> None:
    project = tmp_path / "users-project"
    shutil.copytree(EXAMPLES, project, ignore=shutil.ignore_patterns("__pycache__"))
    assert not project.resolve().is_relative_to(REPO)
    report = tmp_path / "report.xml"
    # anyio runs each test on every backend installed; trio's real-time run doubles the time
    # and shows nothing new here (virtual time on trio is tested in test_plugin_fixtures.py).
    argv = ["-p", "no:cacheprovider", "-W", "error", "-k", "not trio", f"--junitxml={report}"]
    done = subprocess.run(
        [str(python), "-m", "pytest", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=project,
        env=_clean_env(),
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    examples = sum(
        p.read_text(encoding="utf-8").count("\nasync def test_") for p in project.glob("test_*.py")
    )
    assert examples >= 2
    assert counts == {"tests": examples, "failures": 0, "errors": 0, "skipped": 0}
    assert f"rootdir: {project}" in done.stdout
