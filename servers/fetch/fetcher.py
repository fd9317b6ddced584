"""The guarded HTTP fetch: check, resolve, check again, dial exactly what was checked.

Every hop (robots.txt, the page, each redirect) goes through `_target`: the URL is parsed,
its host turned into addresses (an IP literal in any spelling, or the injected resolver's
answer), and every address judged by `classify` before anything is sent. The request then
goes to the checked address itself: the URL handed to httpcore carries the IP, the `Host`
header and TLS SNI carry the name, and TLS verifies the certificate against the name. There
is no second resolution, so no DNS-rebinding window, and a `_PinnedBackend` refuses to dial
anything but a checked address as a second line of defence. No proxy is ever used (httpcore
does not read proxy variables), since a proxy would resolve names itself.
"""

from __future__ import annotations

import contextlib
import ssl
import zlib
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol, cast
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import anyio
import httpcore2
import httpx2
import structlog

from servers import tracing
from servers.fetch.addresses import (
    METADATA_HOSTS,
    IPAddress,
    classify,
    connect_address,
    normalise_host,
    parse_ip_literal,
)
from servers.fetch.charsets import decode
from servers.fetch.errors import (
    AddressRefused,
    FetchFailed,
    LimitExceeded,
    RobotsRefused,
    Rule,
)
from servers.fetch.settings import FetchSettings

REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_HOST_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_log = structlog.get_logger("fetch.http")


@dataclass(frozen=True, slots=True)
class Target:
    """One checked request destination: the URL as sent and the address that passed the rules."""

    url: httpx2.URL
    host: str
    """The URL's host: an ASCII (IDNA) name, or the canonical spelling of an IP literal."""
    port: int
    address: IPAddress
    """The address dialled; passed `classify` or the allowlist."""

    @property
    def origin(self) -> str:
        return f"{self.url.scheme}://{self.authority}"

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.url.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched response body, decoded from gzip/deflate, with what is needed to render it."""

    url: str
    status: int
    content_type: str
    """The media type, lower case, without parameters; "" when the server sent none."""
    charset: str | None
    body: bytes

    def text(self) -> str:
        """The body in its declared charset if `servers.fetch.charsets` honours it, else UTF-8.

        CPU work linear in the body: call it off the event loop for anything but small bodies."""
        return decode(self.body, self.charset).text


def parse_url(raw: str) -> httpx2.URL:
    """`raw` as an http(s) URL with a canonical host, or `AddressRefused` naming the rule."""
    text = raw.strip()
    try:
        split = urlsplit(text)
        port = split.port
    except ValueError as exc:
        raise AddressRefused(Rule.INVALID_URL, f"{raw!r} is not a valid URL ({exc})") from None
    scheme = split.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"'{scheme}:'" if scheme else "none"
        raise AddressRefused(Rule.SCHEME, f"only http and https URLs are fetched, scheme was {shown}")
    if split.username is not None or split.password is not None:
        raise AddressRefused(Rule.CREDENTIALS, "URLs with a user name or password are not fetched")
    host = split.hostname
    if not host:
        raise AddressRefused(Rule.INVALID_URL, f"{raw!r} has no host")
    netloc = _netloc(_literal(host) or host, port)
    try:
        url = httpx2.URL(urlunsplit((scheme, netloc, split.path or "/", split.query, "")))
    except httpx2.InvalidURL as exc:
        raise AddressRefused(Rule.INVALID_URL, f"{raw!r} is not a valid URL ({exc})") from None
    # IDNA mapping can turn a name into a literal (full-width digits and dots): look again.
    host = ascii_host(url)
    canonical = _literal(host)
    if canonical is not None and canonical != host:
        url = url.copy_with(host=canonical)
    if canonical is None and not set(host) <= _HOST_NAME_CHARS:
        raise AddressRefused(Rule.INVALID_URL, f"host {host!r} is not a valid host name")
    return url


def ascii_host(url: httpx2.URL) -> str:
    """The host as sent on the wire: IDNA-encoded, lower case, IPv6 without brackets."""
    return url.raw_host.decode("ascii")


def _literal(host: str) -> str | None:
    """The canonical spelling of an IP-literal host (any spelling), or None for a name."""
    try:
        address = parse_ip_literal(host)
    except ValueError as exc:
        raise AddressRefused(Rule.INVALID_URL, str(exc)) from None
    return None if address is None else str(address)


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


class _PinnedBackend(httpcore2.AsyncNetworkBackend):
    """Dials only addresses that passed the rules in this session."""

    def __init__(self, checked: set[str]) -> None:
        self._checked = checked
        # httpcore2 types AnyIOBackend as "maybe a stub" (it is conditional on anyio); it is not.
        self._inner = cast(httpcore2.AsyncNetworkBackend, httpcore2.AnyIOBackend())

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        if host not in self._checked:
            raise httpcore2.ConnectError(f"refusing to dial {host}: not a checked address")
        return await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Inflater(Protocol):
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...
    def flush(self, length: int = ..., /) -> bytes: ...


@dataclass(slots=True)
class _Decoder:
    """gzip/deflate decoding that never produces more than `limit` bytes, whatever the ratio."""

    encoding: str
    limit: int
    size: int = 0
    parts: list[bytes] = field(default_factory=list[bytes])
    _zlib: _Inflater | None = None
    _started: bool = False

    def __post_init__(self) -> None:
        if self.encoding in ("", "identity"):
            return
        if self.encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise FetchFailed(f"the server sent an unsupported Content-Encoding: {self.encoding!r}")

    def feed(self, data: bytes) -> None:
        if self._zlib is None:
            self._keep(data)
            return
        try:
            out = self._zlib.decompress(data, self.limit - self.size + 1)
        except zlib.error:
            if self.encoding != "deflate" or self._started:
                raise FetchFailed(f"the {self.encoding} response body is corrupt") from None
            # Some servers send raw deflate without the zlib header the standard asks for.
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            self._started = True
            self.feed(data)
            return
        self._started = True
        self._keep(out)

    def finish(self) -> bytes:
        if self._zlib is not None:
            self._keep(self._zlib.flush(self.limit - self.size + 1))
        return b"".join(self.parts)

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise LimitExceeded(
                Rule.DECOMPRESSED_SIZE,
                f"the response decodes to more than {self.limit} bytes (Content-Encoding: "
                f"{self.encoding or 'identity'}); fetch abandoned",
            )
        self.parts.append(data)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _media_type(value: str | None) -> tuple[str, str | None]:
    if not value:
        return "", None
    media, _, params = value.partition(";")
    charset: str | None = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip('"').strip("'")
    return media.strip().lower(), charset


class _Session:
    """The connections and robots.txt verdicts of one fetch call."""

    def __init__(self, settings: FetchSettings, tls: Callable[[], ssl.SSLContext]) -> None:
        self.settings = settings
        self._tls = tls
        self._checked: set[str] = set()
        self._pools: dict[tuple[str, str, int], httpcore2.AsyncConnectionPool] = {}
        self.robots: dict[str, RobotFileParser] = {}

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for pool in self._pools.values():
                await pool.aclose()

    async def target(self, url: httpx2.URL) -> Target:
        """Resolve and judge `url`'s host; the checked address to dial, or `AddressRefused`."""
        host = ascii_host(url)
        port = url.port or _DEFAULT_PORTS[url.scheme]
        literal = parse_ip_literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            name = normalise_host(host)
            if name in METADATA_HOSTS:
                raise AddressRefused(Rule.CLOUD_METADATA, f"{host} is a cloud instance-metadata host name")
            local = name == "localhost" or name.endswith(".localhost")
            if local and name not in self.settings.allowlist.hosts:
                raise AddressRefused(Rule.LOOPBACK, f"{host} always names the local machine (RFC 6761)")
            try:
                addresses = await self.settings.resolver(host, port)
            except OSError as exc:
                raise FetchFailed(f"could not resolve {host}: {exc}") from None
            if not addresses:
                raise FetchFailed(f"could not resolve {host}: no addresses")
        for address in addresses:
            verdict = classify(address)
            if verdict is not None and not self.settings.allowlist.permits(address, host):
                rule, why = verdict
                via = "" if literal is not None else f"{host} resolves to {address}: "
                raise AddressRefused(rule, f"{via}{why}; only public internet addresses are fetched")
        dial = connect_address(addresses[0])
        self._checked.add(str(dial))
        return Target(url=url, host=host, port=port, address=dial)

    @contextlib.asynccontextmanager
    async def stream(self, target: Target) -> AsyncGenerator[httpcore2.Response]:
        key = (target.url.scheme, target.host, target.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = httpcore2.AsyncConnectionPool(
                ssl_context=self._tls() if target.url.scheme == "https" else None,
                max_connections=2,
                retries=0,
                network_backend=_PinnedBackend(self._checked),
            )
            self._pools[key] = pool
        url = httpcore2.URL(
            scheme=target.url.scheme.encode(),
            host=str(target.address).encode(),
            port=target.port,
            target=target.url.raw_path,
        )
        headers = [
            (b"Host", target.authority.encode("ascii")),
            (b"User-Agent", self.settings.user_agent.encode()),
            (b"Accept", b"text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.8"),
            (b"Accept-Encoding", b"gzip, deflate"),
        ]
        total = self.settings.total_timeout
        connect = self.settings.connect_timeout
        extensions = {
            "timeout": {"connect": connect, "read": total, "write": total, "pool": total},
            "sni_hostname": target.host,
        }
        try:
            async with pool.stream("GET", url, headers=headers, extensions=extensions) as response:
                yield response
        except httpcore2.ConnectTimeout:
            raise LimitExceeded(
                Rule.CONNECT_TIME,
                f"connecting to {target.host} ({target.address}) took longer than "
                f"{self.settings.connect_timeout:g}s",
            ) from None
        except httpcore2.TimeoutException:
            raise LimitExceeded(
                Rule.TOTAL_TIME, f"{target.origin} took longer than {total:g}s to answer"
            ) from None
        except (httpcore2.NetworkError, httpcore2.ProtocolError, ssl.SSLError, OSError) as exc:
            raise FetchFailed(f"fetching {target.url} failed: {type(exc).__name__}: {exc}") from None


async def _read_body(response: httpcore2.Response, target: Target, max_bytes: int, max_decoded: int) -> bytes:
    declared = _header(response.headers, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise LimitExceeded(
            Rule.RESPONSE_SIZE,
            f"{target.url} announces {declared} bytes, more than the {max_bytes}-byte cap; not downloaded",
        )
    encoding = (_header(response.headers, b"content-encoding") or "").lower()
    decoder = _Decoder(encoding, max_decoded)
    received = 0
    async for chunk in response.aiter_stream():
        received += len(chunk)
        if received > max_bytes:
            raise LimitExceeded(
                Rule.RESPONSE_SIZE, f"{target.url} sent more than {max_bytes} bytes; download abandoned"
            )
        decoder.feed(chunk)
    return decoder.finish()


def _parse_robots(page: Page) -> RobotFileParser:
    parser = RobotFileParser(page.url)
    parser.parse([] if page.status >= 400 else page.text().splitlines())
    return parser


class Fetcher:
    """Fetches one URL per call under `FetchSettings`; holds no state between calls."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self._ssl = settings.ssl_context

    def _tls(self) -> ssl.SSLContext:
        """The TLS context, made on first use (loading the system trust store takes milliseconds)."""
        if self._ssl is None:
            self._ssl = httpcore2.default_ssl_context()
        return self._ssl

    @tracing.traced_fetch
    async def fetch(self, raw_url: str, *, deadline: float | None = None) -> Page:
        """The page at `raw_url`, by `deadline` (the loop's clock; default `total_timeout` from now).

        The caller passes the deadline when more work on the page (decoding, conversion)
        belongs to the same time budget."""
        url = parse_url(raw_url)
        if deadline is None:
            deadline = anyio.current_time() + self.settings.total_timeout
        session = _Session(self.settings, self._tls)
        page: Page | None = None
        try:
            with anyio.CancelScope(deadline=deadline):
                page = await self._get(
                    session,
                    url,
                    check_robots=self.settings.robots_txt,
                    max_bytes=self.settings.max_response_bytes,
                    max_decoded=self.settings.max_decompressed_bytes,
                )
        finally:
            await session.aclose()
        if page is None:
            raise self.too_slow(url)
        if page.status >= 400:
            raise FetchFailed(f"{page.url} answered HTTP {page.status}")
        return page

    def too_slow(self, url: httpx2.URL | str) -> LimitExceeded:
        return LimitExceeded(
            Rule.TOTAL_TIME, f"fetching {url} took more than {self.settings.total_timeout:g}s; abandoned"
        )

    async def _get(
        self, session: _Session, url: httpx2.URL, *, check_robots: bool, max_bytes: int, max_decoded: int
    ) -> Page:
        s = self.settings
        current = url
        for hop in range(s.max_redirects + 1):
            target = await session.target(current)
            if check_robots:
                await self._check_robots(session, target)
            async with session.stream(target) as response:
                location = _header(response.headers, b"location")
                if response.status in REDIRECT_STATUSES and location:
                    # Joined by the stdlib: httpx2 would reject hosts like `0177.0.0.1` before
                    # parse_url could name the rule they break.
                    current = parse_url(urljoin(str(target.url), location))
                    tracing.fetch_redirect(response.status, ascii_host(current))
                    _log.debug("redirect", hop=hop + 1, status=response.status, to=str(current))
                    continue
                body = await _read_body(response, target, max_bytes, max_decoded)
                media, charset = _media_type(_header(response.headers, b"content-type"))
                return Page(str(target.url), response.status, media, charset, body)
        raise LimitExceeded(
            Rule.REDIRECTS, f"{url} redirected more than {s.max_redirects} times; last hop was to {current}"
        )

    async def _check_robots(self, session: _Session, target: Target) -> None:
        """RFC 9309 as the reference server reads it: 401/403 or 5xx mean "keep out", other 4xx
        "no rules". Address rules and caps apply to robots.txt like to any other fetch."""
        parser = session.robots.get(target.origin)
        if parser is None:
            robots_url = target.url.copy_with(path="/robots.txt", query=None, fragment=None)
            try:
                limit = self.settings.max_robots_bytes
                page = await self._get(
                    session, robots_url, check_robots=False, max_bytes=limit, max_decoded=limit
                )
            except FetchFailed as exc:
                # Unreachable means "keep out" (RFC 9309), but the reason is the site, not a rule.
                raise FetchFailed(f"{exc} (robots.txt is read before every page)") from None
            if page.status in (401, 403) or page.status >= 500:
                raise RobotsRefused(
                    f"{robots_url} answered HTTP {page.status}, so autonomous fetching is assumed not allowed"
                )
            # Up to max_robots_bytes of decoding and parsing (~150 ms at 512 KiB): bounded,
            # but too long for the loop; a thread under the call's deadline.
            parser = await anyio.to_thread.run_sync(_parse_robots, page, abandon_on_cancel=True)
            session.robots[target.origin] = parser
        if not parser.can_fetch(self.settings.user_agent, str(target.url)):
            raise RobotsRefused(
                f"the site's robots.txt ({target.origin}/robots.txt) disallows {target.url} for user agent "
                f"{self.settings.user_agent!r}. The user can fetch the page themselves and paste it, or "
                "allow it explicitly"
            )
