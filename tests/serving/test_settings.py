"""Every setting of every server: one default, and the CLI, the environment and the dataclasses
that use it agree on it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from servers.cli import plan
from servers.config import SERVE, ServeSettings, Setting, SettingsGroup
from servers.drone.camera import VIDEO_PORT
from servers.drone.config import DRONE, DroneSettings
from servers.drone.core.protocol import ProtocolConfig
from servers.drone.core.safety import SafetyEnvelope
from servers.drone.link import LinkConfig
from servers.drone.photo import PhotoService
from servers.http import HttpSettings
from servers.registry import SERVERS

GROUPS: list[SettingsGroup[Any]] = [SERVE, *(entry.settings for entry in SERVERS.values())]
EVERY: list[tuple[SettingsGroup[Any], Setting]] = [(g, s) for g in GROUPS for s in g.settings]


def _id(case: tuple[SettingsGroup[Any], Setting]) -> str:
    return case[1].name


def _other_value(setting: Setting) -> tuple[str, Any]:
    """A valid non-default value for `setting`, as text and as parsed."""
    if setting.kind is bool:
        return ("false", False) if setting.default else ("true", True)
    if setting.choices is not None:
        other = next(c for c in setting.choices if c != setting.default)
        return other, other
    if setting.kind is tuple:
        return "a.example,b.example:*", ("a.example", "b.example:*")
    if setting.name == "time_scale":
        return "1.0", 1.0  # only valid with --sim; the default already is 1.0
    if setting.kind is int:
        value = {"max_height_cm": 250, "max_distance_cm": 400}.get(setting.name, int(setting.default) + 1)
        if setting.name in ("min_takeoff_battery", "critical_battery"):
            value = int(setting.default) + 1
        return str(value), value
    if setting.kind is float:
        return str(float(setting.default) + 0.5), float(setting.default) + 0.5
    return "192.0.2.9", "192.0.2.9"


def _field(group: SettingsGroup[Any], instance: object, name: str) -> Any:
    assert isinstance(instance, group.cls)
    return getattr(instance, name)


def _resolved(group: SettingsGroup[Any], argv: list[str], environ: dict[str, str]) -> object:
    if group is SERVE:  # one named server, so that --transport stdio is valid too
        return plan(["drone", *argv], environ=environ).common
    name = next(n for n, entry in SERVERS.items() if entry.settings is group)
    if name == "proxy" and "--upstream" not in argv and "TELLO_MCP_UPSTREAM" not in environ:
        argv = [*argv, "--", "upstream-command"]  # a proxy needs exactly one upstream
    return plan([name, *argv], environ=environ).servers[name]


@pytest.mark.parametrize("case", EVERY, ids=_id)
def test_default_flag_and_environment_agree(case: tuple[SettingsGroup[Any], Setting]) -> None:
    group, setting = case
    assert _field(group, _resolved(group, [], {}), setting.name) == setting.default
    assert _field(group, group.cls(), setting.name) == setting.default
    text, value = _other_value(setting)
    flag = [setting.flag] if setting.kind is bool and value else [f"--no-{setting.flag[2:]}"]
    argv = flag if setting.kind is bool else [setting.flag, text]
    assert _field(group, _resolved(group, argv, {}), setting.name) == value
    assert _field(group, _resolved(group, [], {setting.env: text}), setting.name) == value
    # The flag wins over the variable.
    wins_text, wins = setting.shown_default, setting.default
    if setting.kind is str and not wins_text:  # an empty default: a second non-default value
        wins_text = wins = text + "-2"
    if setting.kind is bool:
        winner = [setting.flag] if setting.default else [f"--no-{setting.flag[2:]}"]
    else:
        winner = [setting.flag, wins_text]
    assert _field(group, _resolved(group, winner, {setting.env: text}), setting.name) == wins


def test_drone_defaults_are_the_components_defaults() -> None:
    drone, link, protocol, envelope = DroneSettings(), LinkConfig(), ProtocolConfig(), SafetyEnvelope()
    assert (drone.drone_host, drone.drone_port) == (link.drone_host, link.drone_port)
    assert (drone.bind_host, drone.state_port) == (link.bind_host, link.state_port)
    assert (drone.keepalive_s, drone.stale_after_s) == (protocol.keepalive_s, protocol.stale_after_s)
    assert drone.link().protocol == protocol
    assert drone.envelope == envelope
    assert drone.video_port == VIDEO_PORT
    [idle] = [p for p in dataclasses.fields(drone) if p.name == "photo_idle_off_s"]
    assert (PhotoService.__init__.__kwdefaults__ or {})["idle_off_s"] == idle.default


def test_serve_defaults_are_the_http_defaults() -> None:
    serve, http = ServeSettings(), HttpSettings()
    assert serve.http() == http
    assert (serve.host, serve.port) == (http.host, http.port)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--port", "seventy"], "port"),
        (["--keepalive-s", "20"], "keepalive_s"),
        (["--log-format", "xml"], "--log-format"),
    ],
)
def test_bad_values_exit_naming_the_setting(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        plan(argv, environ={})
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert named in err


def test_every_setting_belongs_to_exactly_one_group() -> None:
    names = [s.name for _, s in EVERY]
    assert len(names) == len(set(names))
    assert {s.name for s in DRONE.settings} <= {f.name for f in dataclasses.fields(DroneSettings)}
