"""A tiny PNG and a tiny WAV, generated rather than pasted in as opaque base64 blobs."""

from __future__ import annotations

import base64
import io
import math
import struct
import wave
import zlib
from functools import cache

PNG_MIME = "image/png"
WAV_MIME = "audio/wav"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def tiny_png(size: int = 16) -> bytes:
    """A `size`x`size` RGB gradient (a few hundred bytes)."""
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter: none
        for x in range(size):
            rows.extend((x * 255 // (size - 1), y * 255 // (size - 1), 160))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9)),
            _png_chunk(b"IEND", b""),
        )
    )


@cache
def tiny_wav(frequency_hz: float = 440.0, duration_s: float = 0.25, rate: int = 8000) -> bytes:
    """A short mono 8-bit sine tone (~2 kB)."""
    frames = bytes(
        int(128 + 100 * math.sin(2 * math.pi * frequency_hz * i / rate))
        for i in range(int(rate * duration_s))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
