"""The "everything" demo MCP server: parity with the reference TypeScript server (README table)."""

from servers.everything.server import build_everything_server
from servers.everything.settings import EverythingSettings

__all__ = ["EverythingSettings", "build_everything_server"]
