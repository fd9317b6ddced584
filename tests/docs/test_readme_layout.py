"""The README's "What is here" table matches the tree: every path it names exists, every
top-level folder of the project is in it, and every package of the servers has its own row."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _table_paths() -> list[str]:
    section = README.split("## What is here", 1)[1].split("\n## ", 1)[0]
    paths: list[str] = []
    for row in section.splitlines():
        if row.startswith("| `"):
            first_cell = row.split("|")[1]
            paths.extend(re.findall(r"`([^`]+)`", first_cell))
    return paths


def _tracked_top_level_dirs() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()
    return {name.split("/", 1)[0] for name in listed if "/" in name and not name.startswith(".")}


def test_every_path_in_the_table_exists() -> None:
    paths = _table_paths()
    assert len(paths) >= 10, paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"the README names paths that are not in the tree: {missing}"


def test_every_top_level_folder_is_in_the_table() -> None:
    paths = _table_paths()
    absent = sorted(d for d in _tracked_top_level_dirs() if not any(p.startswith(f"{d}/") for p in paths))
    assert not absent, f"top-level folders the README's table does not mention: {absent}"


def test_every_server_package_has_a_row() -> None:
    paths = set(_table_paths())
    packages = sorted(
        f"{init.parent.relative_to(ROOT).as_posix()}/"
        for init in (*ROOT.glob("servers/*/__init__.py"), *ROOT.glob("servers/drone/*/__init__.py"))
    )
    assert packages, "no server packages found"
    absent = [p for p in packages if p not in paths]
    assert not absent, f"server packages without a row in the README's table: {absent}"
