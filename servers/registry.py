"""Every server of the suite, by the name `tello-mcp serve NAME` takes.

Adding a server is one `ServerEntry` here: a settings group and a function from those
settings to a `servers.suite.Component`. Order matters: lifespans enter in this order (and
leave in reverse), and it is the order of the banner.
"""

from __future__ import annotations

from typing import Any

from servers.drone.config import DRONE, DroneSettings
from servers.everything.settings import EVERYTHING, EverythingSettings
from servers.fetch.config import FETCH, FetchConfig
from servers.proxy import PROXY, proxy_component
from servers.suite import Component, ServerEntry

EVERYTHING_PATH = "/everything"


def _drone(settings: DroneSettings) -> Component:
    from servers.drone.app import drone_component
    from servers.drone.runtime import DroneRuntime

    return drone_component(DroneRuntime(settings))


def _everything(settings: EverythingSettings) -> Component:
    from servers.everything import build_everything_server

    server = build_everything_server(settings)
    return Component(name="everything", mounts={EVERYTHING_PATH: server}, stdio=server)


def _fetch(config: FetchConfig) -> Component:
    from servers.fetch.config import fetch_component

    return fetch_component(config)


SERVERS: dict[str, ServerEntry[Any]] = {
    entry.name: entry
    for entry in (
        ServerEntry(
            "drone",
            "the drone's tools over one drone link (add --sim for the simulator)",
            DRONE,
            build=_drone,
        ),
        ServerEntry(
            "everything", "every MCP feature, for clients and gateways to try", EVERYTHING, build=_everything
        ),
        ServerEntry("fetch", "website fetcher: fetch(url) as markdown, safe by default", FETCH, build=_fetch),
        ServerEntry(
            "proxy",
            "any MCP server's tools in a tool mode (--upstream URL or -- COMMAND)",
            PROXY,
            connect=proxy_component,
            in_all=False,
        ),
    )
}
