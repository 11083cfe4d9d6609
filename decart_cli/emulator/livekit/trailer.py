"""LiveKit's packet trailer: per-frame metadata appended to each encoded video frame (pure, no I/O).

A publisher that sets ``frame_metadata_features`` (the JS SDK's ``frameMetadata: {timestamp:
true}``, livekit-py's ``FMF_USER_TIMESTAMP``) has libwebrtc append a trailer to every encoded
frame, after the codec's own bytes and before packetisation; a subscriber whose ``TrackInfo``
lists ``packet_trailer_features`` strips it before decoding and hands the values to the
application with the decoded frame (decart-protocol-2026-11.md §6, the frame-timing latency).

Layout, from livekit/rust-sdks ``webrtc-sys/include/livekit/packet_trailer.h`` and
``webrtc-sys/src/packet_trailer.cpp`` (``BuildTrailerPayload`` / ``ParseTrailerPayload``)::

    [TLV]... [trailer_len ^ 0xFF : 1 byte] [b"LKTS" : 4 bytes]

Every TLV byte (tag, length, value) is XORed with 0xFF, so no H.264 start code (00 00 01) can
appear inside. Tags: 1 = user timestamp (8 bytes, big-endian, µs since the epoch), 2 = frame id
(4 bytes, big-endian), 3 = user data (any bytes). A TLV is present only when its value is set
(non-zero, non-empty); ``trailer_len`` counts the whole trailer, envelope included, at most 255.
Unknown tags are skipped. AV1 frames carry the trailer in an OBU instead (not handled here: the
stand-in negotiates VP8 and H.264 only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAGIC",
    "MAX_TRAILER",
    "TAG_FRAME_ID",
    "TAG_TIMESTAMP",
    "TAG_USER_DATA",
    "Trailer",
    "build",
    "parse",
    "strip",
]

MAGIC: Final = b"LKTS"
ENVELOPE: Final = 5  # trailer_len byte + magic
MAX_TRAILER: Final = 255
TAG_TIMESTAMP: Final = 0x01
TAG_FRAME_ID: Final = 0x02
TAG_USER_DATA: Final = 0x03


@dataclass(frozen=True)
class Trailer:
    """The metadata one trailer carried (0 / empty where the TLV was absent).

    Attributes:
        user_timestamp: µs since the epoch, as the publisher stamped the frame.
        frame_id: the publisher's frame id.
        user_data: application bytes.
        size: bytes the trailer took at the end of the frame.
    """

    user_timestamp: int = 0
    frame_id: int = 0
    user_data: bytes = b""
    size: int = 0


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in (tag, len(value), *value))


def build(user_timestamp: int = 0, frame_id: int = 0, user_data: bytes = b"") -> bytes:
    """The trailer for these values; ``b""`` when none is set (a frame without metadata gets none).

    Raises:
        ValueError: a value out of range, or more user data than fits in 255 bytes.
    """
    if not 0 <= user_timestamp < 1 << 64 or not 0 <= frame_id < 1 << 32:
        raise ValueError(f"user_timestamp {user_timestamp} or frame_id {frame_id} out of range")
    body = b""
    if user_timestamp:
        body += _tlv(TAG_TIMESTAMP, user_timestamp.to_bytes(8, "big"))
    if frame_id:
        body += _tlv(TAG_FRAME_ID, frame_id.to_bytes(4, "big"))
    if user_data:
        body += _tlv(TAG_USER_DATA, user_data)
    if not body:
        return b""
    total = len(body) + ENVELOPE
    if total > MAX_TRAILER:
        raise ValueError(f"a trailer of {total} bytes is over the {MAX_TRAILER}-byte limit")
    return body + bytes([total ^ 0xFF]) + MAGIC


def parse(data: bytes | bytearray | memoryview) -> Trailer | None:
    """The trailer at the end of an encoded frame, or ``None`` when it carries none (or a broken one).

    A trailer counts only with the magic, a consistent length and at least one known TLV, as
    ``ParseTrailerPayload`` requires.
    """
    n = len(data)
    if n < ENVELOPE or bytes(data[n - 4 :]) != MAGIC:
        return None
    total = data[n - 5] ^ 0xFF
    if total < ENVELOPE or total > n:
        return None
    region = bytes(data[n - total : n - ENVELOPE])
    timestamp = frame_id = 0
    user_data = b""
    found = False
    pos = 0
    while pos + 2 <= len(region):
        tag, length = region[pos] ^ 0xFF, region[pos + 1] ^ 0xFF
        pos += 2
        if pos + length > len(region):
            break
        value = bytes(b ^ 0xFF for b in region[pos : pos + length])
        if tag == TAG_TIMESTAMP and length == 8:
            timestamp, found = int.from_bytes(value, "big"), True
        elif tag == TAG_FRAME_ID and length == 4:
            frame_id, found = int.from_bytes(value, "big"), True
        elif tag == TAG_USER_DATA:
            user_data, found = value, True
        pos += length
    if not found:
        return None
    return Trailer(timestamp, frame_id, user_data, total)


def strip(data: bytes) -> tuple[bytes, Trailer | None]:
    """``(the frame without its trailer, the trailer)``; the frame unchanged and ``None`` when it has none."""
    trailer = parse(data)
    if trailer is None:
        return data, None
    return data[: len(data) - trailer.size], trailer
