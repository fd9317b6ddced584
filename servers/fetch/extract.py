"""HTML to readable markdown: readability-lxml finds the content, markdownify writes markdown.

Chosen by output on the fixtures in tests/fetch/fixtures (a news article wrapped in nav, ads,
cookie banner, comments and footer; a Sphinx docs page with code and a table; a WordPress
post; a Q&A thread) and by install weight, all measured 2026-11 on this machine:

* readability-lxml + markdownify (17 MB with lxml, ~3-8 ms a page): the article body, title,
  byline and figure without nav/sidebar/footer/comments; code blocks with their line breaks;
  tables as pipe tables; links kept; the question *and both answers* of the Q&A page. Leaves
  an inline "Advertisement" line and a newsletter box inside the article.
* trafilatura (70 MB: dateparser, babel, pytz, tzdata, ...): as clean on the article and
  docs, but dropped both answers of the Q&A page and the post title of the blog, and lost
  blank lines inside code blocks.
* readabilipy + markdownify (20 MB): what the reference `mcp-server-fetch` uses. Without
  Node its pure-Python mode removes no boilerplate at all (nav, ads, comments, sidebar and
  footer all come out) and collapses every code block onto one line; with Node it costs
  ~1.2 s a fetch.

No Node at run time, no HTML parsing of our own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

import markdownify
import readability  # pyright: ignore[reportMissingTypeStubs]
from bs4 import Tag

_LANGUAGE: Final = re.compile(r"^(?:language|lang|highlight)-([\w+#.-]+)$")
_BLANK_LINES: Final = re.compile(r"\n{3,}")


class _Readable(Protocol):
    def summary(self, html_partial: bool = ...) -> str: ...
    def short_title(self) -> str: ...


_Document = cast("Callable[[str | bytes], _Readable]", readability.Document)  # pyright: ignore[reportUnknownMemberType]


def _code_language(pre: Tag) -> str | None:
    """The language of a code block from the class names highlighters put on it or around it."""
    code = pre.find("code")
    candidates: list[Any] = [pre, code, pre.parent, pre.parent.parent if pre.parent is not None else None]
    for element in candidates:
        if isinstance(element, Tag):
            for name in element.get_attribute_list("class"):
                match = _LANGUAGE.match(str(name))
                if match:
                    return match.group(1)
    return None


def html_to_markdown(html: str | bytes) -> str | None:
    """The page's main content as markdown under its title, or None when nothing readable is found."""
    if not html.strip():
        return None
    try:
        document = _Document(html)
        content = document.summary(html_partial=True)
        title = document.short_title().strip()
    except Exception:
        # readability raises its own `Unparseable` and lxml errors on junk; either way there
        # is no article to give.
        return None
    markdown = markdownify.markdownify(
        content, heading_style="ATX", bullets="-", code_language_callback=_code_language
    )
    markdown = _BLANK_LINES.sub("\n\n", markdown).strip()
    if not markdown:
        return None
    if title and not markdown.startswith("# "):
        markdown = f"# {title}\n\n{markdown}"
    return markdown
