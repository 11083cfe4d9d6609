"""Glass-to-glass latency, measured on received frames in one of two ways.

* ``marker`` (latency-marker.md): the source stamps a frame id into the top-left corner of every
  frame it sends and remembers when each was captured (``FrameSource.marker_sent``: camera to
  screen, the wait before the encoder included);
  ``decart serve`` copies the corner to the output frame it makes from that input. The id is read
  back from each received frame (the luma plane's 64 × 16 corner, no conversion of the whole frame)
  and ``received − sent`` is a sample, on ``perf_counter``. Decart's cloud models do not preserve it.
* ``frame_timing`` (decart-protocol-2026-11.md §6, today's JS SDK): on LiveKit each frame is
  captured with its wall-clock time (µs since the epoch) in its frame metadata, the server copies it
  to the output frame, and the transport hands it back as ``frame.opaque``; a sample is ``now −
  that time``. Works against the cloud when the server echoes it (and against ``decart serve``).

Both keep a :class:`LatencyWindow` with the JS SDK's rules: values below 0 or above 60 s are
dropped, frame timing skips its first 2 s (the JS SDK's warm-up), and the last 300 samples count.
:attr:`LatencyMeter.source` says which one is shown: the marker when it measures, else frame timing,
else ``None`` (the panel then shows "—").
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from decart_cli.media import marker

if TYPE_CHECKING:
    from decart_cli.media.frame_source import FrameSource

__all__ = ["MAX_MS", "SKIP_S", "WINDOW", "LatencyMeter", "LatencySource", "LatencyWindow", "quantile"]

WINDOW = 300  # samples kept (10 s at 30 fps), as the JS SDK's frame-timing diagnostics
MAX_MS = 60_000.0  # larger values are stale (the marker's 12-bit id wraps every ~136 s at 30 fps)
SKIP_S = 2.0  # frame timing ignores the first 2 s after its first frame, as the JS SDK

LatencySource = Literal["marker", "frame_timing"]


def quantile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank), or ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LatencyWindow:
    """Latency samples under the JS SDK's rules (pure: every timestamp is given).

    Args:
        skip: seconds after the first offered sample during which samples are ignored.
        size: samples kept.
    """

    def __init__(self, *, skip: float = 0.0, size: int = WINDOW) -> None:
        self._skip = skip
        self._samples: deque[float] = deque(maxlen=size)
        self._first: float | None = None
        self.count = 0  # samples accepted so far
        self.history: list[tuple[float, float]] | None = None  # (at, ms) of every accepted sample when set

    def add(self, ms: float, at: float) -> float | None:
        """Offer a sample taken at ``at`` (seconds, any monotonic clock); the value kept, or ``None``."""
        if self._first is None:
            self._first = at
        if not 0.0 <= ms <= MAX_MS or at - self._first < self._skip:
            return None
        self._samples.append(ms)
        self.count += 1
        if self.history is not None:
            self.history.append((at, ms))
        return ms

    def median(self) -> float | None:
        """Median of the window, or ``None`` before the first sample."""
        return float(statistics.median(self._samples)) if self._samples else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the window, or ``None`` before the first sample."""
        return quantile(list(self._samples), q)


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
    """Latency of the frames received back, by the marker and/or frame timing.

    Args:
        source: the frame source; with ``marker`` it must stamp (opened with ``stamp_marker=True``).
        marker: read frame-id markers.
        frame_timing: read capture timestamps echoed in ``frame.opaque`` (LiveKit frame timing).
        clock: ``time.perf_counter``, the clock of ``source.marker_sent``.
        wall: ``time.time``, the clock of frame-timing stamps.
    """

    def __init__(
        self,
        source: FrameSource | None,
        *,
        marker: bool = True,
        frame_timing: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._read_marker = marker and source is not None
        self._read_timing = frame_timing
        self._clock = clock
        self._wall = wall
        self.marker = LatencyWindow()
        self.frame_timing = LatencyWindow(skip=SKIP_S)

    @property
    def count(self) -> int:
        """Samples of the measure shown (see :attr:`source`)."""
        window = self.window()
        return 0 if window is None else window.count

    @property
    def source(self) -> LatencySource | None:
        """Which measure the figures come from: ``"marker"`` when it measures, else ``"frame_timing"``."""
        if self.marker.count:
            return "marker"
        if self.frame_timing.count:
            return "frame_timing"
        return None

    def keep_history(self) -> None:
        """From now on, remember every accepted sample of both measures (for ``decart bench``)."""
        self.marker.history = []
        self.frame_timing.history = []

    def on_frame(self, frame: Any) -> float | None:
        """Measure a received frame; the latency in ms of the measure shown, or ``None``."""
        now = self._clock()
        ms: float | None = None
        if self._read_timing:
            stamp = getattr(frame, "opaque", None)
            if isinstance(stamp, int) and stamp > 0:
                ms = self.frame_timing.add(self._wall() * 1000.0 - stamp / 1000.0, now)
        if self._read_marker and self._source is not None:
            corner = _corner_luma(frame)
            frame_id = None if corner is None else marker.read(corner)
            sent = None if frame_id is None else self._source.marker_sent.get(frame_id)
            if sent is not None:
                ms = self.marker.add(float(now - sent) * 1000.0, now)
        return ms

    def window(self) -> LatencyWindow | None:
        """The window of the measure shown (:attr:`source`), or ``None`` before the first sample."""
        source = self.source
        return None if source is None else self.marker if source == "marker" else self.frame_timing

    def median_ms(self) -> float | None:
        """Median of the shown measure's window, or ``None`` before the first sample."""
        window = self.window()
        return None if window is None else window.median()

    def percentile_ms(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the shown measure's window, or ``None`` before the first sample."""
        window = self.window()
        return None if window is None else window.quantile(q)
