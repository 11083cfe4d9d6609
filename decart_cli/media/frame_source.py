"""The producer half shared by every source: a capture thread feeding a one-slot buffer.

A subclass implements :meth:`FrameSource._run` (blocking; runs on its own daemon thread) and
hands each raw BGR frame to :meth:`FrameSource._publish`, which

1. drops it when it arrives faster than the model's fps (:class:`~decart_cli.core.negotiate.FpsGate`),
2. flips it when mirroring (before crop/resize and before encoding, as the seed says),
3. centre-crops to the model's aspect and resizes to exactly the model size (never stretches),
4. converts it to I420 with OpenCV (one conversion, kept as an array: the LiveKit transport hands
   that array to the SDK as it is, and the aiortc track wraps the same memory in an
   ``av.VideoFrame``) and optionally stamps the latency marker into it,
5. puts it in the slot, replacing any frame no consumer has taken yet (counted as dropped).

A decoded file frame that already is I420 at the model size (and is not mirrored) skips 1–4's
conversions: :meth:`FrameSource._publish_i420` stamps and slots the decoder's planes as they are.

Consumers (:class:`~decart_cli.media.track.FramePacer`, the aiortc track) read the slot without
consuming it (each remembers the last sequence number it sent), so a second consumer for a
reconnect can share the source.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decart_cli.core.negotiate import FpsGate
from decart_cli.errors import DecartError, MediaError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from decart_cli.media.source import SourceInfo
    from decart_cli.media.track import FramePacer, SourceTrack

    Bgr = npt.NDArray[np.uint8]

__all__ = ["FrameSource", "SlotItem"]

# close() waits this long for the producer thread: a normal read() returns within one frame
# period; a hung one is abandoned (daemon thread) and the device released under it.
CLOSE_JOIN_TIMEOUT = 1.0


@dataclass(frozen=True)
class SlotItem:
    """One adapted frame waiting to be sent.

    Attributes:
        seq: 1, 2, 3, … in production order.
        i420: the picture as one contiguous I420 array (``height * 3 // 2`` rows of ``width``
            bytes: Y, then U, then V), or ``None`` for odd sizes (see ``bgr``).
        bgr: the same picture as a BGR array (for a local preview, and odd sizes; the marker is
            drawn here only when there is no I420 array), or ``None`` when the source delivered
            I420 at the model size (a decoded file frame: ``_publish_i420``).
        captured: ``time.perf_counter()`` when the raw frame was captured.
        marker_id: the stamped latency-marker id, or ``None``.
    """

    seq: int
    i420: Any
    bgr: Any
    captured: float
    marker_id: int | None


class FrameSource:
    """A started source of model-size frames. Build with ``open_source``; always :meth:`close`.

    Attributes:
        info: how the source was set up.
        frames_captured: raw frames obtained from the device / file / generator.
        frames_dropped: frames discarded (faster than fps, or replaced in the slot before sending).
        frames_over_fps: the part of ``frames_dropped`` that arrived faster than fps.
        frames_sent: frames handed to the encoder by this source's tracks.
        marker_sent: when ``stamp_marker``: marker id → ``perf_counter()`` when the frame that went
            to the encoder was captured (last 4096 ids; the id wraps).
    """

    #: Fail the source when no frame arrives for ``stall_timeout + 1`` s while a track waits.
    #: Only devices need it (a hung ``read()``); a file may legitimately hold one frame for long.
    hang_watchdog = False
    #: The source produces frames in real time at (at most) ``fps`` by itself (a camera, the test
    #: pattern): the pacer sends each one as soon as it is there. A file waits for its consumer
    #: instead (``_wait_taken``), so the pacer's fixed grid sets its pace.
    self_paced = False

    def __init__(self, info: SourceInfo, *, fps: float, stall_timeout: float, stamp_marker: bool = False) -> None:
        self.info = info
        self.fps = float(fps)
        self.width = int(info.sent[0])
        self.height = int(info.sent[1])
        self.stall_timeout = stall_timeout
        self.frames_captured = 0
        self.frames_dropped = 0
        self.frames_sent = 0
        self.frames_over_fps = 0
        self.marker_sent: dict[int, float] = {}
        self._stamp_marker = stamp_marker
        self._mirrored = info.mirrored
        self._gate = FpsGate(self.fps)
        self._lock = threading.Lock()
        self._item: SlotItem | None = None
        self._item_taken = True
        self._taken = threading.Event()  # set when a consumer takes the item in the slot
        self._seq = 0
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._done = threading.Event()
        self._error: DecartError | None = None
        self._thread: threading.Thread | None = None
        self._track: SourceTrack | None = None
        self._tracks: list[SourceTrack] = []
        self._closed = False

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the producer thread (``open_source`` does this).

        OpenCV then runs each call on its calling thread (a process-wide setting, no thread pool): its
        parallel backend busy-waits (``sched_yield``) on two cores, and a 1088×624 BGR→I420
        conversion took 1.4 ms of CPU with two threads against 0.6 ms with one, in the same wall time.
        """
        import cv2

        cv2.setNumThreads(1)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_guarded, name=f"decart-{self.info.kind}", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop producing and release the device/file. Idempotent; waits at most ~1 s."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for track in list(self._tracks):
            track.stop_threadsafe()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(CLOSE_JOIN_TIMEOUT)
        self._release()
        self._done.set()
        self._notify()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def finished(self) -> bool:
        """True once the source will produce no more frames (end of file, failure or close)."""
        return self._done.is_set()

    @property
    def error(self) -> DecartError | None:
        """Why the source stopped, when it failed (``None`` for a clean end of file or close)."""
        return self._error

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def fail(self, error: DecartError) -> None:
        """Mark the source failed (first error wins) and finished; wakes waiting tracks."""
        with self._lock:
            if self._error is None and not self._closed:
                self._error = error
        self._done.set()
        self._notify()

    def finish(self) -> None:
        """Mark a clean end (file ended without ``--loop``)."""
        self._done.set()
        self._notify()

    async def wait_finished(self) -> None:
        """Return once :attr:`finished` is true (woken from the producer thread; cancellable)."""
        import asyncio

        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def wake() -> None:
            if self._done.is_set() and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(done.set)

        self.add_listener(wake)
        try:
            if not self._done.is_set():
                await done.wait()
        finally:
            self.remove_listener(wake)

    # ----------------------------------------------------------------- consumer side

    @property
    def track(self) -> SourceTrack:
        """The aiortc video track for this source (created once; see :meth:`new_track`)."""
        if self._track is None:
            self._track = self.new_track()
        return self._track

    def new_track(self) -> SourceTrack:
        """A fresh track over the same frames (e.g. after a reconnect stopped the old one)."""
        from decart_cli.media.track import SourceTrack

        track = SourceTrack(self)
        self._tracks.append(track)
        return track

    def frames(self) -> FramePacer:
        """The newest frames paced at fps, for the LiveKit transport (one iterator per consumer)."""
        from decart_cli.media.track import FramePacer

        return FramePacer(self)

    def latest_frame(self) -> Bgr | None:
        """The newest outgoing picture (mirrored as sent) as BGR, for a local preview."""
        with self._lock:
            item = self._item
        if item is None or item.bgr is not None:
            return None if item is None else item.bgr
        import cv2

        return cv2.cvtColor(item.i420, cv2.COLOR_YUV2BGR_I420)  # type: ignore[no-any-return]

    def take_newer(self, after_seq: int) -> SlotItem | None:
        """The newest item with ``seq > after_seq``, or ``None``; marks it taken."""
        with self._lock:
            item = self._item
            if item is None or item.seq <= after_seq:
                return None
            self._item_taken = True
            self._taken.set()
            return item

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from the producer thread) whenever a frame is published or the source ends."""
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Undo :meth:`add_listener`; unknown callbacks are ignored."""
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def note_sent(self, item: SlotItem) -> None:
        """Count a frame handed to the encoder (called by the track); remember when its marker was captured.

        The latency is camera-to-screen (latency-marker.md: "captured, for a camera-to-screen
        figure"): the wait between capture and the encoder is part of what a user sees.
        """
        self.frames_sent += 1
        if item.marker_id is not None:
            self.marker_sent[item.marker_id] = item.captured

    # ----------------------------------------------------------------- producer side

    def _run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _release(self) -> None:
        """Free the device/file (called by :meth:`close` after the thread stopped or timed out)."""

    def _run_guarded(self) -> None:
        try:
            self._run()
        except DecartError as exc:
            self.fail(exc)
        except Exception as exc:  # a bug or an odd backend error must still end the stream cleanly
            self.fail(MediaError(f"{self.info.kind} source {self.info.name!r} failed: {exc}"))
        finally:
            # The producer thread is the only source of frames: once it exits, nothing more comes.
            self._done.set()
            self._notify()

    def _admit(self, t: float) -> bool:
        """Count a captured frame; False (counted as dropped) when it arrives faster than fps."""
        self.frames_captured += 1
        if self._gate.accept(t):
            return True
        self.frames_dropped += 1
        self.frames_over_fps += 1
        return False

    def _publish(self, raw: Bgr, t: float) -> None:
        """Adapt an admitted raw BGR frame and make it the newest in the slot.

        One colour conversion per frame (BGR → I420, OpenCV on this thread, single-threaded: see
        :meth:`start`); the marker goes into the I420 picture (luma blocks, neutral chroma), so
        the caller's BGR buffer is never copied to be drawn on.
        """
        import cv2

        from decart_cli.media.adapt import adapt

        out = adapt(raw, self.width, self.height, mirror=self._mirrored)
        marker_id = self._seq & 0xFFF if self._stamp_marker else None
        # OpenCV's BGR→I420 (BT.601 limited range, like swscale's default) is ~5× faster than
        # VideoFrame.reformat; odd sizes cannot be I420, so the aiortc track swscales those.
        i420: Bgr | None = None
        if out.shape[0] % 2 == 0 and out.shape[1] % 2 == 0:
            i420 = cv2.cvtColor(out, cv2.COLOR_BGR2YUV_I420)  # type: ignore[assignment]
        if marker_id is not None:
            from decart_cli.media import marker

            if i420 is not None:
                marker.stamp_i420(i420, marker_id)
            else:
                if out is raw:
                    out = out.copy()  # never draw into the caller's buffer
                marker.stamp(out, marker_id)
        self._put(SlotItem(self._seq + 1, i420, out, t, marker_id))

    def _publish_i420(self, i420: Bgr, t: float) -> None:
        """Make an admitted picture that already is I420 at the model size, unmirrored, the newest in the slot.

        ``i420`` is a contiguous array this source owns (``height * 3 // 2`` rows of ``width``
        bytes); the marker is stamped into it. No colour conversion: a decoded file frame at the
        model size skips the round trip through BGR (``_publish`` would convert it twice).
        """
        marker_id = self._seq & 0xFFF if self._stamp_marker else None
        if marker_id is not None:
            from decart_cli.media import marker

            marker.stamp_i420(i420, marker_id)
        self._put(SlotItem(self._seq + 1, i420, None, t, marker_id))

    def _put(self, item: SlotItem) -> None:
        """Make ``item`` (numbered ``seq + 1``) the newest in the slot, replacing one nobody took."""
        with self._lock:
            self._seq = item.seq
            if not self._item_taken:
                self.frames_dropped += 1
            self._item = item
            self._item_taken = False
            self._taken.clear()
        self._notify()

    def _wait_taken(self) -> bool:
        """Block the producer until a consumer took the newest item (files play every frame, at the
        consumer's pace, instead of replacing frames nobody took). False when :meth:`close` interrupted it."""
        while not self._taken.wait(0.1):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()

    def _sleep(self, seconds: float) -> bool:
        """Sleep on the producer thread; False when :meth:`close` interrupted it."""
        return not self._stop.wait(max(0.0, seconds))
