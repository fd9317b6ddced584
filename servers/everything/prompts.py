"""Prompts: none, optional and completable arguments, and an embedded resource."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer, UserMessage
from mcp.server.mcpserver.prompts.base import Message
from mcp_types import EmbeddedResource

from servers.everything.resources import (
    DEPARTMENTS,
    RESOURCE_TYPES,
    blob_contents,
    parse_resource_id,
    text_contents,
)


def register_prompts(server: MCPServer[Any]) -> None:
    @server.prompt(name="simple-prompt", title="Simple Prompt", description="A prompt with no arguments")
    async def simple_prompt() -> str:
        return "This is a simple prompt without arguments."

    @server.prompt(name="args-prompt", title="Arguments Prompt", description="A prompt with arguments")
    async def args_prompt(city: str, state: str | None = None) -> str:
        where = f"{city}, {state}" if state else city
        return f"What's weather in {where}?"

    @server.prompt(
        name="completable-prompt",
        title="Team Management",
        description="Completion of the first argument (department) narrows that of the second (name)",
    )
    async def completable_prompt(department: str, name: str) -> str:
        if department not in DEPARTMENTS:
            raise ValueError(f"unknown department {department!r}; one of {', '.join(DEPARTMENTS)}")
        return f"Please promote {name} to the head of the {department} team."

    @server.prompt(
        name="resource-prompt",
        title="Resource Prompt",
        description="A prompt that embeds a dynamic resource (resourceType Text or Blob, resourceId > 0)",
    )
    async def resource_prompt(resourceType: str, resourceId: str) -> list[Message]:
        if resourceType not in RESOURCE_TYPES:
            raise ValueError(f"resourceType must be one of {', '.join(RESOURCE_TYPES)}")
        resource_id = parse_resource_id(resourceId)
        contents = text_contents(resource_id) if resourceType == "Text" else blob_contents(resource_id)
        return [
            UserMessage(
                f"This prompt includes the {resourceType} resource with id {resource_id}. Please analyze it."
            ),
            UserMessage(EmbeddedResource(type="resource", resource=contents)),
        ]

    _ = (simple_prompt, args_prompt, completable_prompt, resource_prompt)
