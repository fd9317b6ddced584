"""The suite's MCP servers: the drone, the demo servers, and the spine they share."""

from servers.logs import default_to_stderr

default_to_stderr()
