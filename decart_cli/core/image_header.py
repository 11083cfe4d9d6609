"""The picture size an image file declares, read from its header without decoding it.

A 0.7 MB PNG can declare 16000×16000 pixels (a "decompression bomb"): decoding it first costs
hundreds of megabytes and seconds. :func:`read_header` reads only the bytes that carry the size —
PNG ``IHDR``, a JPEG start-of-frame marker, a WebP ``VP8 ``/``VP8L``/``VP8X`` chunk — so a size
limit can be enforced before anything is decoded (``runtime/input.py``'s ``load_image``).

Pure: bytes in, numbers out (no I/O, no imaging library).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ImageHeader", "read_header"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic…); not DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length field


@dataclass(frozen=True)
class ImageHeader:
    """``kind`` (``"png"``, ``"jpeg"`` or ``"webp"``) and the declared size in pixels (both > 0)."""

    kind: str
    width: int
    height: int

    @property
    def megapixels(self) -> float:
        """``width × height`` in millions of pixels."""
        return self.width * self.height / 1e6


def read_header(data: bytes) -> ImageHeader | None:
    """The format and declared size of a PNG, JPEG or WebP file; ``None`` when the header is not one of them,
    is truncated before the size, or declares a zero size."""
    if data.startswith(_PNG_SIGNATURE):
        return _png(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    return None


def _sized(kind: str, width: int, height: int) -> ImageHeader | None:
    return ImageHeader(kind, width, height) if width > 0 and height > 0 else None


def _png(data: bytes) -> ImageHeader | None:
    # signature (8), IHDR length (4), "IHDR" (4), width (4, big-endian), height (4)
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return _sized("png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))


def _jpeg(data: bytes) -> ImageHeader | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker in _JPEG_SOF:
            # FFCn, length (2), precision (1), height (2), width (2)
            if i + 9 > len(data):
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return _sized("jpeg", width, height)
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _webp(data: bytes) -> ImageHeader | None:
    chunk = data[12:16]
    body = data[20:]
    if chunk == b"VP8 ":  # lossy: frame tag (3), start code 9d 01 2a, 14-bit width, 14-bit height
        if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
            return None
        width = int.from_bytes(body[6:8], "little") & 0x3FFF
        height = int.from_bytes(body[8:10], "little") & 0x3FFF
        return _sized("webp", width, height)
    if chunk == b"VP8L":  # lossless: signature 0x2f, then 14-bit width-1 and height-1
        if len(body) < 5 or body[0] != 0x2F:
            return None
        bits = int.from_bytes(body[1:5], "little")
        return _sized("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":  # extended: flags (1), reserved (3), 24-bit canvas width-1 and height-1
        if len(body) < 10:
            return None
        return _sized("webp", int.from_bytes(body[4:7], "little") + 1, int.from_bytes(body[7:10], "little") + 1)
    return None
