"""The link finds its drone again by itself: after a power cycle, and on a new address."""

from __future__ import annotations

import anyio
import pytest

from drone_sim import EventKind
from servers.drone.core import commands
from servers.drone.core.errors import CommandTimeout, NotConnected
from servers.drone.core.protocol import LinkStatus, ProtocolConfig
from tests.link.rig import STATE_INTERVAL_S, Rig, make_rig, verify_calls

pytestmark = pytest.mark.virtual_time

_CONFIG = ProtocolConfig()
FOUND_WITHIN_S = _CONFIG.reconnect_s + _CONFIG.retry_backoff_s + STATE_INTERVAL_S + 0.3
"""README: probes go out "every second while disconnected"; a retry's backoff, the first state
packet and a little scheduling slack on top."""


@pytest.mark.anyio
async def test_power_cycle_reconnects_without_a_restart(rig: Rig) -> None:
    assert (await rig.call(commands.set_speed(50))).ok
    assert rig.link.speed_cm_s == 50
    rig.sim.power_off()
    await rig.status(LinkStatus.DISCONNECTED, timeout_s=30.0)
    refused = await rig.call(commands.query("battery?"))
    assert isinstance(refused.error, NotConnected)
    entered = len(rig.sim.truth.events_of(EventKind.SDK_ENTERED))
    rig.sim.power_on()
    on = rig.clock.now()
    back = await rig.connected(timeout_s=15.0)
    assert back - on <= FOUND_WITHIN_S
    # Nothing but the link's own `command` brought it back into SDK mode.
    assert len(rig.sim.truth.events_of(EventKind.SDK_ENTERED)) == entered + 1
    read = await rig.call(commands.query("battery?"))
    assert read.ok
    assert rig.link.speed_cm_s is None  # whatever was set before, the drone forgot it
    assert (await rig.call(commands.simple("takeoff"))).ok
    assert (await rig.call(commands.simple("land"))).ok
    verify_calls(rig.sim, rig.calls)


@pytest.mark.anyio
async def test_new_address_reconnects(rig: Rig) -> None:
    _, port = rig.sim.address
    assert (await rig.call(commands.set_speed(50))).ok
    assert rig.link.speed_cm_s == 50
    await rig.sim.rebind("127.0.0.3")
    # Until told, the link keeps talking to the old address and ignores the new one's stream.
    await rig.status(LinkStatus.STALE, timeout_s=3.0)
    rig.link.set_drone_address("127.0.0.3")
    assert rig.link.drone_address == f"127.0.0.3:{port}"
    assert rig.link.speed_cm_s is None
    moved = rig.clock.now()
    back = await rig.connected(timeout_s=5.0)
    assert back - moved <= 1.0
    read = await rig.call(commands.query("sn?"))
    assert read.ok
    assert (await rig.call(commands.simple("takeoff"))).ok
    assert (await rig.call(commands.simple("land"))).ok
    assert {r.sender[0] for r in rig.sim.truth.received if r.t >= moved} == {"127.0.0.1"}
    assert rig.sim.address == ("127.0.0.3", port)
    verify_calls(rig.sim, rig.calls)


@pytest.mark.anyio
async def test_a_drone_powered_on_right_after_a_failed_probe_is_found_within_a_probe_period(
    anyio_backend: str,
) -> None:
    """The worst moment to come back: just after a probe gave up (a quarantine would delay the
    next one; the link paces probes at reconnect_s instead)."""
    config = ProtocolConfig(keepalive_s=1.0, quarantine_s=6.0)
    async with make_rig(protocol=config) as rig:
        rig.sim.power_off()
        await rig.status(LinkStatus.DISCONNECTED, timeout_s=40.0)
        timeouts = rig.link.counters["timeouts"]
        with anyio.fail_after(rig.clock.to_real(15.0)):
            while rig.link.counters["timeouts"] == timeouts:  # woken by the link itself
                await rig.link.wait_changed()
        rig.sim.power_on()
        on = rig.clock.now()
        back = await rig.connected(timeout_s=15.0)
        assert back - on <= FOUND_WITHIN_S


@pytest.mark.anyio
async def test_a_caller_queued_behind_a_keepalive_is_not_stranded_while_the_drone_is_off(rig: Rig) -> None:
    """Nothing arrives from a drone that is off, so only the clock can free the wire: the
    queued caller must still get its documented answer, not wait for ever."""
    rig.sim.power_off()
    seen = len(rig.sim.truth.received)
    await rig.until(lambda: any(r.data == b"command" for r in rig.sim.truth.received[seen:]), 10.0)
    read = await rig.call(commands.query("battery?"), bound_s=30.0)
    assert isinstance(read.error, CommandTimeout | NotConnected), read


@pytest.mark.anyio
async def test_a_reboot_seen_only_as_a_stale_spell_forgets_the_speed(rig: Rig) -> None:
    """The drone reboots within a probe or two: the link may never call it disconnected, but the
    speed it remembered is gone (move timeouts then assume the slowest speed, never too short)."""
    assert (await rig.call(commands.set_speed(50))).ok
    assert rig.link.speed_cm_s == 50
    rig.sim.reboot()
    await rig.status(LinkStatus.STALE, timeout_s=5.0)
    await rig.connected(timeout_s=30.0)
    assert rig.link.speed_cm_s is None
    assert rig.sim.truth.speed_cm_s != 50  # the drone's own setting went with the reboot
