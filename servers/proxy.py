"""`tello-mcp serve proxy`: any MCP server's tools re-served in a tool mode.

    tello-mcp serve proxy --upstream http://127.0.0.1:3001/mcp --mode search
    tello-mcp serve proxy --mode codesearch -- python -m servers.everything

The upstream is a streamable HTTP URL or a command speaking MCP on stdio; the proxy connects
once at start-up, lists the upstream's tools, and serves them in the mode at `--proxy-path`
(default `/proxy`) beside the upstream's resources and prompts (`tool_modes.proxy`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal

from servers.config import SettingsGroup
from servers.suite import Component
from tool_modes.catalog import Upstream
from tool_modes.code import CodeRunner
from tool_modes.proxy import proxy_server


@dataclass(frozen=True, slots=True)
class ProxySettings:
    upstream: str = ""
    mode: Literal["search", "code", "codesearch", "standard"] = "search"
    proxy_path: str = "/proxy"
    command: tuple[str, ...] = ()
    """The upstream command (after `--` on the command line); not a flag."""

    def target(self) -> Upstream:
        if bool(self.upstream) == bool(self.command):
            raise ValueError("proxy: give either --upstream URL or -- COMMAND ARGS..., exactly one")
        return Upstream.http(self.upstream) if self.upstream else Upstream.stdio(*self.command)


PROXY = SettingsGroup(
    "proxy (tello-mcp serve proxy)",
    ProxySettings,
    {
        "upstream": "the MCP server to re-serve, as a streamable HTTP URL (or give a command after --)",
        "mode": "tool mode the proxy presents: search, code, codesearch or standard",
        "proxy_path": "path the proxy serves at",
    },
)


@contextlib.asynccontextmanager
async def proxy_component(settings: ProxySettings) -> AsyncGenerator[Component]:
    upstream = settings.target()
    code = settings.mode in ("code", "codesearch")
    async with contextlib.AsyncExitStack() as stack:
        runner = await stack.enter_async_context(CodeRunner()) if code else None
        server = await stack.enter_async_context(proxy_server(upstream, settings.mode, code_runner=runner))
        yield Component(
            name="proxy",
            mounts={settings.proxy_path: server},
            stdio=server,
            detail=f"{settings.mode} mode over {upstream}",
        )
