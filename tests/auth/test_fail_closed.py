"""Access control fails closed: a server mounted with access control on refuses a call that
reaches it without a token (as it would if the request's context were ever lost on the way),
while the same kind of server mounted without access control serves anyone."""

from __future__ import annotations

import pytest
from mcp import Client

from servers.auth.settings import AccessSettings
from servers.http import HttpSettings, build_app
from servers.validation import ReadableArgumentsServer

pytestmark = pytest.mark.anyio


def _server() -> ReadableArgumentsServer:
    server = ReadableArgumentsServer("probe")

    @server.tool()
    def ping() -> str:  # pyright: ignore[reportUnusedFunction]
        return "pong"

    @server.resource("probe://status")
    def status() -> str:  # pyright: ignore[reportUnusedFunction]
        return "fine"

    return server


async def test_a_call_without_a_token_is_refused_when_access_control_is_on() -> None:
    server = _server()
    build_app({"/probe": server}, settings=HttpSettings(access=AccessSettings(token="t0ken-for-tests")))
    async with Client(server) as tokenless:  # in memory: no HTTP request, no token
        refused = await tokenless.call_tool("ping", {})
        assert refused.is_error
        text = refused.content[0].text  # pyright: ignore[reportAttributeAccessIssue]
        assert "no access token reached this call" in text
        with pytest.raises(Exception, match="no access token reached this call"):
            await tokenless.read_resource("probe://status")


async def test_the_same_server_without_access_control_serves_anyone() -> None:
    server = _server()
    build_app({"/probe": server}, settings=HttpSettings())
    async with Client(server) as anyone:
        answered = await anyone.call_tool("ping", {})
        assert not answered.is_error
        assert answered.content[0].text == "pong"  # pyright: ignore[reportAttributeAccessIssue]
