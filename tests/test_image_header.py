"""Image sizes read from headers before any decoding (PNG IHDR, JPEG SOF, WebP VP8/VP8L/VP8X)."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest
from test_stream_cli import png_bytes

from decart_cli.core.image_header import ImageHeader, read_header


def _encoded(fmt: str, width: int, height: int, **options: str) -> bytes:
    """A real image file of ``width × height`` written by FFmpeg (PyAV)."""
    codec = {"jpeg": "mjpeg", "webp": "libwebp", "png": "png"}[fmt]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="image2pipe") as out:
        stream = out.add_stream(codec, options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = {"mjpeg": "yuvj420p", "libwebp": "yuv420p", "png": "rgb24"}[codec]
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 120, np.uint8), format="rgb24")
        for packet in stream.encode(frame.reformat(format=stream.pix_fmt)):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "options"), [("png", {}), ("jpeg", {}), ("webp", {}), ("webp", {"lossless": "1"})])
def test_sizes_of_real_files(fmt: str, options: dict[str, str]) -> None:
    """Files written by FFmpeg report their true width and height from the header alone."""
    data = _encoded(fmt, 320, 180, **options)
    assert read_header(data) == ImageHeader(fmt, 320, 180)


def test_a_declared_bomb_is_read_without_its_pixels() -> None:
    """A PNG whose IHDR declares 16000×16000 reports 256 megapixels from its first 24 bytes."""
    bomb = bytearray(png_bytes(4, 4))
    bomb[16:24] = struct.pack(">II", 16000, 16000)
    header = read_header(bytes(bomb[:24]))
    assert header == ImageHeader("png", 16000, 16000) and header.megapixels == 256.0


def test_extended_webp_canvas() -> None:
    """A VP8X (extended) WebP gives its 24-bit canvas size."""
    data = b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x0a\x00\x00\x00" + b"\x10\x00\x00\x00" + (4999).to_bytes(3, "little")
    data += (2999).to_bytes(3, "little")
    assert read_header(data) == ImageHeader("webp", 5000, 3000)


def test_jpeg_skips_segments_and_fill_bytes() -> None:
    """APPn segments and 0xFF fill bytes before the frame header are skipped."""
    jpeg = b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    jpeg += b"\xff\xff\xc2\x00\x11\x08" + struct.pack(">HH", 4000, 6000)
    assert read_header(jpeg) == ImageHeader("jpeg", 6000, 4000)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world, not an image",
        b"\x89PNG\r\n\x1a\n",  # signature only
        png_bytes()[:20],  # cut inside IHDR
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + struct.pack(">II", 0, 10),  # zero width
        b"\xff\xd8\xff\xe0\x00\x10",  # JPEG cut in a segment
        b"\xff\xd8\xff\xda\x00\x02",  # start of scan before any frame header
        b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x04",  # frame header cut before the width
        b"RIFF\x00\x00\x00\x00WEBPVP8 ....",  # VP8 chunk without its start code
        b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x00\x01\x02",  # VP8L without its signature
        b"RIFF\x00\x00\x00\x00WEBPABCD\x00\x00\x00\x00" + b"\x00" * 10,  # unknown chunk
    ],
)
def test_not_an_image_or_truncated_is_none(data: bytes) -> None:
    """Other bytes, truncated headers and zero sizes give None."""
    assert read_header(data) is None
