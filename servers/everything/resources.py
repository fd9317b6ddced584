"""Resources: static documents, dynamic text/blob templates, gzip links, a paged list, completion,
and update notifications.

Nothing here is stored per process: every resource is computed from its URI, `resources/list`
cursors carry their own offset, and a gzip resource link carries its bytes in the URI. Only the
handshake era's `resources/subscribe` keeps per-session state, which that era itself defines.
"""

from __future__ import annotations

import base64
import binascii
import gzip
from collections.abc import Sequence
from typing import Any, Final

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    BlobResourceContents,
    Completion,
    CompletionArgument,
    CompletionContext,
    ListResourcesResult,
    PaginatedRequestParams,
    PromptReference,
    Resource,
    ResourceTemplateReference,
    TextResourceContents,
)

from servers.everything.settings import EverythingSettings
from servers.sdk import lowlevel

DOCS_BASE: Final = "demo://resource/static/document"
TEXT_BASE: Final = "demo://resource/dynamic/text"
BLOB_BASE: Final = "demo://resource/dynamic/blob"
GZIP_BASE: Final = "demo://resource/gzip"
TEXT_TEMPLATE: Final = TEXT_BASE + "/{resourceId}"
BLOB_TEMPLATE: Final = BLOB_BASE + "/{resourceId}"
GZIP_TEMPLATE: Final = GZIP_BASE + "/{name}/{payload}"

TEXT_MIME: Final = "text/plain"
BLOB_MIME: Final = "application/octet-stream"
GZIP_MIME: Final = "application/gzip"
MARKDOWN_MIME: Final = "text/markdown"

RESOURCE_TYPES: Final = ("Text", "Blob")
DEPARTMENTS: Final = {
    "Engineering": ("Alice", "Bob", "Charlie"),
    "Sales": ("David", "Eve", "Frank"),
    "Marketing": ("Grace", "Henry", "Iris"),
    "Support": ("John", "Kim", "Lee"),
}
MAX_COMPLETIONS: Final = 100
"""The spec caps a completion response at 100 values."""

_CURSOR_PREFIX: Final = "offset:"

DOCUMENTS: Final = {
    "instructions.md": """\
# The "everything" demo server

Exercises every MCP feature in both protocol eras (2025-11-25 handshake and 2026-07-28
stateless). Start with `echo`; `trigger-long-running-operation` shows progress and
cancellation; the `trigger-*` tools ask the client for sampling, elicitation and roots.
""",
    "eras.md": """\
# Protocol eras

* Handshake era: server-to-client requests (sampling, elicitation, roots) travel on the
  session's back-channel while a tool runs.
* 2026-07-28: no session. The same requests come back inside an `input_required` result and
  the client retries the call with the answers; any replica can serve the retry.
""",
    "safety.md": """\
# What this server will not do

No tool reveals the process environment, reads local files or fetches URLs. A URL given to
`trigger-url-elicitation` is only shown to the user by the client.
""",
}


def text_uri(resource_id: int) -> str:
    return f"{TEXT_BASE}/{resource_id}"


def blob_uri(resource_id: int) -> str:
    return f"{BLOB_BASE}/{resource_id}"


def text_of(resource_id: int) -> str:
    return f"Resource {resource_id}: This is a plaintext resource"


def blob_of(resource_id: int) -> bytes:
    return f"Resource {resource_id}: This is a base64 blob".encode()


def parse_resource_id(value: str | int) -> int:
    """A positive integer, or ResourceNotFoundError naming the rule."""
    try:
        resource_id = int(value)
    except ValueError:
        resource_id = 0
    if resource_id < 1:
        raise ResourceNotFoundError(f"resourceId must be a positive integer, got {value!r}")
    return resource_id


def text_contents(resource_id: int) -> TextResourceContents:
    return TextResourceContents(uri=text_uri(resource_id), mime_type=TEXT_MIME, text=text_of(resource_id))


def blob_contents(resource_id: int) -> BlobResourceContents:
    return BlobResourceContents(
        uri=blob_uri(resource_id), mime_type=BLOB_MIME, blob=base64.b64encode(blob_of(resource_id)).decode()
    )


def gzip_link_uri(name: str, compressed: bytes) -> str:
    payload = base64.urlsafe_b64encode(compressed).decode("ascii").rstrip("=")
    return f"{GZIP_BASE}/{name}/{payload}"


def _decode_payload(payload: str, limit: int) -> bytes:
    if len(payload) > 2 * limit:
        raise ResourceError("gzip payload too large")
    try:
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ResourceNotFoundError("gzip payload is not base64url") from exc


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode("ascii")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (ValueError, UnicodeError, binascii.Error):
        text = ""
    digits = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not digits.isdigit():
        raise MCPError(code=INVALID_PARAMS, message=f"invalid cursor {cursor!r}")
    return int(digits)


def listed_resources(static: Sequence[Resource], settings: EverythingSettings) -> list[Resource]:
    """Everything `resources/list` walks through: the static documents, then generated entries."""
    generated = [
        Resource(
            uri=text_uri(i),
            name=f"Dynamic Text Resource {i}",
            description=f"Plaintext resource {i} from the {TEXT_TEMPLATE} template",
            mime_type=TEXT_MIME,
        )
        for i in range(1, settings.listed_resources + 1)
    ]
    return [*static, *generated]


def register_resources(server: MCPServer[Any], settings: EverythingSettings) -> None:
    for filename, body in DOCUMENTS.items():
        _register_document(server, filename, body)

    @server.resource(
        TEXT_TEMPLATE,
        name="Dynamic Text Resource",
        description="Plaintext resource fabricated from {resourceId}, a positive integer",
        mime_type=TEXT_MIME,
    )
    async def dynamic_text(resourceId: str) -> str:
        return text_of(parse_resource_id(resourceId))

    @server.resource(
        BLOB_TEMPLATE,
        name="Dynamic Blob Resource",
        description="Binary resource fabricated from {resourceId}, a positive integer",
        mime_type=BLOB_MIME,
    )
    async def dynamic_blob(resourceId: str) -> bytes:
        return blob_of(parse_resource_id(resourceId))

    @server.resource(
        GZIP_TEMPLATE,
        name="Gzip Resource",
        description="Gzip bytes carried in the URI itself (links made by gzip-file-as-resource)",
        mime_type=GZIP_MIME,
    )
    async def gzip_resource(name: str, payload: str) -> bytes:
        data = _decode_payload(payload, settings.max_link_payload_bytes)
        try:
            gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ResourceNotFoundError(f"{name}: payload is not gzip data") from exc
        return data

    _ = (dynamic_text, dynamic_blob, gzip_resource)
    _serve_paged_list(server, settings)


def _register_document(server: MCPServer[Any], filename: str, body: str) -> None:
    @server.resource(f"{DOCS_BASE}/{filename}", name=filename, mime_type=MARKDOWN_MIME)
    async def document() -> str:
        return body

    _ = document


def _serve_paged_list(server: MCPServer[Any], settings: EverythingSettings) -> None:
    """`resources/list` in pages of `settings.page_size`; the cursor is the next offset, so any
    replica can serve any page."""

    async def list_page(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams
    ) -> ListResourcesResult:
        everything = listed_resources(await server.list_resources(), settings)
        offset = 0 if params.cursor is None else _decode_cursor(params.cursor)
        if offset > len(everything):
            raise MCPError(code=INVALID_PARAMS, message=f"cursor past the end of the list ({offset})")
        end = offset + settings.page_size
        next_cursor = _encode_cursor(end) if end < len(everything) else None
        return ListResourcesResult(resources=everything[offset:end], next_cursor=next_cursor)

    # MCPServer lists everything in one page; the low-level server lets us replace the handler.
    low = lowlevel(server)
    low.add_request_handler("resources/list", PaginatedRequestParams, list_page)


def _prefixed(values: Sequence[str], prefix: str) -> Completion:
    matches = [v for v in values if v.lower().startswith(prefix.lower())]
    return Completion(
        values=matches[:MAX_COMPLETIONS], total=len(matches), has_more=len(matches) > MAX_COMPLETIONS
    )


def _resource_ids(prefix: str, settings: EverythingSettings) -> Completion:
    """Ids of the listed dynamic resources starting with `prefix` (any positive id is valid)."""
    if prefix and not prefix.isdigit():
        return Completion(values=[], total=0, has_more=False)
    known = [str(i) for i in range(1, max(settings.listed_resources, 1) + 1)]
    return _prefixed(known, prefix)


def register_completions(server: MCPServer[Any], settings: EverythingSettings) -> None:
    @server.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        arguments = (context.arguments if context is not None else None) or {}
        if isinstance(ref, ResourceTemplateReference):
            if ref.uri in (TEXT_TEMPLATE, BLOB_TEMPLATE) and argument.name == "resourceId":
                return _resource_ids(argument.value, settings)
            return None
        match ref.name, argument.name:
            case "completable-prompt", "department":
                return _prefixed(list(DEPARTMENTS), argument.value)
            case "completable-prompt", "name":
                return _prefixed(DEPARTMENTS.get(arguments.get("department", ""), ()), argument.value)
            case "resource-prompt", "resourceType":
                return _prefixed(RESOURCE_TYPES, argument.value)
            case "resource-prompt", "resourceId":
                return _resource_ids(argument.value, settings)
            case _:
                return None

    _ = complete
