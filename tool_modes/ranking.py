"""Rank tool definitions against a name or a free-text need ("how much battery is left").

BM25 (`bm25s`) over one document per tool: its name, title, description, and every
parameter's name and description, with the name and parameter names weighted up because
they are the densest signal. Tokens are split on `snake_case`, `kebab-case`, dots and
`camelCase`, lower-cased, stripped of English stop words and stemmed (Snowball), so
"turning", "turns" and "turn" meet, as do "batteries" and "battery".

An exact name (case-insensitive) always ranks first. A query nothing matches gets the
closest names by spelling instead, so a typo ("rotat", "get_batery") still finds its tool.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

import bm25s  # pyright: ignore[reportMissingTypeStubs]
import numpy as np
import snowballstemmer  # pyright: ignore[reportMissingTypeStubs]
from mcp_types import Tool

__all__ = ["Match", "ToolIndex", "tokenize"]

NAME_WEIGHT: Final = 3
TITLE_WEIGHT: Final = 2
PARAM_NAME_WEIGHT: Final = 2
NAME_BOOST: Final = 1.0
"""Weight of a second BM25 over names and titles alone, added to the whole-document score:
a query word that names the tool ("battery" for `get_battery`) beats the same word in passing
in a longer description ("... temperatures, barometer, battery ..." in `get_state`)."""

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_STOP_TEXT: Final = (
    "a an and are as at be but by for if in into is it its no not of on or such that the their "
    "then there these they this to was will with i me my we our you your he she them what which "
    "who whom how when where why do does did doing done have has had having am been being can "
    "could would should shall may might must please want need let make get give tell much many "
    "some any all each every just so than too very also from about again once here now same "
    "other only own more most"
)
_STOPWORDS: Final = frozenset(_STOP_TEXT.split())
"""Function words and request filler ("can you please get me ..."). Directions ("up", "left",
"over") are *not* stop words: they are arguments of the tools. "get" and "now" are filler in a
query but stay in documents (`get_state`), which are indexed whole."""

_SYNONYMS: Final[Mapping[str, tuple[str, ...]]] = {
    "picture": ("photo", "image"),
    "photo": ("image", "picture"),
    "image": ("photo", "picture"),
    "snapshot": ("photo", "image"),
    "pic": ("photo", "image"),
    "spin": ("rotate", "turn"),
    "turn": ("rotate",),
    "rotate": ("turn",),
    "high": ("height",),
    "altitude": ("height",),
    "fast": ("speed",),
    "faster": ("speed",),
    "slow": ("speed",),
    "slower": ("speed",),
    "quick": ("speed",),
    "light": ("led",),
    "lamp": ("led",),
    "colour": ("color",),
    "color": ("colour",),
    "metre": ("cm", "distance"),
    "meter": ("cm", "distance"),
    "remove": ("delete",),
    "delete": ("remove",),
    "find": ("search",),
    "search": ("find",),
}
"""A few everyday English equivalences, applied to query words only. Generic by design: they
hold for any tool set (cameras, lights, files), never name a particular tool."""


class _Stemmer(Protocol):
    def stemWord(self, word: str) -> str: ...


_stemmer = cast("_Stemmer", snowballstemmer.stemmer("english"))  # pyright: ignore[reportUnknownMemberType]


def tokenize(text: str, *, query: bool = False) -> list[str]:
    """Lower-case stemmed word tokens of `text`, split on case changes and punctuation.

    A `query` also loses its stop words (unless that leaves nothing) and gains synonyms.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    if query:
        words = [w for w in words if w not in _STOPWORDS] or words
        words += [s for w in words for s in _SYNONYMS.get(w, ())]
    return [_stem(w) for w in words]


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """Snowball is pure Python (~0.2 ms a word); tool vocabularies are small and repetitive."""
    return _stemmer.stemWord(word)


@dataclass(frozen=True, slots=True)
class Match:
    tool: Tool
    score: float
    exact: bool = False


def _document(tool: Tool) -> list[str]:
    tokens = tokenize(tool.name) * NAME_WEIGHT
    if tool.title:
        tokens += tokenize(tool.title) * TITLE_WEIGHT
    tokens += tokenize(tool.description or "")
    for name, schema in _properties(tool.input_schema).items():
        tokens += tokenize(name) * PARAM_NAME_WEIGHT
        tokens += tokenize(_text_of(schema))
    return tokens


def _properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    props = schema.get("properties")
    return cast("dict[str, Any]", props) if isinstance(props, dict) else {}


def _text_of(schema: object) -> str:
    """A parameter's description and title, and its enum values (which name what it does)."""
    if not isinstance(schema, dict):
        return ""
    fields = cast("dict[str, Any]", schema)
    parts = [str(fields.get("description") or ""), str(fields.get("title") or "")]
    enum = fields.get("enum")
    if isinstance(enum, list):
        parts += [str(v) for v in cast("list[object]", enum)]
    for key in ("anyOf", "oneOf"):
        options = fields.get(key)
        if isinstance(options, list):
            parts += [_text_of(o) for o in cast("list[object]", options)]
    return " ".join(parts)


class _Field:
    """One BM25 index over one text per tool."""

    def __init__(self, documents: list[list[str]]) -> None:
        self.size = len(documents)
        self.vocabulary = frozenset(t for d in documents for t in d)
        self._bm25: bm25s.BM25 | None = None
        if self.vocabulary:
            self._bm25 = bm25s.BM25()
            self._bm25.index(documents, show_progress=False)  # pyright: ignore[reportUnknownMemberType]

    def scores(self, terms: list[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
        known = [t for t in terms if t in self.vocabulary]
        if self._bm25 is None or not known:
            return np.zeros(self.size, dtype=np.float64)
        raw = self._bm25.get_scores(known)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        return np.asarray(raw, dtype=np.float64)


class ToolIndex:
    """A BM25 index over one tool list; build once per list, query many times."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self.tools: tuple[Tool, ...] = tuple(tools)
        self._by_name = {t.name.lower(): t for t in self.tools}
        self._documents = _Field([_document(t) for t in self.tools])
        self._names = _Field([tokenize(t.name) + tokenize(t.title or "") for t in self.tools])

    def search(self, query: str, *, limit: int = 3) -> list[Match]:
        """The best `limit` tools for `query`, best first (maybe fewer: only tools that match);
        when none does, the names spelled most like it; [] when not even those."""
        if limit < 1:
            return []
        query = query.strip()
        exact = self._by_name.get(query.lower())
        ranked: list[Match] = [Match(exact, float("inf"), exact=True)] if exact is not None else []
        for match in self._bm25_matches(query):
            if len(ranked) >= limit:
                break
            if match.tool is not exact:
                ranked.append(match)
        if not ranked:
            ranked = [Match(t, 0.0) for t in self.closest(query, limit)]
        return ranked[:limit]

    def _bm25_matches(self, query: str) -> list[Match]:
        terms = tokenize(query, query=True)
        scores = self._documents.scores(terms) + NAME_BOOST * self._names.scores(terms)
        order = sorted(range(len(self.tools)), key=lambda i: (-float(scores[i]), i))
        return [Match(self.tools[i], float(scores[i])) for i in order if scores[i] > 0]

    def closest(self, query: str, limit: int) -> list[Tool]:
        """Tools whose names are spelled most like `query` (typos, partial names)."""
        key = "_".join(w.lower() for w in _WORD.findall(query))
        if not key:
            return []
        names = difflib.get_close_matches(key, list(self._by_name), n=limit, cutoff=0.6)
        names += [n for n in self._by_name if key in n and n not in names]
        return [self._by_name[n] for n in names[:limit]]
