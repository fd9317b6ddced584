"""Each injected fault, over real UDP, judged by what the simulator's ground truth says happened."""

from __future__ import annotations

import anyio
import pytest

from drone_sim.faults import Faults, parse_delay
from drone_sim.flight import FlightState
from drone_sim.records import EventKind

from .support import flying_rig, parse_state

pytestmark = pytest.mark.anyio


async def test_loss_drops_commands_before_the_drone_sees_them() -> None:
    async with flying_rig() as (sim, client):
        sim.faults.loss = 1.0
        await client.send("takeoff", sim.address)
        truth = await sim.wait_for(lambda t: len(t.received) == 2)
        assert truth.received[-1].dropped
        assert truth.received[-1].seq is None
        assert not truth.flying
        assert truth.executed_texts() == ["command"]
        sim.faults.loss = 0.0
        assert await client.request("battery?", sim.address) == "100"


async def test_loss_drops_commands_and_replies_reproducibly() -> None:
    async def session(seed: int) -> tuple[list[bool], list[str]]:
        async with flying_rig(faults=Faults(seed=seed)) as (sim, client):
            sim.faults.loss = 0.5
            for i in range(40):
                await client.send(f"speed {10 + i}", sim.address)
            truth = await sim.wait_for(lambda t: len(t.received) == 41)
            processed = [r for r in truth.received[1:] if not r.dropped]
            # Every command the drone processed was answered or its reply was lost, never both.
            await sim.wait_for(lambda t: len(t.replies) + len(t.dropped_replies) == 1 + len(processed))
            sent = {r.seq for r in truth.replies}
            lost = {r.seq for r in truth.dropped_replies}
            assert sent.isdisjoint(lost)
            assert sent | lost == {1} | {r.seq for r in processed}
            assert {r.reason for r in truth.dropped_replies} == {"lost"}
            received = [(await client.reply())[0] for _ in range(len(truth.replies) - 1)]
            assert received == [r.text for r in truth.replies[1:]]
            return [r.dropped for r in truth.received], [r.text for r in truth.executed]

    first = await session(7)
    assert 5 < sum(first[0]) < 35  # some of each
    assert await session(7) == first


async def test_dup_sends_every_reply_twice() -> None:
    async with flying_rig(faults=Faults(dup=1.0)) as (sim, client):
        assert (await client.reply())[0] == "ok"  # the second copy of the rig's `command` reply
        assert await client.request("battery?", sim.address) == "100"
        assert (await client.reply())[0] == "100"
        assert [(r.text, r.duplicate) for r in sim.truth.replies] == [
            ("ok", False),
            ("ok", True),
            ("100", False),
            ("100", True),
        ]
        assert sim.truth.record(2).reply == "100"


async def test_delay_holds_replies_for_simulated_seconds_with_jitter() -> None:
    async with flying_rig(speedup=10.0) as (sim, client):
        sim.faults.delay_s, sim.faults.jitter_s = 2.0, 0.5
        for _ in range(3):
            sent_at = sim.clock.now()
            assert await client.request("battery?", sim.address) == "100"
            assert sim.clock.now() - sent_at >= 1.5
        for reply in sim.truth.replies[1:]:
            received = sim.truth.record(reply.seq).t
            assert 1.5 <= reply.t - received <= 2.5 + 1.0  # + scheduling slack (0.1 s real)


async def test_emergency_may_go_unanswered_but_always_stops_the_motors() -> None:
    async with flying_rig(speedup=40.0, faults=Faults(emergency_silence=1.0)) as (sim, client):
        assert await client.request("takeoff", sim.address) == "ok"
        await client.send("emergency", sim.address)
        truth = await sim.wait_for(lambda t: t.flight_state is FlightState.FALLEN)
        assert truth.pose.z == 0.0
        assert not truth.flying
        assert [r.text for r in truth.dropped_replies] == ["ok"]
        assert truth.dropped_replies[0].reason == "emergency not answered"
        assert truth.events_of(EventKind.EMERGENCY)
        sim.faults.emergency_silence = 0.0
        assert await client.request("takeoff", sim.address) == "ok"
        assert await client.request("emergency", sim.address) == "ok"


async def test_reboot_after_reboots_once_then_the_drone_needs_command_again() -> None:
    async with flying_rig(speedup=20.0, faults=Faults(reboot_after_s=3.0)) as (sim, client):
        truth = await sim.wait_for(lambda t: bool(t.events_of(EventKind.REBOOT)))
        assert 3.0 <= truth.events_of(EventKind.REBOOT)[0].t - sim.started_at <= 4.0
        await client.send("battery?", sim.address)
        truth = await sim.wait_for(lambda t: t.received[-1].ignored is not None)
        assert truth.received[-1].ignored == "booting"
        await sim.wait_for(lambda t: t.flight_state is FlightState.LANDED)
        assert not sim.truth.sdk_mode
        assert await client.request("command", sim.address) == "ok"
        assert len(sim.truth.events_of(EventKind.REBOOT)) == 1


async def test_reboot_command_in_flight_drops_the_drone() -> None:
    async with flying_rig(speedup=40.0) as (sim, client):
        assert await client.request("takeoff", sim.address) == "ok"
        await client.send("reboot", sim.address)
        truth = await sim.wait_for(lambda t: t.flight_state is FlightState.BOOTING)
        assert truth.events_of(EventKind.CRASH)
        assert truth.pose.z == 0.0
        assert truth.record(3).reply is None
        assert truth.replies[-1].text == "ok"


async def test_power_off_and_on() -> None:
    async with flying_rig(speedup=40.0) as (sim, client):
        assert await client.request("takeoff", sim.address) == "ok"
        sim.power_off()
        assert sim.truth.flight_state is FlightState.OFF
        assert not sim.truth.powered
        assert sim.truth.events_of(EventKind.CRASH)
        await client.send("command", sim.address)
        truth = await sim.wait_for(lambda t: t.received[-1].ignored == "powered off")
        assert truth.replies[-1].text == "ok"
        sim.power_on()
        assert sim.truth.flight_state is FlightState.LANDED
        assert not sim.truth.sdk_mode
        assert await client.request("command", sim.address) == "ok"
        assert await client.request("time?", sim.address) == "0s"


async def test_runtime_reboot() -> None:
    async with flying_rig(speedup=40.0) as (sim, client):
        sim.reboot()
        assert sim.truth.flight_state is FlightState.BOOTING
        await sim.wait_for(lambda t: t.flight_state is FlightState.LANDED)
        assert await client.request("command", sim.address) == "ok"


async def test_rebind_moves_the_drone_to_another_address() -> None:
    async with flying_rig(host="127.0.0.11") as (sim, client):
        old = sim.address
        new = await sim.rebind("127.0.0.12")
        assert new == ("127.0.0.12", old[1]) == sim.address
        await client.send("battery?", old)  # nobody there any more
        assert await client.request("sdk?", new) == "30"
        assert [r.data for r in sim.truth.received] == [b"command", b"sdk?"]
        assert sim.truth.events_of(EventKind.REBIND)[0].detail == f"127.0.0.11:{old[1]} -> 127.0.0.12"
        # State keeps flowing, now from the new address.
        while (await client.state_packet())[1] != new:
            pass


async def test_state_dropout_stops_the_state_stream_until_cleared() -> None:
    async with flying_rig(speedup=50.0) as (sim, client):
        await client.state_packet()
        sim.faults.state_dropout = True
        count = sim.truth.state_packets_sent
        t0 = sim.clock.now()
        await sim.wait_for(lambda t: sim.clock.now() > t0 + 1.0)
        assert sim.truth.state_packets_sent == count
        assert sim.truth.sdk_mode
        sim.faults.state_dropout = False
        await sim.wait_for(lambda t: t.state_packets_sent > count)
        fields = parse_state(sim.truth.last_state_packet or "")
        assert fields["bat"] == "100"


async def test_set_battery_at_runtime() -> None:
    async with flying_rig(speedup=40.0) as (sim, client):
        sim.set_battery(30)
        assert await client.request("battery?", sim.address) == "30"
        assert await client.request("takeoff", sim.address) == "ok"
        assert await client.request("flip f", sim.address) == "error"
        fields = await client.state_where(lambda f: f["h"] == "80")
        assert fields["bat"] == "30" or fields["bat"] == "29"
        sim.set_battery(3)
        truth = await sim.wait_for(lambda t: t.flight_state is FlightState.LANDED)
        assert truth.events_of(EventKind.LOW_BATTERY_LAND)


async def test_flying_drone_auto_lands_when_the_client_goes_quiet() -> None:
    async with flying_rig(speedup=50.0) as (sim, client):
        assert await client.request("takeoff", sim.address) == "ok"
        truth = await sim.wait_for(lambda t: t.flight_state is FlightState.LANDED, timeout_s=30)
        (event,) = truth.events_of(EventKind.AUTO_LAND)
        takeoff_done = truth.record(2).finished_t
        assert takeoff_done is not None
        assert event.t - takeoff_done == pytest.approx(15.0)
        assert not truth.sdk_mode
        assert truth.events_of(EventKind.SDK_EXITED)
        count = truth.state_packets_sent
        await client.send("battery?", sim.address)
        await sim.wait_for(lambda t: t.received[-1].ignored == "not in SDK mode")
        assert sim.truth.state_packets_sent == count


def test_faults_validate_their_values() -> None:
    with pytest.raises(ValueError, match="probability"):
        Faults(loss=1.5)
    faults = Faults()
    with pytest.raises(ValueError, match="probability"):
        faults.dup = -0.1
    with pytest.raises(ValueError, match="seconds"):
        faults.delay_s = -1
    with pytest.raises(ValueError, match="seconds"):
        faults.reboot_after_s = -1
    assert parse_delay("0.5") == (0.5, 0.0)
    assert parse_delay("2:0.25") == (2.0, 0.25)
    with pytest.raises(ValueError, match="expected S or S:J"):
        parse_delay("fast")
    with pytest.raises(ValueError, match=">= 0"):
        parse_delay("1:-1")


def test_faults_are_seeded() -> None:
    a, b = Faults(loss=0.5, dup=0.5, jitter_s=1.0, seed=3), Faults(loss=0.5, dup=0.5, jitter_s=1.0, seed=3)
    draws = [(a.drop_command(), a.duplicate_reply(), a.reply_delay()) for _ in range(50)]
    assert draws == [(b.drop_command(), b.duplicate_reply(), b.reply_delay()) for _ in range(50)]
    a.reseed(3)
    assert (a.drop_command(), a.duplicate_reply(), a.reply_delay()) == draws[0]
    assert not Faults().drop_reply()


async def test_state_packets_are_not_subject_to_loss() -> None:
    async with flying_rig(speedup=50.0) as (sim, client):
        sim.faults.loss = 1.0
        for _ in range(3):
            with anyio.fail_after(5):
                await client.state_packet()
        assert sim.truth.sdk_mode
