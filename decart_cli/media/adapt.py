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
# frame on a quiet 2-core machine (15–25 ms loaded) against ~1 ms for INTER_LINEAR
# (tests/test_media_track.py prints both). Below a 2× shrink bilinear sampling does not alias
# visibly, and the capture thread shares two cores with two VP8 codecs, so INTER_AREA is kept for
# strong shrinks only (a 1920×1080 or 4K camera feeding a 1088×624 model).
SHRINK_INTERPOLATION = cv2.INTER_AREA
GROW_INTERPOLATION = cv2.INTER_LINEAR
AREA_SHRINK_FACTOR = 2.0


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
    then resize (``INTER_AREA`` when shrinking 2× or more, ``INTER_LINEAR`` otherwise). A frame already
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
    strong_shrink = cw >= AREA_SHRINK_FACTOR * width and ch >= AREA_SHRINK_FACTOR * height
    interp = SHRINK_INTERPOLATION if strong_shrink else GROW_INTERPOLATION
    return cv2.resize(roi, (width, height), interpolation=interp)  # type: ignore[return-value]
