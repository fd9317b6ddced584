"""Operator settings: flags and `TELLO_MCP_FETCH_*` variables become `FetchSettings`."""

from __future__ import annotations

import ipaddress

import pytest

from servers.fetch import FetchSettings
from servers.fetch.config import FETCH, FETCH_PATH, FetchConfig, fetch_component


def test_defaults_are_the_safe_fetch_settings() -> None:
    resolved = FETCH.parse([], environ={}).settings()
    defaults = FetchSettings()
    assert resolved == defaults
    assert resolved.allow == ()
    assert resolved.robots_txt is True


def test_flags_and_environment() -> None:
    config = FETCH.parse(
        [
            "--fetch-allow",
            "10.0.0.0/8, intranet.example",
            "--no-fetch-robots-txt",
            "--fetch-max-redirects",
            "2",
        ],
        environ={"TELLO_MCP_FETCH_USER_AGENT": "LabBot/1.0", "TELLO_MCP_FETCH_MAX_REDIRECTS": "9"},
    )
    settings = config.settings()
    assert settings.allow == ("10.0.0.0/8", "intranet.example")
    assert settings.allowlist.permits(ipaddress.ip_address("10.2.3.4"), "x")
    assert settings.robots_txt is False
    assert settings.max_redirects == 2
    assert settings.user_agent == "LabBot/1.0"


def test_bad_allowlist_entry_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="allowlist"):
        FETCH.parse(["--fetch-allow", "10.0.0.0/33"], environ={}).settings()


def test_component_mounts_the_fetcher_statelessly() -> None:
    component = fetch_component(FetchConfig())
    assert component.name == "fetch"
    endpoint = component.mounts[FETCH_PATH]
    assert getattr(endpoint, "stateless", None) is True
    assert component.stdio is getattr(endpoint, "server", None)
    assert "public internet only" in component.detail
