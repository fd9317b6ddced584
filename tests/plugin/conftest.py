"""The plugin's fixtures, for the in-process tests here whether or not the `pytest11` entry point
is registered in this environment (an editable install made before it existed has none). With
it registered, these definitions shadow the plugin's identical ones."""

from servers.pytest_plugin import (
    drone_mcp,
    drone_mcp_mode,
    drone_mcp_protocol,
    drone_mcp_transport,
    drone_sim,
    drone_sim_settings,
    simulated_drone,
)

__all__ = [
    "drone_mcp",
    "drone_mcp_mode",
    "drone_mcp_protocol",
    "drone_mcp_transport",
    "drone_sim",
    "drone_sim_settings",
    "simulated_drone",
]
