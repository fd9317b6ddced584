"""Resources (static, templated, paged), completion, prompts and update notifications - in memory
and over HTTP, in both eras."""

from __future__ import annotations

import base64
import random
import uuid
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from servers.everything import conformance_fixtures
from servers.everything.resources import DOCUMENTS
from tests.everything.harness import FAST, TRANSPORTS, WAIT, call, connect, single_blob, single_text

pytestmark = pytest.mark.anyio

TEXT_TEMPLATE = "demo://resource/dynamic/text/{resourceId}"
BLOB_TEMPLATE = "demo://resource/dynamic/blob/{resourceId}"
LEGACY = ("memory-legacy", "http-legacy")
MODERN = ("memory-2026-07-28", "http-2026-07-28")


async def _all_resources(client: Client) -> tuple[list[types.Resource], int]:
    """Every listed resource, page by page; and the number of pages."""
    resources: list[types.Resource] = []
    cursor: str | None = None
    for pages in range(1, 100):
        page = await client.list_resources(cursor=cursor)
        assert len(page.resources) <= FAST.page_size
        resources.extend(page.resources)
        cursor = page.next_cursor
        if cursor is None:
            return resources, pages
    raise AssertionError("the resource list never ended")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_resource_list_is_paged(transport: str, everything_url: str) -> None:
    async with connect(transport, everything_url) as client:
        with anyio.fail_after(WAIT):
            resources, pages = await _all_resources(client)
            with pytest.raises(MCPError) as bad_cursor:
                await client.list_resources(cursor="not-a-cursor")
    uris = [r.uri for r in resources]
    fixtures = len(conformance_fixtures.RESOURCES)
    assert len(uris) == len(set(uris)) == len(DOCUMENTS) + fixtures + FAST.listed_resources
    assert pages == -(-len(uris) // FAST.page_size)
    assert {f"demo://resource/static/document/{name}" for name in DOCUMENTS} <= set(uris)
    assert bad_cursor.value.error.code == types.INVALID_PARAMS


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_static_documents_and_templates(transport: str, everything_url: str) -> None:
    resource_id = random.randint(1, 10_000)
    async with connect(transport, everything_url) as client:
        with anyio.fail_after(WAIT):
            templates = {
                t.uri_template: t for t in (await client.list_resource_templates()).resource_templates
            }
            docs = {
                name: single_text(await client.read_resource(f"demo://resource/static/document/{name}"))
                for name in DOCUMENTS
            }
            text = single_text(await client.read_resource(f"demo://resource/dynamic/text/{resource_id}"))
            blob = single_blob(await client.read_resource(f"demo://resource/dynamic/blob/{resource_id}"))
            refusals = []
            for bad in ("demo://resource/dynamic/text/0", "demo://resource/dynamic/blob/x", "demo://nothing"):
                with pytest.raises(MCPError) as refused:
                    await client.read_resource(bad)
                refusals.append(refused.value.error.code)
    assert templates[TEXT_TEMPLATE].mime_type == "text/plain"
    assert templates[BLOB_TEMPLATE].mime_type == "application/octet-stream"
    for name, doc in docs.items():
        assert doc.mime_type == "text/markdown"
        assert doc.text == DOCUMENTS[name]
    assert text.text == f"Resource {resource_id}: This is a plaintext resource"
    assert base64.b64decode(blob.blob) == f"Resource {resource_id}: This is a base64 blob".encode()
    assert refusals == [types.INVALID_PARAMS] * 3


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_completion_of_template_and_prompt_arguments(transport: str, everything_url: str) -> None:
    prefix = str(random.randint(1, 9))
    template = types.ResourceTemplateReference(type="ref/resource", uri=TEXT_TEMPLATE)
    team = types.PromptReference(type="ref/prompt", name="completable-prompt")
    resource_prompt = types.PromptReference(type="ref/prompt", name="resource-prompt")
    async with connect(transport, everything_url) as client:
        with anyio.fail_after(WAIT):
            ids = (await client.complete(template, {"name": "resourceId", "value": prefix})).completion
            junk = (await client.complete(template, {"name": "resourceId", "value": "x"})).completion
            departments = (await client.complete(team, {"name": "department", "value": "e"})).completion
            sales = (
                await client.complete(team, {"name": "name", "value": ""}, {"department": "Sales"})
            ).completion
            narrowed = (
                await client.complete(team, {"name": "name", "value": "E"}, {"department": "Sales"})
            ).completion
            nobody = (await client.complete(team, {"name": "name", "value": ""})).completion
            kinds = (
                await client.complete(resource_prompt, {"name": "resourceType", "value": "B"})
            ).completion
    assert ids.values
    assert all(v.startswith(prefix) and int(v) <= FAST.listed_resources for v in ids.values)
    assert ids.total == len(ids.values)
    assert junk.values == []
    assert departments.values == ["Engineering"]
    assert sales.values == ["David", "Eve", "Frank"]
    assert narrowed.values == ["Eve"]
    assert nobody.values == []
    assert kinds.values == ["Blob"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_prompts_with_arguments_and_an_embedded_resource(transport: str, everything_url: str) -> None:
    city = random.choice(["Paris", "Lagos", "Lima"])
    resource_id = random.randint(1, 50)
    async with connect(transport, everything_url) as client:
        with anyio.fail_after(WAIT):
            listed = {p.name: p for p in (await client.list_prompts()).prompts}
            simple = await client.get_prompt("simple-prompt")
            with_state = await client.get_prompt("args-prompt", {"city": city, "state": "Somewhere"})
            without_state = await client.get_prompt("args-prompt", {"city": city})
            team = await client.get_prompt("completable-prompt", {"department": "Support", "name": "Kim"})
            embedded = await client.get_prompt(
                "resource-prompt", {"resourceType": "Text", "resourceId": str(resource_id)}
            )
            read = single_text(await client.read_resource(f"demo://resource/dynamic/text/{resource_id}"))
            with pytest.raises(MCPError):
                await client.get_prompt("resource-prompt", {"resourceType": "Video", "resourceId": "1"})
    reference = set(listed) - set(conformance_fixtures.PROMPTS)
    assert reference == {"simple-prompt", "args-prompt", "completable-prompt", "resource-prompt"}
    args = {a.name: a.required for a in listed["args-prompt"].arguments or []}
    assert args == {"city": True, "state": False}

    def text(result: types.GetPromptResult, index: int = 0) -> str:
        content = result.messages[index].content
        assert isinstance(content, types.TextContent)
        return content.text

    assert text(simple) == "This is a simple prompt without arguments."
    assert text(with_state) == f"What's weather in {city}, Somewhere?"
    assert text(without_state) == f"What's weather in {city}?"
    assert "Kim" in text(team)
    assert "Support" in text(team)
    resource = embedded.messages[1].content
    assert isinstance(resource, types.EmbeddedResource)
    assert resource.resource == read


def _updated_uris(messages: list[Any]) -> list[str]:
    return [str(m.params.uri) for m in messages if isinstance(m, types.ResourceUpdatedNotification)]


@pytest.mark.parametrize("transport", LEGACY)
async def test_subscribe_hears_updates_until_unsubscribed(transport: str, everything_url: str) -> None:
    watched = f"demo://resource/dynamic/text/{random.randint(1, 99)}"
    other = "demo://resource/static/document/eras.md"
    messages: list[Any] = []
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        messages.append(message)
        if _updated_uris(messages):
            changed.set()

    async with connect(transport, everything_url, message_handler=on_message) as client:
        assert client.server_capabilities.resources is not None
        assert client.server_capabilities.resources.subscribe is True
        with anyio.fail_after(WAIT):
            with pytest.warns(MCPDeprecationWarning):
                await client.subscribe_resource(watched)
            await call(client, "trigger-resource-update", {"uri": watched})
            await changed.wait()
            assert _updated_uris(messages) == [watched]

            with pytest.warns(MCPDeprecationWarning):
                await client.unsubscribe_resource(watched)
            with pytest.warns(MCPDeprecationWarning):
                await client.subscribe_resource(other)
            changed = anyio.Event()
            await call(client, "trigger-resource-update", {"uri": watched})
            await call(client, "trigger-resource-update", {"uri": other})
            await changed.wait()
    # Notifications arrive in order on one stream: the update of `other` came, that of `watched` did not.
    assert _updated_uris(messages) == [watched, other]


@pytest.mark.parametrize("transport", MODERN)
async def test_listen_hears_updates_of_its_uris_only(transport: str, everything_url: str) -> None:
    watched = f"demo://resource/dynamic/blob/{uuid.uuid4().int % 1000 + 1}"
    async with connect(transport, everything_url) as client:
        with anyio.fail_after(WAIT):
            async with client.listen(resource_subscriptions=[watched]) as updates:
                await call(client, "trigger-resource-update", {"uri": "demo://resource/dynamic/text/1"})
                await call(client, "trigger-resource-update", {"uri": watched})
                event = await anext(aiter(updates))
    assert getattr(event, "uri", None) == watched


@pytest.mark.parametrize("transport", LEGACY)
async def test_handshake_capabilities(transport: str, everything_url: str) -> None:
    async with connect(transport, everything_url) as client:
        caps = client.server_capabilities
        info = client.server_info
    assert caps.tools is not None
    assert caps.prompts is not None
    assert caps.resources is not None
    assert caps.completions is not None
    assert caps.logging is not None
    assert info is not None
    assert info.name == "everything"


async def test_auto_mode_discovers_the_stateless_era(everything_url: str) -> None:
    async with Client(everything_url, mode="auto") as client:
        with anyio.fail_after(WAIT):
            echoed = await call(client, "echo", {"message": "discovered"})
        version, caps, info = client.protocol_version, client.server_capabilities, client.server_info
    assert version == "2026-07-28"
    assert caps.completions is not None
    assert caps.resources is not None
    assert caps.resources.subscribe
    assert info is not None
    assert info.name == "everything"
    assert echoed.content[0] == types.TextContent(type="text", text="Echo: discovered")
