"""https: the checked address is dialled, and the certificate is still verified against the name.

A TLS server on 127.0.0.1 holds a certificate for `secure.test` from a throw-away CA
(trustme). The fetcher resolves `secure.test` and `impostor.test` to that address through the
injected resolver; only the name on the certificate is accepted.
"""

from __future__ import annotations

import contextlib
import ipaddress
import ssl
from collections.abc import AsyncGenerator

import anyio
import pytest
import trustme
from anyio.abc import ByteStream
from anyio.streams.tls import TLSListener

from tests.fetch.fetch_client import call, fetched, text_of
from tests.fetch.website import Resolver, settings

pytestmark = pytest.mark.anyio

BODY = b"<html><head><title>Secure page</title></head><body><h1>Secure page</h1><p>Served over TLS to the name on the certificate.</p></body></html>"  # noqa: E501


async def _answer(stream: ByteStream) -> None:
    """One canned HTTP/1.1 response per connection (the server side of the test, not the subject)."""
    async with stream:
        request = b""
        with anyio.fail_after(5):
            while b"\r\n\r\n" not in request and len(request) < 65536:
                request += await stream.receive()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
        )
        await stream.send(head.encode() + BODY)


async def _handle(stream: ByteStream) -> None:
    # The client rejecting our certificate and hanging up is the point of some tests.
    with contextlib.suppress(
        anyio.BrokenResourceError, anyio.EndOfStream, ssl.SSLError, OSError, TimeoutError
    ):
        await _answer(stream)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
async def tls_port(anyio_backend: str, ca: trustme.CA) -> AsyncGenerator[int]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("secure.test").configure_cert(server_context)
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port: int = tcp.extra(anyio.abc.SocketAttribute.local_port)
    listener = TLSListener(tcp, server_context, standard_compatible=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _handle)
        yield port
        tg.cancel_scope.cancel()
    await listener.aclose()


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def _resolver() -> Resolver:
    return Resolver({"secure.test": ("127.0.0.1",), "impostor.test": ("127.0.0.1",)})


async def test_https_to_the_certificate_name_works(tls_port: int, ca: trustme.CA, dials: list[str]) -> None:
    config = settings(_resolver(), ssl_context=_client_context(ca), robots_txt=False)
    text = await fetched(config, f"https://secure.test:{tls_port}/")
    assert text.startswith(f"Contents of https://secure.test:{tls_port}/:\n# Secure page")
    assert dials == ["127.0.0.1"]
    assert ipaddress.ip_address(dials[0]).is_loopback


@pytest.mark.parametrize("host", ["impostor.test", "127.0.0.1"])
async def test_https_certificate_must_match_the_name(tls_port: int, ca: trustme.CA, host: str) -> None:
    config = settings(_resolver(), ssl_context=_client_context(ca), robots_txt=False)
    result = await call(config, f"https://{host}:{tls_port}/")
    assert result.is_error
    text = text_of(result)
    assert "CERTIFICATE_VERIFY_FAILED" in text, text
    assert "mismatch" in text, text


async def test_https_with_an_untrusted_ca_fails(tls_port: int) -> None:
    result = await call(settings(_resolver(), robots_txt=False), f"https://secure.test:{tls_port}/")
    assert result.is_error
    assert "CERTIFICATE_VERIFY_FAILED" in text_of(result)
