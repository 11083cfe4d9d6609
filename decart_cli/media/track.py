"""Outgoing frames, paced: :class:`FramePacer` for both transports, :class:`SourceTrack` for aiortc.

:class:`FramePacer` is the one pacing rule: it hands out the newest frame the source produced since
the last one (older ones were already replaced and counted as dropped), as soon as it is there
for a live source, on a ``1/fps`` grid for a file. Frames are never duplicated to fill a slow source (the server
resamples, client-behaviour.md A). The LiveKit transport iterates it and hands each frame's I420
array to ``VideoSource.capture_frame`` as it is; :class:`SourceTrack` (the direct transport's
aiortc track) wraps the same array in an ``av.VideoFrame`` (no copy), with pts from the capture
time on ``perf_counter`` in 90 kHz units.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from fractions import Fraction
from typing import TYPE_CHECKING

from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from decart_cli.errors import MediaError

if TYPE_CHECKING:
    import av

    from decart_cli.media.frame_source import FrameSource, SlotItem

__all__ = ["CLOCK_RATE", "MIN_SPACING", "TIME_BASE", "FramePacer", "SourceTrack", "to_video_frame"]

CLOCK_RATE = 90_000  # RTP video clock (RFC 3551 §5)
TIME_BASE = Fraction(1, CLOCK_RATE)
_WAKE_POLL = 0.25  # re-check finished/stall at least this often while waiting for a frame
_STALL_GRACE = 1.0  # the producer's own retry loop should report a stall first
MIN_SPACING = 0.6  # of an interval: the least gap between two frames of a self-paced source (FpsGate's slack)


def to_video_frame(item: SlotItem) -> av.VideoFrame:
    """An ``av.VideoFrame`` (yuv420p) of ``item``, for aiortc: over the same memory as its I420 array.

    No copy (``from_numpy_buffer``; ``from_ndarray`` copied 1 MB per 1088×624 frame, ~0.6 ms with
    the GIL held): the array is never written after it was published, and the frame keeps it alive.
    """
    import av

    if item.i420 is not None:
        return av.VideoFrame.from_numpy_buffer(item.i420, format="yuv420p")
    # Odd sizes cannot be I420 planes of whole pixels: swscale from the BGR picture.
    return av.VideoFrame.from_ndarray(item.bgr, format="bgr24").reformat(format="yuv420p")


class FramePacer:
    """The newest frame of ``source``, at most ``fps`` of them per second.

    A self-paced source (a camera, the test pattern: ``source.self_paced``) already produces in
    real time at no more than ``fps`` (its :class:`~decart_cli.core.negotiate.FpsGate`): each new
    frame is handed out as soon as it is there, provided :data:`MIN_SPACING` of an interval passed
    since the previous one, so a frame never waits for a slot of a second clock (a fixed grid
    made each frame wait a constant 0–33 ms, half a frame on average, before the encoder). A
    file is read as fast as it is taken, so for it the pacer keeps a fixed ``1/fps`` grid.

    Iterate it (``async for item in pacer``) or call :meth:`next`. Each item handed out is counted
    as sent (``source.note_sent``). Iteration ends when the source finishes or :meth:`stop` is
    called. For a camera, if no frame arrives for ``stall_timeout + 1`` s (``read()`` hanging), the
    source is failed with a :class:`~decart_cli.errors.MediaError`.
    """

    def __init__(self, source: FrameSource) -> None:
        self._source = source
        self._interval = 1.0 / source.fps
        self._last_seq = 0
        self._last_emit: float | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    @property
    def source(self) -> FrameSource:
        """The source this pacer reads."""
        return self._source

    def _on_frame(self) -> None:
        # Called on the producer thread: hop to the loop; the loop may already be closed at exit.
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def stop(self) -> None:
        """End the iteration (on the loop); the source keeps running."""
        self._stopped = True
        if self._loop is not None:
            self._source.remove_listener(self._on_frame)
        if self._wake is not None:
            self._wake.set()

    def __aiter__(self) -> FramePacer:
        return self

    async def __anext__(self) -> SlotItem:
        item = await self.next()
        if item is None:
            raise StopAsyncIteration
        return item

    async def next(self) -> SlotItem | None:
        """The next frame, paced; ``None`` once the source finished or the pacer was stopped."""
        if self._stopped:
            return None
        if self._wake is None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._source.add_listener(self._on_frame)
        src = self._source
        if self._last_emit is not None:
            spacing = self._interval * (MIN_SPACING if src.self_paced else 1.0)
            delay = self._last_emit + spacing - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        deadline = time.perf_counter() + src.stall_timeout + _STALL_GRACE
        while True:
            self._wake.clear()
            item = src.take_newer(self._last_seq)
            if item is not None:
                break
            if src.finished or self._stopped:
                self.stop()
                return None
            remaining = deadline - time.perf_counter() if src.hang_watchdog else _WAKE_POLL
            if remaining <= 0:
                src.fail(
                    MediaError(
                        f"{src.info.kind} {src.info.name!r} delivered no frame for {src.stall_timeout + _STALL_GRACE:g} s",
                        hint="check the device is connected and not used by another application",
                    )
                )
                self.stop()
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, _WAKE_POLL)):
                    await self._wake.wait()
        now = time.perf_counter()
        self._last_seq = item.seq
        if src.self_paced or self._last_emit is None or now - self._last_emit > 2 * self._interval:
            self._last_emit = now  # (a file after a long wait: re-anchor instead of bursting to catch up)
        else:
            self._last_emit += self._interval  # a file: keep slots on a grid
        src.note_sent(item)
        return item


class SourceTrack(VideoStreamTrack):
    """An aiortc video track reading a :class:`FrameSource` through a :class:`FramePacer`.

    When the source finishes (end of file, camera failure, close) the track stops and ``recv``
    raises ``MediaStreamError``, which ends aiortc's sender loop.
    """

    kind = "video"

    def __init__(self, source: FrameSource) -> None:
        super().__init__()
        self._source = source
        self._pacer = FramePacer(source)
        self._t0: float | None = None
        self._last_pts = -1
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def source(self) -> FrameSource:
        """The source this track reads."""
        return self._source

    def stop(self) -> None:
        """Stop the track (the source keeps running; close the source separately)."""
        self._pacer.stop()
        super().stop()

    def stop_threadsafe(self) -> None:
        """Stop the track from any thread (``FrameSource.close`` may run off the loop)."""
        loop = self._loop
        if loop is None:  # recv() never ran: no loop to hop to, nothing waits on the track
            self.stop()
            return
        if loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.stop()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.stop)

    async def recv(self) -> av.VideoFrame:
        """The next frame, as :class:`FramePacer` hands it out (the newest; a file on a ``1/fps`` grid).

        Raises:
            MediaStreamError: the track was stopped or the source finished.
        """
        if self.readyState != "live":
            raise MediaStreamError
        self._loop = asyncio.get_running_loop()
        item = await self._pacer.next()
        if item is None or self.readyState != "live":
            self.stop()
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = item.captured
        pts = max(self._last_pts + 1, round((item.captured - self._t0) * CLOCK_RATE))
        self._last_pts = pts
        frame = to_video_frame(item)
        frame.pts = pts
        frame.time_base = TIME_BASE
        return frame
