"""capture_photo: a real JPEG from the simulator's H.264 stream, and it shows what the drone sees."""

from __future__ import annotations

import base64

import anyio
import numpy as np
import pytest
from mcp import Client
from mcp_types import CallToolResult, ImageContent
from numpy.typing import NDArray

from drone_sim.video import H264Encoder, packetize
from servers.drone.camera import decode_jpeg
from tests.drone_server.harness import Drone, Schemas, assert_fresh, connect, json_text, text_of

pytestmark = pytest.mark.anyio


def _picture(result: CallToolResult, schemas: Schemas) -> NDArray[np.int16]:
    """The photo's pixels, after checking the image block against the structured content."""
    info = schemas.check("capture_photo", result)
    images = [block for block in result.content if isinstance(block, ImageContent)]
    assert len(images) == 1
    image = images[0]
    assert image.mime_type == "image/jpeg"
    jpeg = base64.b64decode(image.data, validate=True)
    assert jpeg.startswith(b"\xff\xd8")
    assert jpeg.endswith(b"\xff\xd9")
    assert len(jpeg) == info["jpeg_bytes"]
    frame = decode_jpeg(jpeg)
    assert (frame.width, frame.height) == (info["width"], info["height"])
    assert info["frame_age_s"] >= 0
    assert_fresh(info)
    assert json_text(result) == info  # the text block says the same for text-only clients
    return frame.to_ndarray(format="rgb24").astype(np.int16)


def _difference(a: NDArray[np.int16], b: NDArray[np.int16]) -> float:
    return float(np.abs(a - b).mean())


@pytest.mark.parametrize("transport", ["memory-2026-07-28", "http-legacy"])
async def test_photo_is_a_decodable_jpeg(transport: str) -> None:
    async with connect(transport) as conn:
        schemas = await Schemas.of(conn.client)
        with anyio.fail_after(20):
            photo = await conn.client.call_tool("capture_photo", {})
            pixels = _picture(photo, schemas)
        assert pixels.shape == (360, 480, 3)
        assert pixels.std() > 10  # a picture, not a blank frame
        assert "streamon" in conn.truth.executed_texts()


async def test_photo_after_rotate_differs_measurably(drone: Drone) -> None:
    async with Client(drone.server) as client:
        schemas = await Schemas.of(client)
        with anyio.fail_after(30):
            took_off = await client.call_tool("takeoff", {})
            assert not took_off.is_error, text_of(took_off)
            before = _picture(await client.call_tool("capture_photo", {}), schemas)
            again = _picture(await client.call_tool("capture_photo", {}), schemas)
            yaw = drone.truth.pose.yaw
            turned = await client.call_tool("rotate", {"direction": "clockwise", "degrees": 90})
            assert not turned.is_error, text_of(turned)
            assert drone.truth.pose.yaw == pytest.approx(yaw + 90, abs=1)
            after = _picture(await client.call_tool("capture_photo", {}), schemas)

    still = _difference(before, again)
    moved = _difference(before, after)
    assert moved > 8.0, f"mean pixel difference after a 90 degree turn: {moved:.1f}"
    assert moved > 4 * still, f"turned {moved:.1f} vs hovering {still:.1f}"


async def test_video_from_anyone_but_the_drone_is_dropped(drone: Drone) -> None:
    """A process beside the drone streams its own H.264 to the video port: `capture_photo` must
    still show what the drone sees (ground truth: the simulator's render), and the datagrams are
    counted as foreign. Without the source check the forged all-red picture wins."""
    network = drone.runtime.network
    receiver = drone.runtime.photos.receiver
    encoder = H264Encoder(960, 720, gop=1)
    red = np.zeros((720, 960, 3), dtype=np.uint8)
    red[..., 0] = 255
    forgery = list(packetize(encoder.encode(red, keyframe=True)))

    async def flood() -> None:  # a forged keyframe every 20 ms, newer than most of the drone's
        while True:
            for datagram in forgery:
                attacker.send_nowait(datagram, ("127.0.0.1", receiver.port))
            await anyio.sleep(0.02)

    photos: list[CallToolResult] = []
    async with Client(drone.server) as client, await network.bind("127.0.0.1", 0) as attacker:
        schemas = await Schemas.of(client)
        with anyio.fail_after(30):
            honest = _picture(await client.call_tool("capture_photo", {}), schemas)  # streamon
            async with anyio.create_task_group() as tg:
                tg.start_soon(flood)
                await anyio.sleep(0.5)
                photos.append(await client.call_tool("capture_photo", {}))
                tg.cancel_scope.cancel()
            photo = _picture(photos[0], schemas)

    forged = red.astype(np.int16)[::2, ::2]
    assert _difference(photo, forged) > 40, "capture_photo returned the forged picture"
    assert _difference(photo, honest) < _difference(photo, forged) / 4
    assert receiver.stats.foreign_datagrams > 0
