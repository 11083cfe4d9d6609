"""``--camera test``: a moving, asymmetric test pattern at the model's size and fps. No device needed.

The picture: a static diagonal gradient, a bright square moving along a Lissajous path, a frame
counter, and two asymmetric marks so a test (or a human) can tell whether it was flipped:
a solid red bar down the left edge (:data:`LEFT_BAR_WIDTH` px wide, below the 16-px marker strip)
and a large "R" in the upper-left quadrant. Cost per frame is a copy of the background plus a few
small drawing calls (see the report in tests/test_media_track.py).
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import numpy.typing as npt

from decart_cli.core.negotiate import Mode
from decart_cli.media.frame_source import FrameSource

__all__ = ["LEFT_BAR_COLOR", "LEFT_BAR_WIDTH", "SyntheticSource", "TestPattern"]

LEFT_BAR_COLOR = (0, 0, 255)  # BGR red
LEFT_BAR_WIDTH = 24
_TOP_RESERVED = 16  # the latency marker lives in the top 16 rows (latency-marker.md)

Bgr = npt.NDArray[np.uint8]


class TestPattern:
    """Renders frame ``n`` of the pattern at ``width × height`` (pure function of ``n``)."""

    __test__ = False  # not a pytest class despite the name

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.width = width
        self.height = height
        self.fps = fps
        ys = np.linspace(40, 160, height, dtype=np.float32)[:, None]
        xs = np.linspace(0, 80, width, dtype=np.float32)[None, :]
        bg = np.empty((height, width, 3), np.uint8)
        bg[..., 0] = (ys + xs).astype(np.uint8)  # blue: diagonal
        bg[..., 1] = np.broadcast_to(ys * 0.8, (height, width)).astype(np.uint8)  # green: vertical
        bg[..., 2] = np.broadcast_to(xs + 30, (height, width)).astype(np.uint8)  # red: horizontal
        bar_w = min(LEFT_BAR_WIDTH, max(1, width // 8))
        bg[_TOP_RESERVED:, :bar_w] = LEFT_BAR_COLOR
        scale = max(1.0, height / 120)
        cv2.putText(
            bg,
            "R",
            (bar_w + width // 10, height // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale * 1.5,
            (255, 255, 255),
            max(2, int(scale * 3)),
            cv2.LINE_AA,
        )
        self._bg = bg
        self._square = max(8, min(width, height) // 8)
        self._bar_w = bar_w

    def render(self, n: int) -> Bgr:
        """A new array with frame ``n``: background, moving square, counter."""
        img = self._bg.copy()
        w, h, s = self.width, self.height, self._square
        t = n / self.fps
        margin = self._bar_w + 4
        x = int(margin + (w - s - 2 * margin) * (0.5 + 0.5 * math.sin(t * 1.3)))
        y = int(_TOP_RESERVED + 4 + (h - s - _TOP_RESERVED - 8) * (0.5 + 0.5 * math.sin(t * 0.9 + 1.0)))
        cv2.rectangle(img, (x, y), (x + s, y + s), (40, 220, 255), -1)
        cv2.putText(
            img,
            f"{n:06d}",
            (w - 200 if w > 260 else margin, h - 12),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.9 if w > 260 else 0.4,
            (255, 255, 255),
            2,
            cv2.LINE_AA,
        )
        return img


class SyntheticSource(FrameSource):
    """Generates :class:`TestPattern` frames on its thread, paced by ``perf_counter`` at ``fps``."""

    self_paced = True  # real time by itself: frames go out as they come (the pacer adds no wait)

    @classmethod
    def open(
        cls, *, width: int, height: int, fps: float, mirrored: bool = False, stamp_marker: bool = False
    ) -> SyntheticSource:
        """Create and start the test source (cannot fail)."""
        from decart_cli.media.source import SourceInfo

        mode = Mode(width, height, float(fps)).as_tuple()
        info = SourceInfo(
            kind="test",
            name="test pattern",
            facing=None,
            asked=mode,
            device=mode,
            sent=mode,
            mirrored=mirrored,
            mode_note=f"synthetic test pattern at the model size {width}×{height}",
        )
        src = cls(info, fps=fps, stall_timeout=3.0, stamp_marker=stamp_marker)
        src._pattern = TestPattern(width, height, fps)
        src.start()
        return src

    _pattern: TestPattern

    def _run(self) -> None:
        interval = 1.0 / self.fps
        start = time.perf_counter()
        n = 0
        while not self._stop.is_set():
            due = start + n * interval
            now = time.perf_counter()
            if due > now:
                if not self._sleep(due - now):
                    break
            elif now - due > 5 * interval:  # fell far behind (suspended): skip ahead, don't burst
                n = int((now - start) / interval)
                due = start + n * interval
            t = time.perf_counter()
            if self._admit(t):
                self._publish(self._pattern.render(n), t)
            n += 1
