"""`python -m servers.everything`: the everything server over stdio (logs on stderr)."""

from __future__ import annotations

import anyio

from servers.everything.server import build_everything_server
from servers.logs import configure_logging


def main() -> None:
    configure_logging("json")
    anyio.run(build_everything_server().run_stdio_async)


if __name__ == "__main__":
    main()
