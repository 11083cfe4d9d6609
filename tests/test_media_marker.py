"""Latency frame-id marker (latency-marker.md): exact layout, round trip, checksum rejection."""

from __future__ import annotations

import numpy as np
import pytest

from decart_cli.media import marker


def _frame(w: int = 128, h: int = 64, value: int = 90) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def test_round_trip_every_id() -> None:
    """Every 12-bit id stamped into a frame reads back unchanged."""
    img = _frame()
    for frame_id in range(4096):
        marker.stamp(img, frame_id)
        assert marker.read(img) == frame_id


def test_ids_wrap_at_4096() -> None:
    """The id is a 12-bit counter: 4096 + n reads as n."""
    img = _frame()
    marker.stamp(img, 4096 + 77)
    assert marker.read(img) == 77


def test_layout_matches_the_spec() -> None:
    """Block k (row-major, MSB first) is white exactly when bit 15-k of (id<<4 | checksum) is set."""
    img = _frame()
    frame_id = 0xA5C
    marker.stamp(img, frame_id)
    value = (frame_id << 4) | ((frame_id ^ (frame_id >> 4) ^ (frame_id >> 8)) & 0xF)
    for k in range(16):
        r, c = divmod(k, 8)
        block = img[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8]
        assert (block == (255 if (value >> (15 - k)) & 1 else 0)).all()
    assert (img[16:, :] == 90).all() and (img[:, 64:] == 90).all()  # nothing outside 64×16


def test_every_single_bit_error_is_rejected() -> None:
    """Flipping any one of the 16 bits of any id's value makes the checksum fail."""
    for frame_id in range(4096):
        value = marker.encode_bits(frame_id)
        assert marker.decode_bits(value) == frame_id
        for bit in range(16):
            assert marker.decode_bits(value ^ (1 << bit)) is None


def test_flipped_block_in_pixels_reads_as_no_id() -> None:
    """A frame whose marker has one block inverted carries no id."""
    img = _frame()
    marker.stamp(img, 1234)
    img[8:16, 24:32] = 255 - img[8:16, 24:32]
    assert marker.read(img) is None


def test_read_uses_inner_pixels_and_survives_yuv420p() -> None:
    """Block edges may blur (only the inner 4×4 count) and a bgr→yuv420p→bgr round trip keeps the id."""
    import av

    img = _frame(1088, 624)
    marker.stamp(img, 3001)
    img[0:16:8, :64] = 128  # smear the block borders
    frame = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
    assert marker.read(frame.to_ndarray(format="bgr24")) == 3001


def test_small_frames() -> None:
    """Stamping a frame smaller than 64×16 is a ValueError; reading one gives None."""
    tiny = _frame(32, 8)
    with pytest.raises(ValueError, match="32×8"):
        marker.stamp(tiny, 1)
    assert marker.read(tiny) is None
