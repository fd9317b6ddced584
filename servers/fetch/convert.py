"""A fetched body to the tool's text: decode, simplify HTML to markdown, cut out the page asked for.

Everything here is CPU work on untrusted input, so it runs in a conversion worker process
(`servers.fetch.workers`) under the fetch deadline, never on the event loop. It is pure: bytes
and a few flags in, two strings out, so it is also called in-process by the unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from servers.fetch.charsets import decode, decode_html
from servers.fetch.extract import html_to_markdown

SIMPLIFY_FAILED = "<error>Page failed to be simplified from HTML</error>"


@dataclass(frozen=True, slots=True)
class Job:
    body: bytes
    charset: str | None
    """As declared in `Content-Type`; None when the server sent none."""
    content_type: str
    html: bool
    raw: bool
    start_index: int
    max_length: int


@dataclass(frozen=True, slots=True)
class Converted:
    prefix: str
    """What goes before "Contents of <url>:" (a charset note, the reference's raw-content line)."""
    text: str
    """The requested slice of the content, with the reference's truncation hint."""


def paginate(content: str, *, start_index: int, max_length: int) -> str:
    if start_index >= len(content):
        return "<error>No more content available.</error>"
    piece = content[start_index : start_index + max_length]
    end = start_index + len(piece)
    if end < len(content):
        piece += (
            f"\n\n<error>Content truncated. Call the fetch tool with a start_index of {end} "
            "to get more content.</error>"
        )
    return piece


def convert(job: Job) -> Converted:
    """(prefix, slice) as the reference server frames them."""
    if job.raw or not job.html:
        decoded = decode(job.body, job.charset)
        prefix = (
            ""
            if job.raw
            else f"Content type {job.content_type or 'unknown'} cannot be simplified to markdown, "
            "but here is the raw content:\n"
        )
        content = decoded.text
    else:
        decoded = decode_html(job.body, job.charset)
        prefix = ""
        markdown = html_to_markdown(decoded.text)
        content = markdown if markdown is not None else SIMPLIFY_FAILED
    text = paginate(content, start_index=job.start_index, max_length=job.max_length)
    return Converted((decoded.note or "") + prefix, text)
