"""Logs a newcomer reads: console lines on a terminal and JSON otherwise, and the SDK's per-endpoint
"session manager started" line once, not once per mounted endpoint."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from servers.logs import configure_logging, get_logger


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    sdk = logging.getLogger("mcp.server.streamable_http_manager")
    filters = sdk.filters[:]
    config = structlog.get_config()
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        sdk.filters[:] = filters
        structlog.configure(**config)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("restore_logging")
def test_auto_is_json_off_a_terminal_and_console_lines_on_one(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = io.StringIO()
    monkeypatch.setattr("sys.stderr", piped)
    configure_logging("auto", "INFO")
    get_logger("drone").info("takeoff", height_cm=80)
    assert json.loads(piped.getvalue())["event"] == "takeoff"

    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    configure_logging("auto", "INFO")
    get_logger("drone").info("takeoff", height_cm=80)
    line = terminal.getvalue()
    assert "takeoff" in line
    assert "height_cm" in line
    with pytest.raises(ValueError, match="Expecting value"):
        json.loads(line)


@pytest.mark.usefixtures("restore_logging")
def test_the_session_manager_lines_come_once(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    configure_logging("json", "INFO")
    configure_logging("json", "INFO")  # reconfiguring does not stack filters or forget the first
    sdk = logging.getLogger("mcp.server.streamable_http_manager")
    for _ in range(6):
        sdk.info("StreamableHTTP session manager started")
    sdk.info("Created new transport with session ID: %s", "abc")
    sdk.info("Created new transport with session ID: %s", "def")
    events = [json.loads(line)["event"] for line in err.getvalue().splitlines()]
    assert events.count("StreamableHTTP session manager started") == 1
    assert len([e for e in events if e.startswith("Created new transport")]) == 2
