"""Fit any captured frame to the model's exact size: mirror, centre-crop, resize. Never stretch."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from decart_cli.core.negotiate import crop_rect

__all__ = ["adapt", "to_bgr"]

Bgr = npt.NDArray[np.uint8]


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
    interp = cv2.INTER_AREA if cw >= width and ch >= height else cv2.INTER_LINEAR
    return cv2.resize(roi, (width, height), interpolation=interp)  # type: ignore[return-value]
