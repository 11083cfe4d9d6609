"""Glass-to-glass latency from the frame-id marker (latency-marker.md), measured on received frames.

The source stamps an id into the top-left corner of every frame it sends and remembers when each
went to the encoder (``FrameSource.marker_sent``); ``decart serve`` copies the corner to the output
frame it makes from that input. :class:`LatencyMeter` reads the id back from each received frame
(the luma plane's 64 × 16 corner, no conversion of the whole frame) and keeps a window of
``received − sent`` samples. Against Decart's cloud the marker is not preserved and nothing is
measured.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from decart_cli.media import marker

if TYPE_CHECKING:
    from decart_cli.media.frame_source import FrameSource

__all__ = ["LatencyMeter"]

WINDOW = 300  # samples kept (10 s at 30 fps), as the JS SDK's frame-timing diagnostics
MAX_MS = 60_000.0  # larger values are stale ids (the 12-bit id wraps every ~136 s at 30 fps)


def _corner_luma(frame: Any) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
    """The top-left 64 × 16 luma pixels of an ``av.VideoFrame`` (a view for yuv420p)."""
    if frame.width < marker.WIDTH or frame.height < marker.HEIGHT:
        return None
    if frame.format.name == "yuv420p":
        plane = frame.planes[0]
        rows = np.frombuffer(plane, dtype=np.uint8)[: marker.HEIGHT * plane.line_size]
        return rows.reshape(marker.HEIGHT, plane.line_size)[:, : marker.WIDTH]
    bgr = frame.to_ndarray(format="bgr24")
    return bgr[: marker.HEIGHT, : marker.WIDTH]  # type: ignore[no-any-return]


class LatencyMeter:
    """Latency samples of frames sent by ``source`` and received back.

    Args:
        source: the stamping source (opened with ``stamp_marker=True``).
        clock: ``time.perf_counter``, the clock of ``source.marker_sent``.
    """

    def __init__(self, source: FrameSource, clock: Any = time.perf_counter) -> None:
        self._source = source
        self._clock = clock
        self._samples: deque[float] = deque(maxlen=WINDOW)
        self.count = 0

    def on_frame(self, frame: Any) -> float | None:
        """Read the marker of a received frame; the latency in ms, or ``None`` when it has none."""
        corner = _corner_luma(frame)
        if corner is None:
            return None
        frame_id = marker.read(corner)
        sent = None if frame_id is None else self._source.marker_sent.get(frame_id)
        if sent is None:
            return None
        ms = float(self._clock() - sent) * 1000.0
        if not 0.0 <= ms <= MAX_MS:
            return None
        self._samples.append(ms)
        self.count += 1
        return ms

    def median_ms(self) -> float | None:
        """Median of the window, or ``None`` before the first sample."""
        return float(statistics.median(self._samples)) if self._samples else None

    def percentile_ms(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the window, or ``None`` before the first sample."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
