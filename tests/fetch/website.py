"""A test web site on 127.0.0.1 and the fetcher settings that reach it.

The site serves the HTML fixtures and everything a fetcher must survive: plain text, JSON,
binary, a huge body, a gzip bomb, bodies that stall, redirect chains and redirects to places
it must not go, and robots.txt files of every kind (chosen by the Host name, so one server
plays several sites). Names under `.test` resolve through `resolver`, never through DNS.
"""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import json
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from servers.fetch import FetchSettings
from servers.fetch.addresses import IPAddress
from servers.http import HttpSettings, serve

FIXTURES: Final = Path(__file__).parent / "fixtures"
LOOPBACK: Final = ipaddress.ip_address("127.0.0.1")

MiB: Final = 1024 * 1024
BOMB_BYTES: Final = 64 * MiB
"""What the gzip bomb inflates to (it is ~64 KB on the wire)."""
HUGE_BYTES: Final = 64 * MiB
"""The most the endless body sends before giving up (the fetcher must stop long before)."""
CHUNK: Final = 64 * 1024

ROBOTS: Final = "User-agent: *\nDisallow: /private/\n\nUser-agent: GreedyBot\nDisallow: /\n"

CHARSET_TEXT: Final = r"Declared charset test: plain words, a literal \u0041\x42 escape and uryyb."
"""The body of the `/charset/` pages, ASCII: any codec that is a character set leaves it as it is."""
NATIVE_TEXT: Final[Mapping[str, str]] = {
    "shift_jis": "東京の天気は晴れ、ときどき曇り",
    "euc-kr": "서울의 날씨는 맑음",
    "windows-1250": "Žluťoučký kůň úpěl ďábelské ódy",
    "iso-8859-2": "Žluťoučký kůň úpěl ďábelské ódy",
    "koi8-r": "Съешь же ещё этих мягких булок",
    "windows-1252": "Grüße aus Zürich, déjà vu",
    "utf-8": "Grüße, Žluťoučký kůň, Привет, 東京",
}
"""The text of the `/encoded/{charset}` pages, in that charset."""
QUADRATIC: Final = 100_000
"""Filler letters on the punycode pages: CPython's punycode decoder takes ~0.4 s on this many
(11-16 s on 300 KB), on whatever thread calls it."""

NAMES: Final[Mapping[str, tuple[str, ...]]] = {
    "site.test": ("127.0.0.1",),
    "www.site.test": ("127.0.0.1",),
    "forbidden-robots.test": ("127.0.0.1",),
    "missing-robots.test": ("127.0.0.1",),
    "broken-robots.test": ("127.0.0.1",),
    "sneaky-robots.test": ("127.0.0.1",),
    "internal.test": ("10.0.0.5",),
    "loopback-alias.test": ("127.0.0.2",),
    "metadata-alias.test": ("169.254.169.254",),
    "mixed.test": ("127.0.0.1", "192.168.1.10"),
    "v6-mapped.test": ("::ffff:10.1.2.3",),
    "cgnat.test": ("100.64.0.9",),
    "punycode-robots.test": ("127.0.0.1",),
}
"""What `.test` names resolve to. 127.0.0.1 is allowlisted in `settings()`; nothing else is."""


def _bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MiB)
    parts = [compressor.compress(zeros) for _ in range(BOMB_BYTES // MiB)]
    parts.append(compressor.flush())
    return b"".join(parts)


@dataclass
class Resolver:
    """The injected resolver: `NAMES`, and a log of every question (there is no DNS in tests)."""

    names: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: NAMES)
    asked: list[str] = field(default_factory=list[str])

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        try:
            return [ipaddress.ip_address(a) for a in self.names[host]]
        except KeyError:
            raise OSError(f"[Errno -2] Name or service not known: {host!r}") from None


@dataclass
class Site:
    """The running test site: where it listens, what it saw, and the latch holding stalled bodies."""

    port: int
    requests: list[tuple[str, str, str]] = field(default_factory=list[tuple[str, str, str]])
    """(Host header, path, User-Agent) of every request, in order."""
    release: anyio.Event = field(default_factory=anyio.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for _host, path, _ua in self.requests]


def build_site(site_holder: list[Site]) -> Starlette:
    bomb = _bomb()

    def site() -> Site:
        return site_holder[0]

    def host_name(request: Request) -> str:
        return request.headers.get("host", "").rsplit(":", 1)[0]

    async def log(request: Request) -> None:
        site().requests.append(
            (request.headers.get("host", ""), request.url.path, request.headers.get("user-agent", ""))
        )

    async def robots(request: Request) -> Response:
        await log(request)
        name = host_name(request)
        if name == "forbidden-robots.test":
            return PlainTextResponse("go away", status_code=403)
        if name == "missing-robots.test":
            return PlainTextResponse("not found", status_code=404)
        if name == "broken-robots.test":
            return PlainTextResponse("oops", status_code=503)
        if name == "sneaky-robots.test":
            return RedirectResponse("http://10.0.0.8/robots.txt", status_code=301)
        if name == "punycode-robots.test":
            body = (ROBOTS + "# padding-" + "a" * QUADRATIC).encode("ascii")
            return Response(body, headers={"Content-Type": "text/plain; charset=punycode"})
        return PlainTextResponse(ROBOTS)

    async def fixture(request: Request) -> Response:
        await log(request)
        path = FIXTURES / f"{request.path_params['name']}.html"
        return Response(path.read_bytes(), media_type="text/html; charset=utf-8")

    async def text(request: Request) -> Response:
        await log(request)
        lines = "".join(f"line {i:05d} of the plain text document\n" for i in range(400))
        return PlainTextResponse(lines)

    async def data(request: Request) -> Response:
        await log(request)
        return JSONResponse({"name": "tello", "tags": ["drone", "mcp"], "battery": 87})

    async def binary(request: Request) -> Response:
        await log(request)
        return Response(b"\x89PNG\r\n\x1a\n" + bytes(64), media_type="image/png")

    async def echo(request: Request) -> Response:
        await log(request)
        return PlainTextResponse(
            json.dumps({"host": request.headers.get("host"), "user_agent": request.headers.get("user-agent")})
        )

    async def compressed(request: Request) -> Response:
        await log(request)
        html = (FIXTURES / "blog.html").read_bytes()
        if request.path_params["encoding"] == "gzip":
            return Response(gzip.compress(html), media_type="text/html", headers={"Content-Encoding": "gzip"})
        return Response(zlib.compress(html), media_type="text/html", headers={"Content-Encoding": "deflate"})

    async def gzip_bomb(request: Request) -> Response:
        await log(request)
        return Response(bomb, media_type="text/html", headers={"Content-Encoding": "gzip"})

    async def huge(request: Request) -> Response:
        await log(request)

        async def body() -> AsyncIterator[bytes]:
            chunk = b"x" * CHUNK
            for _ in range(HUGE_BYTES // CHUNK):
                yield chunk

        return StreamingResponse(body(), media_type="text/plain")

    async def huge_declared(request: Request) -> Response:
        await log(request)

        async def body() -> AsyncIterator[bytes]:
            yield b"x" * CHUNK
            await site().release.wait()

        return StreamingResponse(body(), media_type="text/plain", headers={"Content-Length": str(HUGE_BYTES)})

    async def stall_body(request: Request) -> Response:
        await log(request)

        async def body() -> AsyncIterator[bytes]:
            yield b"<html><body><p>first part, then nothing"
            await site().release.wait()

        return StreamingResponse(body(), media_type="text/html")

    async def stall_headers(request: Request) -> Response:
        await log(request)
        await site().release.wait()
        return PlainTextResponse("too late")

    async def chain(request: Request) -> Response:
        await log(request)
        left = int(request.path_params["left"])
        if left == 0:
            return Response("<html><body><h1>Arrived</h1><p>End of the redirect chain.</p></body></html>",
                            media_type="text/html")  # fmt: skip
        status = (301, 302, 303, 307, 308)[left % 5]
        return RedirectResponse(f"/chain/{left - 1}", status_code=status)

    async def charset(request: Request) -> Response:
        """`CHARSET_TEXT` (and `size` filler letters) declaring the charset the path names: in
        `Content-Type` (as `type`, default text/html), or with `where=meta` in a `<meta>` tag
        and nowhere else."""
        await log(request)
        name = request.path_params["name"]
        media = request.query_params.get("type", "text/html")
        filler = "abcdefghij" * (int(request.query_params.get("size", "0")) // 10)
        in_meta = request.query_params.get("where") == "meta"
        if media == "text/html":
            meta = f'<meta charset="{name}">' if in_meta else ""
            body = (
                f"<html><head>{meta}<title>Charset page</title></head><body><article>"
                f"<h1>Charset page</h1><p>{CHARSET_TEXT}</p></article></body></html>"
            )
        else:
            body = f"{CHARSET_TEXT}\n"
        # Punycode reads what follows the last "-" as its extended part: letters there are
        # inserted one by one into the output, which is what makes the decoder quadratic.
        body += f"-{filler}" if filler else ""
        content_type = media if in_meta else f"{media}; charset={name}"
        return Response(body.encode("ascii"), headers={"Content-Type": content_type})

    async def encoded(request: Request) -> Response:
        """`NATIVE_TEXT[charset]` in an HTML page encoded in the charset the path names, declared in
        `Content-Type` or (`where=meta`) only in a `<meta>` tag."""
        await log(request)
        name = request.path_params["name"]
        in_meta = request.query_params.get("where") == "meta"
        meta = f'<meta charset="{name}">' if in_meta else ""
        native = NATIVE_TEXT[name]
        body = (
            f"<html><head>{meta}<title>Encoded page</title></head><body><article><h1>Encoded page</h1>"
            f"<p>{native}</p><p>{native}, once more.</p></article></body></html>"
        )
        content_type = "text/html" if in_meta else f"text/html; charset={name}"
        return Response(body.encode(name), headers={"Content-Type": content_type})

    async def big(request: Request) -> Response:
        """`size` bytes of one kind of big page: `paragraphs` (HTML, ~0.8 s of conversion a MiB),
        `links` (HTML, ~5 s at 256 KiB, ~17 s a MiB), `bytes` (every byte value, as text/plain
        in `charset`)."""
        await log(request)
        kind = request.path_params["kind"]
        size = int(request.query_params.get("size", str(MiB)))
        if kind == "bytes":
            charset = request.query_params.get("charset", "utf-7")
            body = (bytes(range(256)) * (size // 256 + 1))[:size]
            return Response(body, headers={"Content-Type": f"text/plain; charset={charset}"})
        unit = {
            "paragraphs": b"<p>"
            + b"Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 8
            + b"</p>\n",
            "links": b"<a href='/x'>l</a> ",
        }[kind]
        head = b"<html><head><title>Big page</title></head><body><article><h1>Big page</h1><div>"
        body = head + unit * ((size - len(head)) // len(unit)) + b"</div></article></body></html>"
        return Response(body, headers={"Content-Type": "text/html; charset=utf-8"})

    async def redirect_to(request: Request) -> Response:
        await log(request)
        return RedirectResponse(request.query_params["url"], status_code=302)

    async def status(request: Request) -> Response:
        await log(request)
        return PlainTextResponse("status page", status_code=int(request.path_params["code"]))

    async def private(request: Request) -> Response:
        await log(request)
        return PlainTextResponse("robots.txt should have kept you out")

    return Starlette(
        routes=[
            Route("/robots.txt", robots),
            Route("/page/{name}", fixture),
            Route("/text", text),
            Route("/data.json", data),
            Route("/image.png", binary),
            Route("/echo", echo),
            Route("/compressed/{encoding}", compressed),
            Route("/bomb", gzip_bomb),
            Route("/huge", huge),
            Route("/huge-declared", huge_declared),
            Route("/stall/body", stall_body),
            Route("/stall/headers", stall_headers),
            Route("/chain/{left:int}", chain),
            Route("/redirect", redirect_to),
            Route("/charset/{name}", charset),
            Route("/encoded/{name}", encoded),
            Route("/big/{kind}", big),
            Route("/status/{code:int}", status),
            Route("/private/{rest:path}", private),
        ]
    )


@contextlib.asynccontextmanager
async def running_site() -> AsyncGenerator[Site]:
    """The test site on 127.0.0.1, on a free port, for the duration of the block."""
    holder: list[Site] = []
    app = build_site(holder)
    http = HttpSettings(port=0, shutdown_timeout=1.0)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, http)
        site = Site(port=port)
        holder.append(site)
        try:
            yield site
        finally:
            site.release.set()
            tg.cancel_scope.cancel()


def settings(resolver: Resolver | None = None, **overrides: object) -> FetchSettings:
    """Test settings: 127.0.0.1 allowlisted, names via `resolver`, small caps so tests are fast."""
    values: dict[str, object] = {
        "allow": ("127.0.0.1",),
        "resolver": resolver or Resolver(),
        "max_response_bytes": 2 * MiB,
        "max_decompressed_bytes": 4 * MiB,
        "total_timeout": 10.0,
        "connect_timeout": 2.0,
    }
    values.update(overrides)
    return FetchSettings(**values)  # pyright: ignore[reportArgumentType]
