"""`build_everything_server`: a demo server exercising every MCP feature, in both protocol eras.

Feature parity with the reference TypeScript `@modelcontextprotocol/server-everything` (see the
README's parity table), minus what makes it unsafe behind a gateway: no tool reveals the
environment, reads files or fetches URLs. Stateless by construction, so several replicas can
serve one endpoint: the only per-process state is the handshake era's `resources/subscribe`
sessions, and, unless `EverythingSettings.request_state_keys` is set, the key sealing
2026-07-28 `requestState`.
"""

from __future__ import annotations

from typing import Any, Final

from mcp.server.mcpserver import MCPServer, RequestStateSecurity

from servers.everything.conformance_fixtures import register_conformance_fixtures
from servers.everything.interactive import register_interactive_tools
from servers.everything.prompts import register_prompts
from servers.everything.resources import register_completions, register_resources
from servers.everything.settings import EverythingSettings
from servers.everything.tools import register_tools
from servers.resource_updates import ResourceUpdates
from servers.sdk import prompt_errors_as_invalid_params
from servers.validation import StrictToolsServer

NAME: Final = "everything"

INSTRUCTIONS: Final = """\
A demo server exercising every MCP feature: tools (plain, structured, annotated, image, audio,
resource links, embedded resources), progress and cancellation (trigger-long-running-operation),
logging (trigger-log-messages), sampling, form and URL elicitation and roots (the trigger-* and
get-roots-list tools, when the client declares those capabilities), resources and templates with
completion, paged resources/list, update notifications (trigger-resource-update), and prompts.
It never reads files, the environment, or the network.
"""


def build_everything_server(settings: EverythingSettings | None = None) -> MCPServer[Any]:
    settings = settings or EverythingSettings()
    updates = ResourceUpdates()
    security = (
        RequestStateSecurity(keys=list(settings.request_state_keys)) if settings.request_state_keys else None
    )
    server = StrictToolsServer(
        name=NAME,
        title="Everything (MCP feature demo)",
        instructions=INSTRUCTIONS,
        version="0.1.0",
        subscriptions=updates.bus,
        request_state_security=security,
    )
    updates.attach(server)
    register_tools(server, settings, updates)
    register_interactive_tools(server, settings)
    register_resources(server, settings)
    register_completions(server, settings)
    register_prompts(server)
    register_conformance_fixtures(server)
    prompt_errors_as_invalid_params(server)
    return server
