"""Frame-id marker for glass-to-glass latency on loopback (shared/reference/latency-marker.md).

The top-left 64 × 16 pixels hold 16 blocks of 8 × 8: two rows of eight, read row by row, left to
right, most significant bit first. White (255) = 1, black (0) = 0. The 16-bit value is
``(id & 0xFFF) << 4 | checksum`` with ``checksum = (id ^ (id >> 4) ^ (id >> 8)) & 0xF``. A block
is read as the mean luma of its inner 4 × 4 pixels (rows/columns 2..5) > 128. ``decart serve``
copies the region from input to output; Decart's cloud models do not, so against the cloud the
marker measures nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["BLOCK", "HEIGHT", "WIDTH", "checksum", "decode_bits", "encode_bits", "read", "stamp", "stamp_i420"]

BLOCK = 8
WIDTH = 64
HEIGHT = 16
ID_MASK = 0xFFF


def checksum(frame_id: int) -> int:
    """The 4-bit checksum of a 12-bit id."""
    i = frame_id & ID_MASK
    return (i ^ (i >> 4) ^ (i >> 8)) & 0xF


def encode_bits(frame_id: int) -> int:
    """The 16-bit marker value for ``frame_id`` (wrapped to 12 bits)."""
    i = frame_id & ID_MASK
    return (i << 4) | checksum(i)


def decode_bits(value: int) -> int | None:
    """The id carried by a 16-bit value, or ``None`` when its checksum does not match."""
    i = (value >> 4) & ID_MASK
    return i if (value & 0xF) == checksum(i) else None


def stamp(frame_bgr: npt.NDArray[np.uint8], frame_id: int) -> None:
    """Draw the marker for ``frame_id`` into ``frame_bgr`` in place (at least 64 × 16, 3 channels).

    Raises:
        ValueError: the frame is smaller than the marker region.
    """
    h, w = frame_bgr.shape[:2]
    if w < WIDTH or h < HEIGHT:
        raise ValueError(f"frame {w}×{h} is smaller than the {WIDTH}×{HEIGHT} marker")
    value = encode_bits(frame_id)
    for k in range(16):
        bit = (value >> (15 - k)) & 1
        r, c = divmod(k, 8)
        frame_bgr[r * BLOCK : (r + 1) * BLOCK, c * BLOCK : (c + 1) * BLOCK] = 255 if bit else 0


def stamp_i420(i420: npt.NDArray[np.uint8], frame_id: int) -> None:
    """Draw the marker for ``frame_id`` into a contiguous I420 picture in place.

    ``i420`` is ``height * 3 // 2`` rows of ``width`` bytes (Y, then U, then V). The blocks are
    written as luma 255 / 0 with neutral chroma (128), which is white / black in every channel once
    converted back to RGB: the same marker as :func:`stamp` on a BGR picture, without a BGR copy.

    Raises:
        ValueError: the picture is smaller than the marker region, or not I420-shaped.
    """
    rows, w = i420.shape[:2]
    h = rows * 2 // 3
    if i420.ndim != 2 or rows != h * 3 // 2 or w < WIDTH or h < HEIGHT or w % 2 or h % 2:
        raise ValueError(f"an I420 picture of at least {WIDTH}×{HEIGHT} is needed, got an array of {i420.shape}")
    value = encode_bits(frame_id)
    for k in range(16):
        r, c = divmod(k, 8)
        i420[r * BLOCK : (r + 1) * BLOCK, c * BLOCK : (c + 1) * BLOCK] = 255 if (value >> (15 - k)) & 1 else 0
    # U and V: each a (h/2) × (w/2) plane stored as h/4 rows of w bytes; the marker's 32×8 chroma
    # region is the first 8 chroma rows' first 32 bytes.
    half = w // 2
    for plane in (i420[h : h + h // 4].reshape(h // 2, half), i420[h + h // 4 :].reshape(h // 2, half)):
        plane[: HEIGHT // 2, : WIDTH // 2] = 128


def read(frame_bgr: npt.NDArray[np.uint8]) -> int | None:
    """The frame id stamped in ``frame_bgr``, or ``None`` (no marker, checksum mismatch, too small)."""
    h, w = frame_bgr.shape[:2]
    if w < WIDTH or h < HEIGHT:
        return None
    region = frame_bgr[:HEIGHT, :WIDTH].astype(np.float32)
    if region.ndim == 3 and region.shape[2] >= 3:
        # BT.601 luma from BGR.
        luma = 0.114 * region[..., 0] + 0.587 * region[..., 1] + 0.299 * region[..., 2]
    else:
        luma = region.reshape(HEIGHT, WIDTH)
    # Inner 4×4 of each 8×8 block: reshape to (row, y, col, x) and average y,x in 2..5.
    blocks = luma.reshape(2, BLOCK, 8, BLOCK)[:, 2:6, :, 2:6].mean(axis=(1, 3))
    value = 0
    for bit in (blocks > 128).reshape(16):
        value = (value << 1) | int(bit)
    return decode_bits(value)
