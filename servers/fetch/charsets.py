"""Which declared charsets are honoured, and how a body becomes text.

The rule: a charset a page declares (in `Content-Type`, or for HTML without one, in a
`<meta>` or XML declaration) is honoured when Python knows it as a *text* encoding
(`codecs.lookup(label)._is_text_encoding`) that is a character set. Python's codec registry
also answers to labels that are not character sets, and a page can name any of them:

* bytes-to-bytes codecs (base64, zlib, bz2, hex, uu, quopri, rot13): not text encodings;
* `punycode` and `idna`, encodings of *host names*: CPython's punycode decoder is quadratic
  (300 KB took 3.6 s, 10 MiB about an hour), and `idna` fails on anything longer than a label;
* `unicode_escape` and `raw_unicode_escape`, Python's string-literal syntax: they would turn
  a page's `\\u0041` into `A`;
* `undefined`, which fails on every input.

A charset that is not honoured, or not known at all, is never used: the body is read as UTF-8
with undecodable bytes replaced (U+FFFD), and the answer carries a note saying so.

Every honoured codec is a C codec, linear in its input: on 1 MiB of random bytes the slowest
(UTF-7) took 108 ms, UTF-32 60 ms, the rest under 30 ms (measured 2026-11, this machine). That
is still too long for the event loop at the 10 MiB cap, so decoding runs in the conversion
worker (see `servers.fetch.workers`), under the fetch deadline.

HTML without a charset in its `Content-Type` is sniffed as readability-lxml does it (the first
declared charset that decodes the page, else chardet), but linearly: the declaration patterns
cannot run past the next `<` or `>`, at most `MAX_DECLARED` declarations are tried, and chardet
sees a sample of at most `CHARDET_SAMPLE` bytes of text.
"""

from __future__ import annotations

import codecs
import itertools
import re
from dataclasses import dataclass
from typing import Final

import chardet

FALLBACK: Final = "utf-8"
NOT_CHARSETS: Final = frozenset({"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined"})
"""Text codecs (by `CodecInfo.name`) that are not character sets; never honoured."""
MAX_DECLARED: Final = 5
"""In-page charset declarations tried, in order (readability tries them all)."""
CHARDET_SAMPLE: Final = 64 * 1024
"""Bytes of tag-stripped text chardet guesses from (readability gives it the whole page)."""

_SUPERSETS: Final = {
    "big5": "big5hkscs",
    "gb2312": "gb18030",
    "ascii": "utf-8",
    "maccyrillic": "cp1251",
    "win1251": "cp1251",
    "win-1251": "cp1251",
    "windows-1251": "cp1251",
}
"""readability-lxml's `fix_charset`: labels read as the larger charset pages really use."""

_META: Final = re.compile(rb"""<meta[^<>]*?charset=["']*([^"'<>\s;]+)""", re.IGNORECASE)
_XML: Final = re.compile(rb"""^<\?xml[^<>]*?encoding=["']*([^"'<>\s]+)""")
_TAGS: Final = re.compile(rb"<[^<>]*>")


def honoured(label: str) -> str | None:
    """The codec a declared `label` is decoded with, or None when the rule refuses it."""
    try:
        info = codecs.lookup(label.strip())
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in NOT_CHARSETS:
        return None
    return info.name


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    note: str | None = None
    """Why the declared charset was not used, for the answer; None when nothing was refused."""


def _note(label: str, used: str) -> str:
    shown = label if len(label) <= 40 else label[:40] + "..."
    return (
        f"Note: the page declares charset {shown!r}, which is not a character set this tool "
        f"decodes; it was read as {used} (undecodable bytes replaced by U+FFFD).\n"
    )


def decode(body: bytes, charset: str | None) -> Decoded:
    """`body` in its declared `charset` when the rule honours it, else as UTF-8 with a note."""
    if charset is None:
        return Decoded(body.decode(FALLBACK, errors="replace"))
    codec = honoured(charset)
    if codec is None:
        return Decoded(body.decode(FALLBACK, errors="replace"), _note(charset, "UTF-8"))
    return Decoded(body.decode(codec, errors="replace"))


def decode_html(body: bytes, charset: str | None) -> Decoded:
    """HTML as text: the `Content-Type` charset if there is one, else what the page declares."""
    if charset is not None:
        return decode(body, charset)
    declared = [m.group(1) for m in itertools.islice(_META.finditer(body), MAX_DECLARED)]
    xml = _XML.match(body)
    if xml is not None:
        declared.append(xml.group(1))
    refused: str | None = None
    for raw in dict.fromkeys(declared):
        label = raw.decode("ascii", "replace")
        codec = honoured(fix_charset(label))
        if codec is None:
            refused = refused or label
            continue
        try:
            return Decoded(body.decode(codec))
        except UnicodeDecodeError:
            continue
    codec = _guess(body)
    text = body.decode(codec, errors="replace")
    return Decoded(text, None if refused is None else _note(refused, codec))


def fix_charset(label: str) -> str:
    return _SUPERSETS.get(label.lower(), label.lower())


def _guess(body: bytes) -> str:
    text = _TAGS.sub(b" ", body[: CHARDET_SAMPLE * 4]).strip()[:CHARDET_SAMPLE]
    if len(text) < 10:
        return FALLBACK
    guess = chardet.detect(text)["encoding"]
    if guess is None:
        return FALLBACK
    return honoured(fix_charset(guess)) or FALLBACK
