"""The emulator's media tracks: the processed output track, an input relay, a synthetic input, an audio sink.

One output frame per input frame, rendered by the session's :class:`~decart_cli.emulator.model.FrameModel`
on the session's single worker thread (frames stay in order, the event loop stays free). aiortc's
receive queue is unbounded, so when the model falls more than :data:`MAX_BACKLOG` frames behind, the
oldest queued input frames are skipped and reported: latency stays bounded instead of growing forever.

In the LiveKit era the model's output is published before or after the client's video arrives, and
again after a restart, so the output track reads from an :class:`InputRelay`: a track that forwards
whichever client track is attached to it at the moment (and waits while none is).
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from decart_cli.emulator.model import FrameModel, RenderState

if TYPE_CHECKING:
    import av
    from aiortc import MediaStreamTrack

    from decart_cli.emulator.livekit.timing import FrameStamps

__all__ = [
    "MAX_BACKLOG",
    "FrameHost",
    "InputRelay",
    "drain",
    "input_relay",
    "output_track",
    "pattern_track",
    "skip_backlog",
]

MAX_BACKLOG: Final = 15  # input frames (~0.5 s at 30 fps) queued behind the model before skipping


class FrameHost(Protocol):
    """What the output track needs from its session."""

    model: FrameModel
    executor: Executor
    render_state: RenderState
    source_size: tuple[int, int] | None  # the size the client publishes (LiveKit era), else None

    def note_input(self, frame: av.VideoFrame) -> None:
        """Called for every input frame, before rendering."""

    def note_output(self, frame: av.VideoFrame) -> None:
        """Called with every output frame before it is returned to the encoder."""

    def note_skipped(self, count: int) -> None:
        """Called when ``count`` queued input frames were skipped."""


def skip_backlog(queue: asyncio.Queue[Any]) -> int:
    """Drop all but the newest queued frame (keeping aiortc's end-of-track ``None``); return how many."""
    skipped = 0
    while queue.qsize() > 1:
        item = queue.get_nowait()
        if item is None:  # end-of-track sentinel: put it back for recv()
            queue.put_nowait(None)
            break
        skipped += 1
    return skipped


def output_track(
    source: MediaStreamTrack | InputRelay, host: FrameHost, *, stamps: FrameStamps | None = None
) -> MediaStreamTrack:
    """A video track that renders one output frame per frame of ``source`` (pts and time base kept).

    With ``stamps`` (LiveKit frame timing), each output frame's ``opaque`` is the capture timestamp
    noted for its input frame, which the output sender writes into a packet trailer.
    """
    from aiortc import MediaStreamTrack

    class OutputTrack(MediaStreamTrack):
        kind = "video"

        async def recv(self) -> av.VideoFrame:
            frame = cast("av.VideoFrame", await source.recv())  # a video track yields video frames
            queue = getattr(source, "_queue", None)  # aiortc's unbounded receive queue
            if isinstance(queue, asyncio.Queue) and queue.qsize() > MAX_BACKLOG:
                host.note_skipped(skip_backlog(queue))
            host.note_input(frame)
            state = host.render_state  # immutable snapshot: an update mid-frame applies to the next one
            loop = asyncio.get_running_loop()
            render = host.model.render
            out: av.VideoFrame = await loop.run_in_executor(host.executor, render, frame, state, host.source_size)
            if out is not frame:
                out.pts, out.time_base = frame.pts, frame.time_base
            if stamps is not None:
                out.opaque = stamps.pop(frame.pts)
            host.note_output(out)
            return out

    return OutputTrack()


class InputRelay(Protocol):
    """A video track that forwards the client track attached last (see :func:`input_relay`)."""

    kind: str

    def attach(self, track: MediaStreamTrack) -> None:
        """Forward ``track`` from now on (replacing any earlier one)."""

    def detach(self) -> None:
        """Forward nothing until the next :meth:`attach` (readers wait)."""

    async def recv(self) -> av.VideoFrame:
        """The next frame of the attached track."""


def input_relay() -> InputRelay:
    """A relay track: ``recv()`` returns frames of the attached client track and waits while none is.

    When the attached track ends (the client unpublished it, its peer closed), readers wait for the
    next :meth:`InputRelay.attach` instead of ending. ``_queue`` exposes the attached aiortc track's
    receive queue, so :func:`output_track` can still skip a backlog.
    """
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError

    class Relay(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self._source: MediaStreamTrack | None = None
            self._attached = asyncio.Event()

        @property
        def _queue(self) -> Any:
            return getattr(self._source, "_queue", None)

        def attach(self, track: MediaStreamTrack) -> None:
            self._source = track
            self._attached.set()

        def detach(self) -> None:
            self._source = None
            self._attached.clear()

        async def recv(self) -> av.VideoFrame:
            while True:
                await self._attached.wait()
                source = self._source
                if source is None:
                    continue
                try:
                    return cast("av.VideoFrame", await source.recv())
                except MediaStreamError:
                    if self._source is source:
                        self.detach()

    return cast(InputRelay, Relay())


def pattern_track(width: int, height: int) -> MediaStreamTrack:
    """A paced 30 fps synthetic camera (moving gradient) for receive-only offers with no client video."""
    import cv2
    import numpy as np
    from aiortc import VideoStreamTrack

    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    bgr = np.stack(np.broadcast_arrays(x, y, (x + y) / 2), axis=-1).astype(np.uint8)
    white = (255, 255, 255)
    cv2.putText(bgr, "decart serve: no input video", (40, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0, white, 2)
    base = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)

    class PatternTrack(VideoStreamTrack):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        async def recv(self) -> av.VideoFrame:
            import av as _av

            pts, time_base = await self.next_timestamp()
            img = base.copy()
            img[:height] = np.roll(base[:height], (self.count * 4) % width, axis=1)  # move the luma only
            frame = _av.VideoFrame.from_ndarray(np.ascontiguousarray(img, dtype=np.uint8), format="yuv420p")
            frame.pts, frame.time_base = pts, time_base
            self.count += 1
            return frame

    return PatternTrack()


async def drain(track: MediaStreamTrack) -> None:
    """Consume ``track`` until it ends (client audio: v2v models return none, open question 4)."""
    from aiortc.mediastreams import MediaStreamError

    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
