"""The loopback-only admin endpoint that re-points the link at a drone on a new IP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from servers.drone.app import ADMIN_ADDRESS_PATH, build_drone_app, drone_address_refusal
from servers.drone.config import DroneSettings
from servers.drone.core.protocol import LinkStatus
from servers.drone.runtime import DroneRuntime
from servers.http import HttpSettings, serve


@pytest.fixture
async def served() -> AsyncIterator[tuple[DroneRuntime, str]]:
    # Over real HTTP and UDP on a 10x wall clock: a wide staleness margin (1 s of real time), so
    # a loaded machine cannot make the link look stale; freshness is tested on virtual time.
    runtime = DroneRuntime(DroneSettings(sim=True, time_scale=10, stale_after_s=10.0))
    http = HttpSettings(port=0)
    app = build_drone_app(runtime, http)
    async with anyio.create_task_group() as tg:
        port: int = await tg.start(serve, app, http)
        with anyio.fail_after(10):
            while not runtime.connected():
                await runtime.link.wait_changed()
        yield runtime, f"http://127.0.0.1:{port}{ADMIN_ADDRESS_PATH}"
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_new_ip_is_picked_up_without_restart(served: tuple[DroneRuntime, str]) -> None:
    runtime, url = served
    sim = runtime.sim
    assert sim is not None
    async with httpx.AsyncClient() as client:
        shown = (await client.get(url)).json()
        assert shown == {"drone": runtime.link.drone_address, "link": "connected"}

        _, port = await sim.rebind("127.0.0.3")
        with anyio.fail_after(10):
            while runtime.link.status() is not LinkStatus.DISCONNECTED:
                await runtime.link.wait_changed()

        answer = await client.post(url, json={"host": "127.0.0.3", "port": port})
        assert answer.status_code == 200
        assert answer.json()["drone"] == f"127.0.0.3:{port}"
        with anyio.fail_after(10):
            while runtime.link.status() is not LinkStatus.CONNECTED:
                await runtime.link.wait_changed()
        assert (await runtime.link.battery()).source == "live"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {"host": "not-an-ip"},
        {"port": 8889},
        {"host": "127.0.0.1", "port": True},
        {"host": "127.0.0.1", "port": 0},
        [],
    ],
)
async def test_bad_address_is_rejected_and_nothing_changes(
    served: tuple[DroneRuntime, str], body: object
) -> None:
    runtime, url = served
    before = runtime.link.drone_address
    async with httpx.AsyncClient() as client:
        answer = await client.post(url, json=body)
    assert answer.status_code == 400
    assert "expected JSON" in answer.json()["error"]
    assert runtime.link.drone_address == before


REFUSED = [
    ("255.255.255.255", "broadcast"),
    ("192.168.10.255", "broadcast"),
    ("224.0.0.1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("8.8.8.8", "not an address a Tello can have"),
    ("2001:4860::8888", "not an address a Tello can have"),
]


@pytest.mark.anyio
async def test_address_no_tello_can_have_is_refused_naming_the_rule(served: tuple[DroneRuntime, str]) -> None:
    runtime, url = served
    before = runtime.link.drone_address
    async with httpx.AsyncClient() as client:
        for host, rule in REFUSED:
            answer = await client.post(url, json={"host": host, "port": 8889})
            assert answer.status_code == 400, host
            assert rule in answer.json()["error"]
            assert host in answer.json()["error"]
            assert runtime.link.drone_address == before


@pytest.mark.parametrize(
    "host", ["127.0.0.3", "192.168.10.1", "10.1.2.3", "172.20.0.5", "169.254.1.1", "fe80::1"]
)
def test_addresses_a_tello_can_have_are_accepted(host: str) -> None:
    assert drone_address_refusal(host) is None
