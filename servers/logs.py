"""Logging for every process in the suite: structlog on top of stdlib logging, always on stderr.

stdout is reserved: a stdio MCP server speaks JSON-RPC on it, and one stray line corrupts the
stream. So there is exactly one handler, on the root logger, writing to whatever `sys.stderr`
is at the time of the call. structlog loggers and plain stdlib loggers (uvicorn, httpx2, the
MCP SDK) all end up in it and are rendered the same way: one JSON object per line in
production, aligned key=value lines on a console.

`configure_logging` replaces the root handlers rather than adding to them, so it also undoes
the `logging.basicConfig` that every `MCPServer(...)` constructor runs, whichever came first.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import Processor

__all__ = ["LogFormat", "configure_logging", "default_to_stderr", "get_logger"]

LogFormat = Literal["auto", "json", "console"]
"""`auto`: console lines when stderr is a terminal (a person reading), JSON otherwise."""

_ONCE = {
    "mcp.server.streamable_http_manager": (
        "StreamableHTTP session manager started",
        "StreamableHTTP session manager shutting down",
    )
}
"""Lines the SDK logs once per mounted endpoint (six times for `tello-mcp serve`): kept once."""


class _Once(logging.Filter):
    def __init__(self, messages: tuple[str, ...]) -> None:
        super().__init__()
        self.messages = messages
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message not in self.messages:
            return True
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


_QUIET_BELOW_WARNING = ("httpx", "httpx2", "httpcore", "httpcore2")
"""Libraries that log every HTTP request at INFO; their noise is only useful when debugging."""


class _StderrHandler(logging.StreamHandler[TextIO]):
    """A handler bound to the *current* `sys.stderr`, never to stdout.

    Resolving the stream per record keeps logs on stderr even after a test harness or a
    stdio transport swaps `sys.stderr` out.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # `handle()` holds the handler lock here
        super().emit(record)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def default_to_stderr() -> None:
    """Until `configure_logging` runs (tests, library use), structlog's own default would print
    every event, debug included, to stdout: send INFO and above to stderr instead."""
    if not structlog.is_configured():
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        )


def configure_logging(fmt: LogFormat = "json", level: int | str = logging.INFO) -> None:
    """Route structlog and stdlib logging to one stderr handler rendering `fmt`.

    Call once at start-up, before serving; calling again reconfigures (the last call wins).
    """
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    if isinstance(level, str):
        resolved = logging.getLevelNamesMapping().get(level.upper())
        if resolved is None:
            raise ValueError(f"unknown log level {level!r}")
        level = resolved

    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        # Locals stay out: they may hold tokens, and they bloat every error line.
        tracebacks = ExceptionDictTransformer(show_locals=False, use_rich=False)
        pre_render: list[Processor] = [structlog.processors.ExceptionRenderer(tracebacks)]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        pre_render = []

    shared = _shared_processors()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *pre_render, renderer],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_BELOW_WARNING:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    for name, messages in _ONCE.items():
        logger = logging.getLogger(name)
        for old_filter in [f for f in logger.filters if isinstance(f, _Once)]:
            logger.removeFilter(old_filter)
        logger.addFilter(_Once(messages))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **context: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger for `name`, bound to `context` (e.g. `drone="192.168.10.1"`)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger.bind(**context) if context else logger
