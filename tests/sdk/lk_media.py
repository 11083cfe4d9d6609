"""Media helpers for drivers that use the official ``livekit`` SDK (project venv or the decart 0.2.4 venv).

``CameraPump`` publishes marker-stamped RGBA frames at 30 fps through an ``rtc.VideoSource``;
``Output`` reads every subscribed output track through its own ``rtc.VideoStream`` and measures
frames, sizes and glass-to-glass latency from the markers (latency-marker.md: the time a frame was
handed to the SDK → the time its decoded copy came back). Needs ``livekit``, numpy and OpenCV (the
marker code is decart_cli/media/marker.py; quantiles come from bench_job.py, as ``decart bench``'s).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]
from bench_job import percentile  # noqa: E402 - this directory, put on the path above

from decart_cli.media import marker  # noqa: E402 - numpy-only; the repository root is put on the path above

FPS = 30


def base_frame(width: int, height: int) -> np.ndarray:
    """An RGBA gradient the size of the track."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    r, g = np.broadcast_arrays(x, y)
    rgba = np.stack([r, g, (r + g) / 2, np.full_like(r, 255)], axis=-1).astype(np.uint8)
    return np.ascontiguousarray(rgba)


class CameraPump:
    """A synthetic 30 fps camera: frame ``i`` carries marker id ``i`` and a moving white band.

    With ``frame_timing`` every frame is captured with ``FrameMetadata(user_timestamp=µs since the
    epoch)`` (publish the track with ``FMF_USER_TIMESTAMP`` for libwebrtc to send it).
    """

    def __init__(self, width: int, height: int, *, frame_timing: bool = False) -> None:
        self.width, self.height = width, height
        self.frame_timing = frame_timing
        self.source = rtc.VideoSource(width, height)
        self.track = rtc.LocalVideoTrack.create_video_track("camera", self.source)
        self.sent_at: dict[int, float] = {}
        self.sent = 0
        self.seconds = 0.0
        self._base = base_frame(width, height)

    async def run(self, seconds: float, before: Callable[[float], Awaitable[None]] | None = None) -> None:
        """Capture ``seconds × 30`` frames, paced; ``before(elapsed)`` runs before each frame."""
        start = time.monotonic()
        for i in range(int(seconds * FPS)):
            if before is not None:
                await before(time.monotonic() - start)
            img = self._base.copy()
            band = 16 + (i * 4) % (self.height - 24)
            img[band : band + 8, :, :3] = 255
            marker.stamp(img[:, :, :3], i)  # white/black blocks read the same in RGB and BGR
            self.sent_at[i & 0xFFF] = time.monotonic()
            frame = rtc.VideoFrame(self.width, self.height, rtc.VideoBufferType.RGBA, img.tobytes())
            if self.frame_timing:
                self.source.capture_frame(frame, metadata=rtc.FrameMetadata(user_timestamp=time.time_ns() // 1000))
            else:
                self.source.capture_frame(frame)
            self.sent += 1
            delay = start + (i + 1) / FPS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        self.seconds = time.monotonic() - start


class Output:
    """Reads every output track given to :meth:`attach`; counts frames, sizes, markers, latency."""

    def __init__(self, sent_at: dict[int, float]) -> None:
        self.sent_at = sent_at
        self.frames = 0
        self.per_track: dict[str, int] = {}
        self.sizes: set[tuple[int, int]] = set()
        self.marked = 0
        self.latency_ms: list[float] = []
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.first_id: int | None = None  # the marker id of the first frame that came back
        self.tasks: list[asyncio.Task[None]] = []
        self.timed = 0  # frames whose metadata carried a user timestamp (frame timing echoed)
        self.timing_ms: list[float] = []  # wall clock now − that timestamp

    def attach(self, track: Any) -> None:
        """Read ``track`` (an ``rtc.RemoteVideoTrack``) in its own task."""
        self.per_track.setdefault(track.sid, 0)
        self.tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: Any) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.RGBA)
        try:
            async for event in stream:
                now = time.monotonic()
                frame = event.frame
                self.frames += 1
                meta = event.metadata
                if meta is not None and meta.user_timestamp:
                    self.timed += 1
                    self.timing_ms.append(time.time() * 1000.0 - meta.user_timestamp / 1000.0)
                self.per_track[track.sid] += 1
                self.sizes.add((frame.width, frame.height))
                self.first_at = self.first_at or now
                self.last_at = now
                pixels = np.frombuffer(frame.data, dtype=np.uint8).reshape(frame.height, frame.width, 4)
                frame_id = marker.read(np.ascontiguousarray(pixels[:16, :64, :3]))
                if frame_id is not None:
                    if self.first_id is None:
                        self.first_id = frame_id
                    self.marked += 1
                    sent = self.sent_at.get(frame_id)
                    if sent is not None:
                        self.latency_ms.append((now - sent) * 1000.0)
        finally:
            await stream.aclose()

    async def settle(self, quiet: float = 0.7, limit: float = 5.0) -> None:
        """Wait until no frame arrived for ``quiet`` seconds (at most ``limit``)."""
        start = seen_at = time.monotonic()
        seen = -1
        while time.monotonic() - seen_at < quiet and time.monotonic() - start < limit:
            if self.frames != seen:
                seen, seen_at = self.frames, time.monotonic()
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop every reader."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def fps(self) -> float:
        """Frames per second between the first and the last received frame."""
        span = (self.last_at - self.first_at) if self.first_at and self.last_at else 0.0
        return round((self.frames - 1) / span, 2) if span > 0 else 0.0

    def summary(self, sent: int) -> dict[str, Any]:
        """Counts and latency as plain JSON values; ``sent`` is how many frames were captured.

        ``sent_since_first`` counts the frames captured from the first one that came back (by its
        marker id): frames captured while the SDK was still setting up its media path never left
        the client, so they are not counted as lost.
        """
        return {
            "sent": sent,
            "sent_since_first": sent - self.first_id if self.first_id is not None else sent,
            "received": self.frames,
            "recv_fps": self.fps(),
            "per_track": self.per_track,
            "sizes": sorted(self.sizes),
            "marked": self.marked,
            "latency_ms_p50": percentile(self.latency_ms, 0.5),
            "latency_ms_p95": percentile(self.latency_ms, 0.95),
            "timed": self.timed,
            "timing_ms_p50": percentile(self.timing_ms, 0.5),
        }
