"""Fit any captured frame to the model's exact size: mirror, centre-crop, resize. Never stretch."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from decart_cli.core.negotiate import crop_rect

__all__ = ["GROW_INTERPOLATION", "SHRINK_INTERPOLATION", "adapt", "to_bgr"]

Bgr = npt.NDArray[np.uint8]

# INTER_AREA averages every source pixel (no aliasing) but costs ~8 ms per 1280×720 → 1088×624
# frame on a quiet 2-core machine against ~1 ms for INTER_LINEAR (tests/test_media_track.py
# prints both). At the usual 1.15× shrink the visual difference is small; change it here if the
# capture thread cannot keep up.
SHRINK_INTERPOLATION = cv2.INTER_AREA
GROW_INTERPOLATION = cv2.INTER_LINEAR


def to_bgr(frame: npt.NDArray[Any]) -> Bgr:
    """Normalise a captured array to 3-channel uint8 BGR (grey and BGRA devices exist)."""
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)  # type: ignore[return-value]
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)  # type: ignore[return-value]
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)  # type: ignore[return-value]
    return frame


def adapt(frame: npt.NDArray[Any], width: int, height: int, *, mirror: bool) -> Bgr:
    """Return ``frame`` as a ``height × width × 3`` BGR array, flipped first when ``mirror``.

    Order matters (client-behaviour.md B): flip, then centre-crop to the ``width:height`` aspect,
    then resize (``INTER_AREA`` when shrinking, ``INTER_LINEAR`` when enlarging). A frame already
    at the right size and not mirrored is returned as is (no copy).
    """
    img = to_bgr(frame)
    if mirror:
        img = cv2.flip(img, 1)  # type: ignore[assignment]
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    x, y, cw, ch = crop_rect(w, h, width, height)
    roi = img[y : y + ch, x : x + cw]
    interp = SHRINK_INTERPOLATION if cw >= width and ch >= height else GROW_INTERPOLATION
    return cv2.resize(roi, (width, height), interpolation=interp)  # type: ignore[return-value]
