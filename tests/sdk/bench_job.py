"""The benchmark job for the official SDK drivers, measured as ``decart bench`` measures itself.

Runs in either SDK virtualenv (numpy and OpenCV only, plus the repository root on ``sys.path``).
The job: a synthetic camera at the model's size and fps — the very frames ``decart bench`` sends
(:class:`decart_cli.media.synthetic.TestPattern`, so both encoders get the same content) with the
frame-id marker of latency-marker.md — through the server and back; every received frame is read
into an image and its marker read.

:class:`Probe` holds the measuring rules, the same as ``decart_cli/runtime/bench.py``:

* the window starts :data:`WARMUP` s after the first remote frame and lasts until the end;
* fps sent/received = frames in the window / its length; latency p50/p95/p99 over the window's
  marker samples (time the frame was handed to the SDK → time its decoded copy was read);
* CPU seconds per second = this process's user + system time over the window / its length
  (``getrusage``: every thread, the SDK's native ones included); peak RSS = ``ru_maxrss``;
* ``connect_s`` = start of connect → connect returned; ``first_frame_s`` = start of connect → first
  remote frame; ``prompt_ack_ms`` = median round trip of ``set_prompt`` calls during the window.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from decart_cli.media import marker  # noqa: E402 - numpy-only; the repository root is on the path above
from decart_cli.media.latency import quantile  # noqa: E402 - numpy-only: the quantile decart bench reports
from decart_cli.media.synthetic import TestPattern  # noqa: E402 - numpy + cv2 only

__all__ = ["PROMPTS", "WARMUP", "Frames", "Probe", "percentile"]

WARMUP = 2.0  # seconds after the first remote frame before the window opens (as the JS SDK skips 2 s)
PROMPTS = ("anime portrait", "pencil sketch", "cyberpunk city")


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` rounded to 0.1 (as ``decart bench`` rounds it), or ``None`` when empty."""
    value = quantile(values, q)
    return None if value is None else round(value, 1)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Frames:
    """Frame ``n`` of the CLI's test pattern (BGR), stamped with marker id ``n``; remembers send times."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.pattern = TestPattern(width, height, fps)
        self.sent_at: dict[int, float] = {}
        self.sent = 0

    def next(self) -> Any:
        """The next BGR frame; its send time is recorded now (call right before handing it to the SDK)."""
        img = self.pattern.render(self.sent)
        frame_id = self.sent & 0xFFF
        marker.stamp(img, frame_id)
        self.sent_at[frame_id] = time.perf_counter()
        self.sent += 1
        return img

    def latency_ms(self, picture: Any) -> float | None:
        """Glass-to-glass latency of a received picture (RGB/BGR/RGBA array) from its marker, or ``None``."""
        frame_id = marker.read(picture[: marker.HEIGHT, : marker.WIDTH, :3])
        sent = None if frame_id is None else self.sent_at.get(frame_id)
        return None if sent is None else (time.perf_counter() - sent) * 1000.0


class Probe:
    """Counters of one SDK session, read into the same figures as ``decart bench`` reports."""

    def __init__(self, frames: Frames) -> None:
        self.frames = frames
        self.t0 = time.perf_counter()
        self.connected_at: float | None = None
        self.first_at: float | None = None
        self.received = 0
        self.latency: list[tuple[float, float]] = []  # (arrival, ms)
        self.acks_ms: list[float] = []
        self._window: tuple[float, int, int, float] | None = None  # (t, sent, received, cpu) at the start
        self._end: tuple[float, int, int, float] | None = None

    def connected(self) -> None:
        """``connect()`` returned."""
        self.connected_at = time.perf_counter()

    def frame(self, picture: Any) -> None:
        """One received picture (already converted to an image by the driver)."""
        now = time.perf_counter()
        self.first_at = self.first_at or now
        self.received += 1
        ms = self.frames.latency_ms(picture)
        if ms is not None and 0.0 <= ms <= 60_000.0:
            self.latency.append((now, ms))

    def open_window(self) -> None:
        """Start the measuring window (call :data:`WARMUP` s after the first frame)."""
        self._window = (time.perf_counter(), self.frames.sent, self.received, cpu_seconds())

    def close_window(self) -> None:
        """End the measuring window."""
        self._end = (time.perf_counter(), self.frames.sent, self.received, cpu_seconds())

    async def measure(
        self, set_prompt: Callable[[str], Awaitable[Any]], seconds: float, first_frame_timeout: float
    ) -> None:
        """The job once ``connect()`` returned, the same for every driver.

        Waits for the first remote frame (``SystemExit`` after ``first_frame_timeout`` s), warms up
        :data:`WARMUP` s, then measures until ``seconds`` after the first frame, calling
        ``set_prompt`` with each of :data:`PROMPTS` at even intervals (round trips into ``acks_ms``).
        """
        self.connected()
        deadline = time.monotonic() + first_frame_timeout
        while self.first_at is None and time.monotonic() < deadline:  # noqa: ASYNC110 - set by the reader
            await asyncio.sleep(0.01)
        if self.first_at is None:
            raise SystemExit(f"bench: no remote frame within {first_frame_timeout:g} s")
        await asyncio.sleep(WARMUP)
        self.open_window()
        rest = max(0.0, seconds - WARMUP)
        for prompt in PROMPTS:
            await asyncio.sleep(rest / (len(PROMPTS) + 1))
            t0 = time.perf_counter()
            await set_prompt(prompt)
            self.acks_ms.append((time.perf_counter() - t0) * 1000.0)
        await asyncio.sleep(max(0.0, self.first_at + seconds - time.perf_counter()))
        self.close_window()

    def result(self) -> dict[str, Any]:
        """The figures, with the keys of ``decart bench --json`` sessions."""
        assert self._window is not None and self._end is not None
        t0, sent0, recv0, cpu0 = self._window
        t1, sent1, recv1, cpu1 = self._end
        span = max(1e-6, t1 - t0)
        samples = [ms for at, ms in self.latency if t0 <= at <= t1]
        return {
            "window_s": round(span, 2),
            "frames_sent": self.frames.sent,
            "frames_received": self.received,
            "fps_sent": round((sent1 - sent0) / span, 2),
            "fps_received": round((recv1 - recv0) / span, 2),
            "latency_ms": {
                "p50": percentile(samples, 0.5),
                "p95": percentile(samples, 0.95),
                "p99": percentile(samples, 0.99),
                "samples": len(samples),
            },
            "latency_source": "marker" if samples else None,
            "connect_s": None if self.connected_at is None else round(self.connected_at - self.t0, 3),
            "first_frame_s": None if self.first_at is None else round(self.first_at - self.t0, 3),
            "prompt_ack_ms": round(statistics.median(self.acks_ms), 1) if self.acks_ms else None,
            "cpu_per_s": round((cpu1 - cpu0) / span, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
