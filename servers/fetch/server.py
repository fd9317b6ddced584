"""`build_fetch_server`: the website fetcher as an MCP server, by factory.

One tool, `fetch`, shaped like the reference `mcp-server-fetch` (same arguments, same
"Contents of ..." framing, same truncation hint) so agents written for it work unchanged. It
holds no state between calls, so any number of replicas can serve it.

One deadline (`total_timeout`, set when the call starts) covers the download and the
conversion. Decoding and HTML extraction run in a conversion worker process, never on the
event loop, and a worker still busy at the deadline is killed (`servers.fetch.workers`). A
declared charset is used only if it is a character set (`servers.fetch.charsets`); otherwise
the page is read as UTF-8 and the answer starts with a `Note:` line saying so.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Final

import anyio
import structlog
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from servers import metrics
from servers.fetch.convert import Converted, Job
from servers.fetch.errors import FetchError, FetchFailed, Refused
from servers.fetch.fetcher import Fetcher, Page
from servers.fetch.settings import FetchSettings
from servers.fetch.workers import ConversionFailed, ConversionTimeout, ConverterPool, shared_pool
from servers.sdk import prompt_errors_as_invalid_params
from servers.validation import StrictToolsServer

INSTRUCTIONS: Final = """\
Fetches web pages from the public internet. HTML comes back as readable markdown, other text
as it is; long pages come in slices of max_length characters: call again with the start_index
the answer gives. Private, loopback and cloud-metadata addresses are refused, and so is
anything the site's robots.txt forbids.
"""

DESCRIPTION: Final = """\
Fetches a URL from the internet and extracts its contents as markdown.

You now have internet access through this tool: use it for up-to-date information instead of
saying you cannot browse. Long pages are cut at max_length characters; the answer then says
which start_index to call again with.
"""

HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES: Final = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-ndjson",
        "application/yaml",
        "application/toml",
    }
)

_log = structlog.get_logger("fetch.tools")


def _is_html(page: Page) -> bool:
    if page.content_type in HTML_TYPES:
        return True
    return not page.content_type and b"<html" in page.body[:256].lower()


def _is_text(page: Page) -> bool:
    media = page.content_type
    return not media or media.startswith("text/") or media in TEXT_TYPES or media.endswith(("+json", "+xml"))


async def render(
    page: Page, converter: ConverterPool, *, raw: bool, start_index: int, max_length: int, deadline: float
) -> Converted:
    """The answer's prefix and slice, converted in a worker process by `deadline`.

    Decoding and HTML extraction are CPU work on untrusted input (seconds on a big page), so
    none of it runs on the event loop, and it shares the fetch's deadline: a worker still busy
    when it passes is killed."""
    if not _is_text(page):
        raise FetchFailed(
            f"{page.url} is {page.content_type}, not text: this tool returns text and web pages only"
        )
    job = Job(
        body=page.body,
        charset=page.charset,
        content_type=page.content_type,
        html=_is_html(page),
        raw=raw,
        start_index=start_index,
        max_length=max_length,
    )
    try:
        return await converter.convert(job, deadline=deadline)
    except ConversionFailed as exc:
        raise FetchFailed(f"{page.url} could not be converted: {exc}") from None


def build_fetch_server(
    settings: FetchSettings | None = None, *, name: str = "fetch", converter: ConverterPool | None = None
) -> MCPServer[Any]:
    """The website fetcher; safe by default (see `FetchSettings` and the README's safety table).

    `converter` runs decoding and HTML extraction; by default the process-wide pool."""
    config = settings or FetchSettings()
    fetcher = Fetcher(config)
    pool = converter or shared_pool()
    server = StrictToolsServer(name=name, title="Website fetcher", instructions=INSTRUCTIONS, version="0.1.0")

    async def fetch(
        url: Annotated[str, Field(description="URL to fetch (http or https)")],
        max_length: Annotated[
            int, Field(gt=0, lt=1_000_000, description="Maximum number of characters to return")
        ] = config.default_max_length,
        start_index: Annotated[
            int,
            Field(
                ge=0,
                description="Start the content at this character index; use it to read on "
                "after a truncated answer",
            ),
        ] = 0,
        raw: Annotated[
            bool, Field(description="Get the page as it is (e.g. HTML source), without simplification")
        ] = False,
    ) -> str:
        started = time.perf_counter()
        outcome = "ok"
        deadline = anyio.current_time() + config.total_timeout
        try:
            page = await fetcher.fetch(url, deadline=deadline)
            try:
                converted = await render(
                    page, pool, raw=raw, start_index=start_index, max_length=max_length, deadline=deadline
                )
            except ConversionTimeout:
                raise fetcher.too_slow(page.url) from None
        except Refused as exc:
            outcome = f"refused:{exc.rule}"
            metrics.observe_fetch("refused", exc.rule.value)
            raise ToolError(str(exc)) from exc
        except FetchError as exc:
            outcome = type(exc).__name__
            metrics.observe_fetch("failed")
            raise ToolError(str(exc)) from exc
        finally:
            _log.info(
                "tool_call",
                tool="fetch",
                url=url,
                outcome=outcome,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        metrics.observe_fetch("ok", body_bytes=len(page.body))
        return f"{converted.prefix}Contents of {page.url}:\n{converted.text}"

    server.add_tool(
        fetch,
        name="fetch",
        title="Fetch a web page",
        description=DESCRIPTION,
        # Text only, like the reference: a {"result": ...} copy would send every page twice.
        structured_output=False,
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
        ),
    )
    prompt_errors_as_invalid_params(server)
    return server
