"""Helpers of the tracing tests: a caller's span as a `traceparent`, and span look-ups."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import propagate

from tests.tracing.receiver import Received, named


@dataclass(frozen=True)
class Parent:
    """The caller's span, as a W3C `traceparent` names it."""

    trace_id: str
    span_id: str

    @classmethod
    def new(cls) -> Parent:
        return cls(os.urandom(16).hex(), os.urandom(8).hex())

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


@contextlib.contextmanager
def current(parent: Parent) -> Generator[None]:
    """`parent` as this task's current span: an instrumented client injects it into `_meta`."""
    token = otel_context.attach(propagate.extract({"traceparent": parent.traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


def the(spans: list[Received], name: str) -> Received:
    found = named(spans, name)
    assert len(found) == 1, f"{name}: {len(found)} spans among {[s.name for s in spans]}"
    return found[0]
