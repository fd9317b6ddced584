"""Settings for every server in the suite, from CLI flags or `TELLO_MCP_*` variables.

A flag wins over its environment variable, which wins over the default. Each server declares
its settings as a frozen dataclass plus a `SettingsGroup` naming which fields are settings and
what they mean; the type and the default come from the dataclass itself, and the dataclass
takes its defaults from the component that uses them (`ProtocolConfig`, `HttpSettings`, ...)
through `default_of`. So every default is written once, and the CLI, the environment, `--help`
and the README table cannot disagree.

`ServeSettings` holds what every server shares: where to listen, which Host/Origin values to
accept, the transport, logging, and access control (`auth_*`, `rate_limit_*`: see
`servers.auth`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from servers.admission import AdmissionSettings
from servers.auth.settings import AccessSettings
from servers.http import HttpSettings

ENV_PREFIX = "TELLO_MCP_"

T = TypeVar("T")


def default_of(cls: type[Any], name: str) -> Any:
    """The default of dataclass field `name` of `cls`: how one dataclass takes its default from
    another instead of repeating the value."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise LookupError(f"{cls.__name__}.{name} has no default")
    raise LookupError(f"{cls.__name__} has no field {name!r}")


_EXPECTED: dict[type[Any], str] = {int: "an integer", float: "a number"}


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: a field of its group's dataclass, with the help text shown to operators."""

    name: str
    help: str
    kind: type[Any] = str
    """`str`, `int`, `float`, `bool` or `tuple` (comma-separated strings)."""
    default: Any = None
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def shown_default(self) -> str:
        if self.kind is tuple:
            return ",".join(str(v) for v in self.default)
        if self.kind is bool:
            return "true" if self.default else "false"
        return str(self.default)

    def parse(self, raw: str, *, source: str | None = None) -> Any:
        """The value of `raw` (a flag's or variable's text); ValueError naming `source`, the flag
        or the variable it came from (the variable when not given): `TELLO_MCP_PORT='abc':
        expected an integer`."""
        where = source or self.env
        if self.kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"{where}={raw!r}: expected true or false")
        if self.kind is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        try:
            value = self.kind(raw)
        except ValueError:
            raise ValueError(
                f"{where}={raw!r}: expected {_EXPECTED.get(self.kind, self.kind.__name__)}"
            ) from None
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{where}={raw!r}: expected one of {', '.join(self.choices)}")
        return value


def _kind_and_choices(annotation: Any) -> tuple[type[Any], tuple[str, ...] | None]:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return str, tuple(str(a) for a in typing.get_args(annotation))
    if origin is tuple:
        return tuple, None
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"optional settings are not supported: {annotation!r}")
    if annotation in (str, int, float, bool):
        return annotation, None
    raise TypeError(f"unsupported setting type {annotation!r}")


class SettingsGroup(Generic[T]):
    """Which fields of the dataclass `cls` are settings, with their help; type, choices and
    default are read from `cls`. Fields not listed (derived values) are left to the dataclass."""

    def __init__(self, title: str, cls: type[T], helps: Mapping[str, str]) -> None:
        self.title = title
        self.cls = cls
        hints = typing.get_type_hints(cls)
        settings: list[Setting] = []
        for name, text in helps.items():
            kind, choices = _kind_and_choices(hints[name])
            settings.append(Setting(name, text, kind, default_of(cls, name), choices))
        self.settings = tuple(settings)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(self.title)
        for s in self.settings:
            text = s.help.replace("%", "%%")  # argparse %-formats help strings
            if s.kind is bool:
                group.add_argument(
                    s.flag, action=argparse.BooleanOptionalAction, default=None, help=f"{text} [{s.env}]"
                )
            else:
                group.add_argument(
                    s.flag,
                    default=None,
                    choices=s.choices,
                    help=f"{text} (default {s.shown_default}) [{s.env}]",
                )

    def resolve(self, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> T:
        """Every setting of the group: flag, then `TELLO_MCP_*` variable, then default."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in self.settings:
            flag_value = None if args is None else getattr(args, s.name, None)
            if flag_value is not None:
                values[s.name] = (
                    flag_value if isinstance(flag_value, bool) else s.parse(str(flag_value), source=s.flag)
                )
            elif s.env in env:
                values[s.name] = s.parse(env[s.env], source=s.env)
        return self.cls(**values)

    def parse(self, argv: list[str], environ: Mapping[str, str] | None = None) -> T:
        """This group alone from command-line arguments (tests, tools)."""
        parser = argparse.ArgumentParser()
        self.add_arguments(parser)
        return self.resolve(parser.parse_args(argv), environ)


def settings_table(groups: Sequence[SettingsGroup[Any]]) -> str:
    """Every setting as a Markdown table (the README's, and `tello-mcp settings`)."""
    rows = ["| variable | flag | default | what |", "|---|---|---|---|"]
    for group in groups:
        for s in group.settings:
            default = f"`{s.shown_default}`" if s.shown_default else "(empty)"
            rows.append(f"| `{s.env}` | `{s.flag}` | {default} | {group.title}: {s.help} |")
    return "\n".join(rows) + "\n"


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """What every server of the suite shares (see `SERVE`)."""

    host: str = default_of(HttpSettings, "host")
    port: int = default_of(HttpSettings, "port")
    transport: Literal["http", "stdio"] = "http"
    allowed_hosts: tuple[str, ...] = default_of(HttpSettings, "allowed_hosts")
    allowed_origins: tuple[str, ...] = default_of(HttpSettings, "allowed_origins")
    max_body_bytes: int = default_of(HttpSettings, "max_body_bytes")
    max_sessions: int = default_of(HttpSettings, "max_sessions")
    session_idle_timeout: float = default_of(HttpSettings, "session_idle_timeout")
    shutdown_timeout: float = default_of(HttpSettings, "shutdown_timeout")
    max_in_flight: int = default_of(AdmissionSettings, "total")
    max_in_flight_per_client: int = default_of(AdmissionSettings, "per_client")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    workers: int = 1
    metrics_port: int = 0
    auth_jwks_file: str = default_of(AccessSettings, "jwks_file")
    auth_jwks_url: str = default_of(AccessSettings, "jwks_url")
    auth_issuer: str = default_of(AccessSettings, "issuer")
    auth_audience: tuple[str, ...] = default_of(AccessSettings, "audience")
    auth_resource_url: str = default_of(AccessSettings, "resource_url")
    auth_leeway_s: float = default_of(AccessSettings, "leeway_s")
    auth_max_token_lifetime_s: float = default_of(AccessSettings, "max_token_lifetime_s")
    auth_algorithms: tuple[str, ...] = default_of(AccessSettings, "algorithms")
    auth_jwks_cache_s: float = default_of(AccessSettings, "jwks_cache_s")
    auth_token: str = default_of(AccessSettings, "token")
    auth_token_file: str = default_of(AccessSettings, "token_file")
    auth_static_scopes: tuple[str, ...] = default_of(AccessSettings, "static_scopes")
    auth_admin_scope: str = default_of(AccessSettings, "admin_scope")
    rate_limit_actions: int = default_of(AccessSettings, "rate_limit_actions")
    rate_limit_window_s: float = default_of(AccessSettings, "rate_limit_window_s")

    def __post_init__(self) -> None:
        if not 0 <= self.metrics_port <= 65535 or (self.metrics_port and self.metrics_port == self.port):
            raise ValueError(
                f"metrics_port={self.metrics_port}: expected 0 (off) or a port 1..65535 other than port"
            )

    def access(self) -> AccessSettings:
        """The access-control settings; ValueError naming the setting when they contradict each
        other (a JWKS without an issuer, two token sources, ...)."""
        return AccessSettings(
            jwks_file=self.auth_jwks_file,
            jwks_url=self.auth_jwks_url,
            issuer=self.auth_issuer,
            audience=self.auth_audience,
            resource_url=self.auth_resource_url,
            leeway_s=self.auth_leeway_s,
            max_token_lifetime_s=self.auth_max_token_lifetime_s,
            algorithms=self.auth_algorithms,
            jwks_cache_s=self.auth_jwks_cache_s,
            token=self.auth_token,
            token_file=self.auth_token_file,
            static_scopes=self.auth_static_scopes,
            admin_scope=self.auth_admin_scope,
            rate_limit_actions=self.rate_limit_actions,
            rate_limit_window_s=self.rate_limit_window_s,
        )

    def http(self) -> HttpSettings:
        return HttpSettings(
            host=self.host,
            port=self.port,
            allowed_hosts=self.allowed_hosts,
            allowed_origins=() if self.allowed_hosts == ("*",) else self.allowed_origins,
            max_body_bytes=self.max_body_bytes,
            max_sessions=self.max_sessions,
            session_idle_timeout=self.session_idle_timeout,
            shutdown_timeout=self.shutdown_timeout,
            access=self.access(),
            admission=AdmissionSettings(total=self.max_in_flight, per_client=self.max_in_flight_per_client),
        )


SERVE = SettingsGroup(
    "serving (every server)",
    ServeSettings,
    {
        "host": "address the HTTP server listens on",
        "port": "port the HTTP server listens on",
        "transport": "http (streamable HTTP, both MCP eras) or stdio (one named server)",
        "allowed_hosts": (
            "comma-separated Host values accepted (name, name:port, name:*), or * for any (behind a gateway)"
        ),
        "allowed_origins": "comma-separated Origin values accepted",
        "max_body_bytes": "largest HTTP request body accepted (larger: 413 before it is read)",
        "max_sessions": "handshake-era MCP sessions open at once per endpoint (more: 503)",
        "session_idle_timeout": "seconds an idle handshake-era MCP session lives before it is closed",
        "shutdown_timeout": (
            "seconds calls in flight get to finish after SIGTERM (then they get an error); the process "
            "exits within twice this plus 5 s"
        ),
        "max_in_flight": "MCP requests in flight in the process (more: 503 + Retry-After; 0: no bound)",
        "max_in_flight_per_client": (
            "MCP requests in flight per client (more: 429 + Retry-After; 0: no bound); stop, emergency "
            "and land are never shed"
        ),
        "log_format": "auto (console lines on a terminal, else JSON), json (production) or console",
        "log_level": "debug, info, warning or error",
        "workers": (
            "processes sharing the port (SO_REUSEPORT), for the stateless everything and fetch servers "
            "only; sessions cannot span processes, so with more than 1 the handshake era is served "
            "sessionless (no server-to-client requests or subscriptions over it: use the 2026-07-28 era)"
        ),
        "metrics_port": (
            "port of a second listener serving only /metrics, /healthz and /readyz, with no Host check "
            "(Prometheus scrapes a pod by its IP); 0: off, /metrics is on the main port either way"
        ),
        "auth_jwks_file": (
            "JWKS file of the authorization server's public keys: turns on OAuth resource-server mode "
            "(every route but /healthz and /readyz needs a signed JWT)"
        ),
        "auth_jwks_url": "JWKS URL to fetch the keys from instead (cached, fetched with a timeout)",
        "auth_issuer": "the iss every JWT must carry (an http(s) URL; advertised in the resource metadata)",
        "auth_audience": "comma-separated aud values a JWT must name one of",
        "auth_resource_url": (
            "this server's public base URL for the protected-resource metadata "
            "(empty: from each request's Host)"
        ),
        "auth_leeway_s": "clock skew tolerated on JWT exp/nbf/iat, in seconds (at most 300)",
        "auth_max_token_lifetime_s": (
            "longest a JWT may live (exp - iat) and furthest ahead its exp may be, in seconds "
            "(default: a day)"
        ),
        "auth_algorithms": "comma-separated JWS algorithms accepted (public-key ones only)",
        "auth_jwks_cache_s": "seconds a fetched JWKS is used before it is fetched again",
        "auth_token": (
            "a static bearer token instead of JWTs (prefer the variable or auth_token_file to the flag)"
        ),
        "auth_token_file": "file holding the static bearer token",
        "auth_static_scopes": "comma-separated scopes the static token grants",
        "auth_admin_scope": "scope the /admin/... routes need",
        "rate_limit_actions": (
            "flight actions (takeoff, move, rotate, flip, go_to) one client may start per window; 0: no limit"
        ),
        "rate_limit_window_s": "the rate limit's window, in seconds",
    },
)
