"""The suite's version: the installed distribution's, so `pyproject.toml` is its one source."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("tello-mcp")
    except PackageNotFoundError:  # a checkout that was never installed
        return "0+unknown"
