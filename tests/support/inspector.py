"""Drive the MCP Inspector CLI (npm `@modelcontextprotocol/inspector`) from tests.

The Inspector is the reference client people point at a server by hand, so tests run it the
same way: as a subprocess against a server listening on HTTP. It is installed once per
version into a cache folder (`$XDG_CACHE_HOME/tello-mcp/` or the repo's gitignored `.cache/`)
with `npm install`, and called directly (`node_modules/.bin/mcp-inspector`, ~0.4 s a call)
rather than through `npx`.

Version 2.12.0 is pinned: it declares Node >= 22.19 (npm prints EBADENGINE warnings on Node
20) but its CLI runs on Node 20. It speaks the handshake era (2025-11-25) by default and the
stateless 2026-07-28 era with `--protocol-era modern`; `auto` probes `server/discover` first.
With `--format json` it prints `{"result": ...}` on stdout, or `{"error": {"code", "message"}}`
on stderr. Exit codes: 0 ok, 4 unreachable, 5 `isError` result or unknown tool.

    inspector = ensure_inspector()             # installs on first use, bounded in time
    out = await inspector.run(url, "tools/call", tool_name="add", tool_args={"a": 1})
    assert out.returncode == 0, out.stderr
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio

__all__ = [
    "INSPECTOR_PACKAGE",
    "INSPECTOR_VERSION",
    "Era",
    "Inspector",
    "InspectorResult",
    "InspectorUnavailable",
    "default_cache_dir",
    "ensure_inspector",
    "missing_node",
]

INSPECTOR_PACKAGE = "@modelcontextprotocol/inspector"
INSPECTOR_VERSION = "2.12.0"
INSTALL_TIMEOUT = 300.0
"""Seconds a cold `npm install` may take (warm cache: ~10 s; ~110 MB unpacked)."""

Era = Literal["legacy", "modern", "auto"]

_REPO = Path(__file__).resolve().parents[2]


class InspectorUnavailable(RuntimeError):
    """Node or npm is not on PATH: the only reason an Inspector test may be skipped."""


def missing_node() -> str | None:
    """Why the Inspector cannot run here, or None when `node` and `npm` are on PATH."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found on PATH" if missing else None


def default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) / "tello-mcp" if xdg else _REPO / ".cache"
    return root / f"inspector-{INSPECTOR_VERSION}"


@dataclass(frozen=True, slots=True)
class InspectorResult:
    returncode: int
    result: Any
    """The `result` member of the JSON printed on stdout; None when there was none."""
    error: Mapping[str, Any] | None
    """The `error` member of the JSON envelope printed on stderr, when the CLI failed."""
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class Inspector:
    binary: Path

    def command(
        self,
        url: str,
        method: str,
        *,
        era: Era = "legacy",
        tool_name: str | None = None,
        tool_args: Mapping[str, Any] | None = None,
        uri: str | None = None,
        prompt_name: str | None = None,
        prompt_args: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> list[str]:
        cmd = [str(self.binary), "--cli", url, "--transport", "http", "--protocol-era", era]
        cmd += ["--format", "json", "--method", method]
        if tool_name is not None:
            cmd += ["--tool-name", tool_name]
        if tool_args:
            cmd += ["--tool-args-json", json.dumps(dict(tool_args))]
        if uri is not None:
            cmd += ["--uri", uri]
        if prompt_name is not None:
            cmd += ["--prompt-name", prompt_name]
        if prompt_args:
            cmd += ["--prompt-args", *(f"{k}={v}" for k, v in prompt_args.items())]
        if headers:
            cmd += ["--header", *(f"{k}: {v}" for k, v in headers.items())]
        return cmd

    async def run(
        self,
        url: str,
        method: str,
        *,
        era: Era = "legacy",
        tool_name: str | None = None,
        tool_args: Mapping[str, Any] | None = None,
        uri: str | None = None,
        prompt_name: str | None = None,
        prompt_args: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> InspectorResult:
        """Run one CLI call with a throwaway HOME (the CLI keeps a catalog and OAuth state there).

        Unbounded by itself: wrap it in `anyio.fail_after`.
        """
        cmd = self.command(
            url,
            method,
            era=era,
            tool_name=tool_name,
            tool_args=tool_args,
            uri=uri,
            prompt_name=prompt_name,
            prompt_args=prompt_args,
            headers=headers,
        )
        with tempfile.TemporaryDirectory(prefix="inspector-home-") as home:
            env = {**os.environ, "HOME": home, "NO_COLOR": "1", "CI": "1"}
            done = await anyio.run_process(cmd, stdin=subprocess.DEVNULL, env=env, check=False)
        stdout = done.stdout.decode(errors="replace")
        stderr = done.stderr.decode(errors="replace")
        return InspectorResult(
            returncode=done.returncode,
            result=_member(stdout, "result"),
            error=_member(stderr, "error"),
            stdout=stdout,
            stderr=stderr,
        )


def _member(text: str, key: str) -> Any:
    """`key` of the last line of `text` that is a JSON object holding it."""
    for line in reversed(text.strip().splitlines()):
        try:
            decoded = json.loads(line)
        except ValueError:
            continue
        if isinstance(decoded, dict) and key in decoded:
            return decoded[key]  # pyright: ignore[reportUnknownVariableType]
    return None


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_inspector(cache_dir: Path | None = None, *, timeout: float = INSTALL_TIMEOUT) -> Inspector:
    """The pinned Inspector, `npm install`ed into `cache_dir` unless already there.

    Safe to call from several processes at once (file lock); a failed or interrupted install
    leaves nothing behind that a later call would mistake for a good one.

    Raises:
        InspectorUnavailable: node or npm is missing.
        RuntimeError: npm failed or took longer than `timeout` seconds.
    """
    reason = missing_node()
    if reason is not None:
        raise InspectorUnavailable(reason)
    dest = cache_dir if cache_dir is not None else default_cache_dir()
    inspector = Inspector(dest / "node_modules" / ".bin" / "mcp-inspector")
    stamp = dest / ".installed"
    if stamp.is_file() and inspector.binary.exists():
        return inspector

    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest.parent / f"{dest.name}.lock"):
        if stamp.is_file() and inspector.binary.exists():
            return inspector
        staging = Path(tempfile.mkdtemp(prefix=f"{dest.name}.partial-", dir=dest.parent))
        try:
            manifest = {"private": True, "dependencies": {INSPECTOR_PACKAGE: INSPECTOR_VERSION}}
            (staging / "package.json").write_text(json.dumps(manifest))
            npm = shutil.which("npm")
            assert npm is not None
            cmd = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
            env = {**os.environ, "npm_config_update_notifier": "false"}
            try:
                done = subprocess.run(
                    cmd, cwd=staging, env=env, capture_output=True, text=True, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"npm install {INSPECTOR_PACKAGE} took longer than {timeout:g}s") from exc
            if done.returncode != 0:
                raise RuntimeError(
                    f"npm install {INSPECTOR_PACKAGE}@{INSPECTOR_VERSION} failed ({done.returncode}):\n"
                    f"{done.stderr[-4000:]}"
                )
            (staging / ".installed").write_text(INSPECTOR_VERSION)
            shutil.rmtree(dest, ignore_errors=True)
            staging.rename(dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return inspector


def inspector_or_skip() -> Inspector:
    """The Inspector for a test; the test is skipped, with the reason, only where Node is absent."""
    import pytest

    reason = missing_node()
    if reason is not None:
        pytest.skip(f"MCP Inspector CLI needs Node.js: {reason}")
    return ensure_inspector()
