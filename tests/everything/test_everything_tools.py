"""Tools that need nothing from the client: plain, structured, annotated, image and audio content,
resource links, embedded resources and gzip - through a real client, in memory and over HTTP,
in both eras."""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import struct
import wave
import zlib

import jsonschema
import mcp_types as types
import pytest
from mcp import Client

from tests.everything.harness import TRANSPORTS, call, connect, single_blob, single_text, texts

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("transport", TRANSPORTS)]

REFERENCE_TOOLS = {
    "echo",
    "get-annotated-message",
    "get-resource-links",
    "get-resource-reference",
    "get-structured-content",
    "get-sum",
    "get-tiny-image",
    "gzip-file-as-resource",
    "trigger-long-running-operation",
    "simulate-research-query",
    "get-roots-list",
    "trigger-elicitation-request",
    "trigger-url-elicitation",
    "trigger-sampling-request",
}
"""The reference's tools we serve under the same name (the others are replaced: README parity table)."""


async def _tools(client: Client) -> dict[str, types.Tool]:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


async def test_tool_list_covers_the_reference_and_leaks_nothing(transport: str, everything_url: str) -> None:
    async with connect(transport, everything_url) as client:
        tools = await _tools(client)
    assert set(tools) >= REFERENCE_TOOLS
    assert "get-env" not in tools
    for tool in tools.values():
        assert tool.annotations is not None, tool.name
        assert tool.description, tool.name
        # No tool may reach the outside world on its own (URL elicitation only hands a URL over).
        if tool.annotations.open_world_hint:
            assert tool.name in {"trigger-sampling-request", "trigger-url-elicitation"}, tool.name
    assert tools["echo"].annotations is not None
    assert tools["echo"].annotations.read_only_hint


async def test_echo_and_sum(transport: str, everything_url: str) -> None:
    word = f"hello-{random.randrange(10**6)}"
    a, b = random.randrange(1000), random.randrange(1000) / 4
    async with connect(transport, everything_url) as client:
        echoed = await call(client, "echo", {"message": word})
        summed = await call(client, "get-sum", {"a": a, "b": b})
        refused = await client.call_tool("get-sum", {"a": "x", "b": 1})
    assert texts(echoed) == [f"Echo: {word}"]
    assert texts(summed) == [f"The sum of {a:g} and {b:g} is {a + b:g}."]
    assert refused.is_error


async def test_structured_content_matches_its_output_schema(transport: str, everything_url: str) -> None:
    async with connect(transport, everything_url) as client:
        schema = (await _tools(client))["get-structured-content"].output_schema
        result = await call(client, "get-structured-content", {"location": "Chicago"})
        refused = await client.call_tool("get-structured-content", {"location": "Atlantis"})
    assert schema is not None
    assert result.structured_content is not None
    jsonschema.validate(result.structured_content, schema)
    assert set(result.structured_content) == {"temperature", "conditions", "humidity"}
    assert json.loads(texts(result)[0]) == result.structured_content  # the text form, for old clients
    assert refused.is_error


ANNOTATIONS = {
    "error": (1.0, ["user", "assistant"]),
    "success": (0.7, ["user"]),
    "debug": (0.3, ["assistant"]),
}


async def test_annotated_message(transport: str, everything_url: str) -> None:
    async with connect(transport, everything_url) as client:
        plain = {
            kind: await call(client, "get-annotated-message", {"messageType": kind}) for kind in ANNOTATIONS
        }
        with_image = await call(
            client, "get-annotated-message", {"messageType": "debug", "includeImage": True}
        )
    for kind, (priority, audience) in ANNOTATIONS.items():
        (text,) = plain[kind].content
        assert isinstance(text, types.TextContent)
        assert text.annotations is not None
        assert (text.annotations.priority, text.annotations.audience) == (priority, audience)
    assert len(with_image.content) == 2
    image = with_image.content[1]
    assert isinstance(image, types.ImageContent)
    assert image.annotations is not None
    assert image.annotations.audience == ["user"]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    assert length == 13
    width, height = struct.unpack(">II", data[16:24])
    crc = struct.unpack(">I", data[29:33])[0]
    assert crc == zlib.crc32(data[12:29])
    return width, height


async def test_tiny_image_and_audio(transport: str, everything_url: str) -> None:
    async with connect(transport, everything_url) as client:
        image_result = await call(client, "get-tiny-image")
        audio_result = await call(client, "get-tiny-audio")
    images = [b for b in image_result.content if isinstance(b, types.ImageContent)]
    assert len(images) == 1
    assert images[0].mime_type == "image/png"
    assert _png_size(base64.b64decode(images[0].data)) == (16, 16)
    audios = [b for b in audio_result.content if isinstance(b, types.AudioContent)]
    assert len(audios) == 1
    assert audios[0].mime_type == "audio/wav"
    with wave.open(io.BytesIO(base64.b64decode(audios[0].data))) as wav:
        assert wav.getnchannels() == 1
        assert 0.1 < wav.getnframes() / wav.getframerate() < 1.0


async def test_resource_links_resolve_to_readable_resources(transport: str, everything_url: str) -> None:
    count = random.randint(2, 10)
    async with connect(transport, everything_url) as client:
        result = await call(client, "get-resource-links", {"count": count})
        links = [b for b in result.content if isinstance(b, types.ResourceLink)]
        reads = {link.uri: await client.read_resource(link.uri) for link in links}
        too_many = await client.call_tool("get-resource-links", {"count": 11})
    assert len(links) == count
    for i, link in enumerate(links, start=1):
        kind = "text" if i % 2 == 0 else "blob"
        assert link.uri == f"demo://resource/dynamic/{kind}/{i}"
        (content,) = reads[link.uri].contents
        assert content.mime_type == link.mime_type
        if kind == "text":
            assert isinstance(content, types.TextResourceContents)
            assert f"Resource {i}" in content.text
        else:
            assert isinstance(content, types.BlobResourceContents)
            assert f"Resource {i}".encode() in base64.b64decode(content.blob)
    assert too_many.is_error


async def test_embedded_resource_equals_the_read_resource(transport: str, everything_url: str) -> None:
    resource_id = random.randint(1, 500)
    async with connect(transport, everything_url) as client:
        for resource_type in ("Text", "Blob"):
            result = await call(
                client, "get-resource-reference", {"resourceType": resource_type, "resourceId": resource_id}
            )
            embedded = [b for b in result.content if isinstance(b, types.EmbeddedResource)]
            assert len(embedded) == 1
            read = await client.read_resource(str(embedded[0].resource.uri))
            if resource_type == "Text":
                assert embedded[0].resource == single_text(read)
            else:
                assert embedded[0].resource == single_blob(read)
            assert str(embedded[0].resource.uri).endswith(f"/{resource_type.lower()}/{resource_id}")


async def test_gzip_as_embedded_resource_and_as_link(transport: str, everything_url: str) -> None:
    text = "".join(random.choice("abc \n") for _ in range(2000))
    encoded = "data:text/plain;base64," + base64.b64encode(b"\x00\xffbinary").decode()
    async with connect(transport, everything_url) as client:
        inline = await call(client, "gzip-file-as-resource", {"data": text, "name": "t.txt.gz"})
        from_data_uri = await call(client, "gzip-file-as-resource", {"data": encoded})
        linked = await call(client, "gzip-file-as-resource", {"data": text, "outputType": "resourceLink"})
        (link,) = linked.content
        assert isinstance(link, types.ResourceLink)
        assert link.mime_type == "application/gzip"
        read = single_blob(await client.read_resource(link.uri))
        url_refused = await client.call_tool("gzip-file-as-resource", {"data": "https://example.com/secrets"})
        too_big = await client.call_tool("gzip-file-as-resource", {"data": "x" * (65 * 1024)})
    (embedded,) = inline.content
    assert isinstance(embedded, types.EmbeddedResource)
    assert isinstance(embedded.resource, types.BlobResourceContents)
    assert embedded.resource.mime_type == "application/gzip"
    assert gzip.decompress(base64.b64decode(embedded.resource.blob)).decode() == text
    (from_uri,) = from_data_uri.content
    assert isinstance(from_uri, types.EmbeddedResource)
    assert isinstance(from_uri.resource, types.BlobResourceContents)
    assert gzip.decompress(base64.b64decode(from_uri.resource.blob)) == b"\x00\xffbinary"
    assert gzip.decompress(base64.b64decode(read.blob)).decode() == text
    assert url_refused.is_error
    assert "not fetched" in texts(url_refused)[0]
    assert too_big.is_error
    assert "limit" in texts(too_big)[0]
