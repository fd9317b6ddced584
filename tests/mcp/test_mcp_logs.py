"""`servers.logs`: one stderr handler for structlog and stdlib loggers; stdout stays clean."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from anyio.streams.buffered import BufferedByteReceiveStream

from servers.logs import configure_logging, get_logger

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpx2", "httpcore", "httpcore2")}
    config = structlog.get_config()
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in quiet.items():
            logging.getLogger(name).setLevel(old)
        structlog.configure(**config)


def _lose_link() -> None:
    raise ConnectionError("link lost")


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_json_goes_to_stderr_for_structlog_and_stdlib(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    configure_logging("json", "INFO")  # idempotent: still one handler, one line per event

    get_logger("drone", drone="192.168.10.1").info("takeoff", height_cm=80)
    get_logger("drone").debug("too chatty")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("httpx2").info("HTTP Request: POST ...")
    try:
        _lose_link()
    except ConnectionError:
        get_logger("drone").exception("command failed", command="land")

    out, err = capsys.readouterr()
    assert out == ""
    lines = json_lines(err)
    assert [(line["logger"], line["event"]) for line in lines] == [
        ("drone", "takeoff"),
        ("uvicorn.error", "Started server process [42]"),
        ("drone", "command failed"),
    ]
    assert lines[0]["drone"] == "192.168.10.1"
    assert lines[0]["height_cm"] == 80
    assert lines[0]["level"] == "info"
    assert lines[2]["exception"][0]["exc_type"] == "ConnectionError"
    assert "locals" not in lines[2]["exception"][0]["frames"][0]


@pytest.mark.usefixtures("restore_logging")
def test_console_format_and_levels(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "debug")
    get_logger("drone").debug("hello", battery=87)
    out, err = capsys.readouterr()
    assert out == ""
    assert "hello" in err
    assert "battery=87" in err
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("json", "chatty")


STDIO_SERVER = """
import sys
import anyio
from mcp.server.mcpserver import MCPServer
from servers.logs import configure_logging, get_logger

configure_logging("json", "INFO")
# Line-buffered, a stray print() lands on the SDK's stderr diversion at once instead of being
# flushed onto the restored stdout at exit.
sys.stdout.reconfigure(line_buffering=True)
server = MCPServer("stdio-demo")

@server.tool()
async def double(x: int) -> int:
    print("stray print")
    get_logger("tool").info("doubling", x=x)
    return 2 * x

anyio.run(server.run_stdio_async)
"""


def _request(id_: int, method: str, params: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).encode() + b"\n"


@pytest.mark.anyio
async def test_stdio_server_keeps_stdout_for_json_rpc(anyio_backend: str) -> None:
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    modern_meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    stdout: list[bytes] = []
    with anyio.fail_after(30):
        async with await anyio.open_process(
            [sys.executable, "-c", STDIO_SERVER], cwd=REPO, stderr=-1
        ) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            assert process.stderr is not None
            reader = BufferedByteReceiveStream(process.stdout)
            await process.stdin.send(_request(1, "initialize", init))
            stdout.append(await reader.receive_until(b"\n", 1 << 20) + b"\n")
            await process.stdin.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
            await process.stdin.send(_request(2, "tools/call", {"name": "double", "arguments": {"x": 21}}))
            stdout.append(await reader.receive_until(b"\n", 1 << 20) + b"\n")
            modern_call = {"name": "double", "arguments": {"x": 4}, "_meta": modern_meta}
            await process.stdin.send(_request(3, "tools/call", modern_call))
            stdout.append(await reader.receive_until(b"\n", 1 << 20) + b"\n")
            await process.stdin.aclose()
            stdout.append(await _drain(reader))
            stderr = (await _drain(process.stderr)).decode()
            assert await process.wait() == 0

    replies = json_lines(b"".join(stdout).decode())
    assert [reply["id"] for reply in replies] == [1, 2, 3]
    assert replies[1]["result"]["structuredContent"] == {"result": 42}
    # One stdio connection speaks one era, chosen by its first request.
    assert "serves the handshake protocol era" in replies[2]["error"]["message"]
    assert "stray print" in stderr
    assert '"event": "doubling"' in stderr


async def _drain(stream: Any) -> bytes:
    chunks: list[bytes] = []
    try:
        while True:
            chunks.append(await stream.receive())
    except (anyio.EndOfStream, anyio.IncompleteRead):
        pass
    return b"".join(chunks)
