"""`GET /flights` and `GET /flights/{name}` over real HTTP: a flight flown over MCP is listed
(open while it is recorded), downloads as MCAP byte for byte, and reads back where the
simulator's ground truth put the drone; only recorder names are served (no traversal, no
symlink); access follows the deck's rule for reading (drone:read; loopback with auth off)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client

from servers.auth.settings import AccessSettings
from servers.drone import recorder
from servers.drone.flights_routes import MCAP_MEDIA_TYPE
from servers.drone.recorder import MAGIC, Recorded, Recording, list_recordings, read_recording
from tests.drone_server.harness import Served, http_drone_settings, http_settings, serving, text_of

pytestmark = pytest.mark.anyio

TOKEN = "flights-test-token-0123456789"
NAME = "flight-20260101T000000Z.mcap"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn needs real time


async def _recording_closed(served: Served) -> None:
    recorder = served.runtime.recorder
    assert recorder is not None
    with anyio.fail_after(30):
        while recorder.recording is not None:
            await served.runtime.link.wait_changed()


async def test_a_flight_is_listed_and_downloads_as_mcap(tmp_path: Path) -> None:
    settings = http_drone_settings(flight_recording_dir=str(tmp_path))
    async with (
        serving(settings) as served,
        Client(served.url) as agent,
        httpx.AsyncClient(base_url=served.base, timeout=30) as http,
    ):
        before = await http.get("/flights")
        assert before.status_code == 200
        assert before.json() == {"recording_on": True, "flights": []}

        for name, args in (("takeoff", {}), ("move", {"direction": "forward", "distance_cm": 80})):
            result = await agent.call_tool(name, args)
            assert not result.is_error, text_of(result)
        [flying] = (await http.get("/flights")).json()["flights"]
        assert flying["open"] is True
        partial = await http.get(flying["url"])  # the flight so far: whole chunks only
        assert partial.status_code == 200
        assert partial.content.startswith(MAGIC)
        assert int(partial.headers["content-length"]) == len(partial.content)

        pose = served.truth.pose  # where the drone is before it lands
        landed = await agent.call_tool("land", {})
        assert not landed.is_error, text_of(landed)
        await _recording_closed(served)

        [done] = (await http.get("/flights")).json()["flights"]
        assert (done["name"], done["open"]) == (flying["name"], False)
        assert done["url"] == f"/flights/{done['name']}"
        assert done["duration_s"] > 5  # takeoff (~5 s) and a move, on the simulator's clock
        answer = await http.get(done["url"])
        assert answer.status_code == 200
        assert answer.headers["content-type"] == MCAP_MEDIA_TYPE
        assert answer.headers["content-disposition"] == f'attachment; filename="{done["name"]}"'
        on_disk = tmp_path / done["name"]
        assert answer.content == on_disk.read_bytes()
        assert done["size"] == len(answer.content)

    copy = tmp_path / "downloaded.mcap"
    copy.write_bytes(answer.content)
    messages = read_recording(copy)
    last = [m.data["pose"]["position"] for m in messages if m.topic == "/drone/pose"][-1]
    assert abs(last["x"] * 100 - pose.x) <= 15, (last, pose)  # the sim's drift, in cm
    assert abs(last["y"] * 100 - pose.y) <= 15, (last, pose)
    commands = [m.data["command"] for m in messages if m.topic == "/drone/flight_log"]
    assert [c for c in commands if c in ("takeoff", "forward 80", "land")] == [
        "takeoff",
        "forward 80",
        "land",
    ]


async def test_only_recorder_names_in_the_directory_are_served(tmp_path: Path) -> None:
    recordings = tmp_path / "flights"
    recordings.mkdir()
    (tmp_path / "secret.mcap").write_bytes(b"not for you")
    (recordings / "flight-20260101T000000Z-1.mcap").symlink_to(tmp_path / "secret.mcap")
    (recordings / "notes.txt").write_text("not a recording")
    settings = http_drone_settings(flight_recording_dir=str(recordings))
    async with serving(settings) as served, httpx.AsyncClient(base_url=served.base, timeout=10) as http:
        for name in ("notes.txt", "..", "...", "flight-20260101T000000Z.MCAP", "%2e%2e", "x%00.mcap"):
            answer = await _raw_get(http, f"/flights/{name}")
            assert answer.status_code == 400, (name, answer.text)
            assert "flight-YYYYMMDDTHHMMSSZ.mcap" in answer.json()["error"]
        for path in ("/flights/..%2Fsecret.mcap", "/flights/../secret.mcap", "/flights/%2e%2e/secret.mcap"):
            raw = await _raw_get(http, path)
            assert raw.status_code in (400, 404), (path, raw.text)
            assert b"not for you" not in raw.content
        missing = await http.get(f"/flights/{NAME}")
        assert missing.status_code == 404
        assert NAME in missing.json()["error"]
        link = await http.get("/flights/flight-20260101T000000Z-1.mcap")  # a symlink is not followed
        assert link.status_code == 404
        assert b"not for you" not in link.content
        assert (await http.get("/flights")).json()["flights"] == [
            {
                "name": "flight-20260101T000000Z-1.mcap",
                "start": "2026-01-01T00:00:00Z",
                "duration_s": 0.0,
                "size": len(b"not for you"),
                "url": "/flights/flight-20260101T000000Z-1.mcap",
                "open": False,
            }
        ]


async def test_a_page_elsewhere_or_a_rebound_host_gets_no_recording(tmp_path: Path) -> None:
    """A web page in the operator's browser cannot read recordings: a cross-origin fetch carries
    its Origin (403) and DNS rebinding its Host (421)."""
    _write_recording(tmp_path / NAME)
    settings = http_drone_settings(flight_recording_dir=str(tmp_path))
    async with serving(settings) as served, httpx.AsyncClient(base_url=served.base, timeout=10) as http:
        for path in ("/flights", f"/flights/{NAME}"):
            for headers, status in (
                ({"Origin": "http://evil.example"}, 403),
                ({"Host": "evil.example"}, 421),
            ):
                answer = await http.get(path, headers=headers)
                assert answer.status_code == status, (path, headers, answer.text)
                assert not answer.content.startswith(MAGIC)
            assert (await http.get(path)).status_code == 200


async def test_with_recording_off_the_routes_say_how_to_turn_it_on() -> None:
    async with serving() as served, httpx.AsyncClient(base_url=served.base, timeout=10) as http:
        listing = await http.get("/flights")
        assert listing.status_code == 200
        assert listing.json()["recording_on"] is False
        assert "--flight-recording-dir" in listing.json()["note"]
        one = await http.get(f"/flights/{NAME}")
        assert one.status_code == 404
        assert "--flight-recording-dir" in one.json()["error"]
        index = await http.get("/")
        assert ">/flights<" in index.text


@pytest.mark.parametrize(("scopes", "status"), [(("drone:read",), 200), (("drone:fly", "drone:admin"), 403)])
async def test_with_access_control_on_recordings_need_drone_read(
    tmp_path: Path, scopes: tuple[str, ...], status: int
) -> None:
    _write_recording(tmp_path / NAME)
    access = AccessSettings(token=TOKEN, static_scopes=scopes)
    settings = http_drone_settings(flight_recording_dir=str(tmp_path))
    async with (
        serving(settings, http=http_settings(access=access)) as served,
        httpx.AsyncClient(base_url=served.base, timeout=10) as http,
    ):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/flights", f"/flights/{NAME}"):
            assert (await http.get(path)).status_code == 401, path  # no token
            answer = await http.get(path, headers=auth)
            assert answer.status_code == status, (path, answer.text)
            if status == 403:
                assert "drone:read" in answer.text
        if status == 200:
            assert (await http.get(f"/flights/{NAME}", headers=auth)).content == (
                tmp_path / NAME
            ).read_bytes()


async def test_with_access_control_off_only_loopback_gets_recordings(tmp_path: Path) -> None:
    _write_recording(tmp_path / NAME)
    async with serving(http_drone_settings(flight_recording_dir=str(tmp_path))) as served:
        for peer, status in (("10.0.0.7", 403), ("127.0.0.1", 200)):
            # The served app, called in-process as if from `peer` (uvicorn's peer is loopback).
            transport = httpx.ASGITransport(app=served.app, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
                for path in ("/flights", f"/flights/{NAME}"):
                    answer = await http.get(path)
                    assert answer.status_code == status, (peer, path, answer.text)
                    if status == 403:
                        assert "loopback" in answer.json()["error"]


def test_listed_durations_come_from_the_summary_or_from_a_cut_short_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed, crashed = tmp_path / NAME, tmp_path / "flight-20260101T000001Z.mcap"
    recording = Recording(closed, now=0.0)
    for i in range(2000):  # several chunks' worth, 0.0 .. 199.9 s
        recording.write("/drone/state", i / 10, {"t_s": i / 10, "height_cm": i})
    shutil.copyfile(closed, crashed)  # no summary, no footer: what a crash leaves
    recording.close()
    read: list[str] = []  # which files were read message by message

    def reading(path: Path) -> list[Recorded]:
        read.append(path.name)
        return read_recording(path)

    monkeypatch.setattr(recorder, "read_recording", reading)
    listed = {item["name"]: item for item in list_recordings(tmp_path)}
    assert read == [crashed.name]  # a closed file's summary suffices
    assert listed[closed.name]["duration_s"] == 199.9
    assert 0 < listed[crashed.name]["duration_s"] < 199.9
    assert listed[crashed.name]["size"] == os.path.getsize(crashed)


async def _raw_get(http: httpx.AsyncClient, target: str) -> httpx.Response:
    """GET with `target` sent as is (httpx would resolve the dot segments itself)."""
    return await http.get("/", extensions={"target": target.encode()})


def _write_recording(path: Path) -> None:
    recording = Recording(path, now=0.0)
    recording.write("/drone/state", 0.0, {"t_s": 0.0, "height_cm": 0})
    recording.close()
