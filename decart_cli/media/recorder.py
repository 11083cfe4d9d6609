"""``--record FILE``: write the received frames to a playable video file.

``.mp4`` → H.264 (libx264 when this PyAV build has it, else MPEG-4 Part 2), ``.webm`` → VP8.
Frames are encoded on a worker thread behind a bounded queue: :meth:`Recorder.write` never blocks
the event loop; when the queue is full (the encoder is slower than the stream) the new frame is
dropped and counted in ``frames_dropped``. The output size is fixed by the first frame (later
frames of another size are scaled to it). Timestamps come from the arrival time in units of
``1/fps`` (never less than one unit apart), so the file's duration matches the wall-clock
duration even when frames arrive slower than ``fps``; frames arriving faster than ``fps`` for
long enough to put the file's clock 1 s ahead of wall time are dropped (``frames_dropped``). MP4 is written fragmented and every packet
is flushed to the OS, with a keyframe every 2 s: a process killed outright (SIGKILL, power loss
aside) leaves a playable file missing at most the last ~2 s (the MP4 fragment / WebM cluster in
progress).
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decart_cli.errors import MediaError, UsageError

if TYPE_CHECKING:
    import av

__all__ = ["EXTENSIONS", "Recorder"]

EXTENSIONS = (".mp4", ".webm")
QUEUE_FRAMES = 60  # about 2 s at 30 fps between the stream and the encoder
CLOSE_TIMEOUT = 5.0  # close() bounds flushing the queue and finalising the file to this long
_STOP = object()


def _pick_codec(suffix: str) -> tuple[str, dict[str, str]]:
    import av

    available = av.codecs_available
    if suffix == ".webm":
        return "libvpx", {"deadline": "realtime", "cpu-used": "8", "b": "2M"}
    if "libx264" in available:
        return "libx264", {"preset": "veryfast", "tune": "zerolatency", "crf": "23"}
    return "mpeg4", {"qscale": "4"}


class Recorder:
    """Encodes ``av.VideoFrame`` objects into ``path``. Always :meth:`close` it.

    Args:
        path: ``.mp4`` or ``.webm`` file (created / overwritten).
        fps: time base of the file (the model's fps).

    Raises:
        UsageError: bad extension or unwritable directory (see :meth:`check_path`).
    """

    def __init__(self, path: Path | str, fps: int = 30) -> None:
        self.path = self.check_path(Path(path))
        self.fps = int(fps)
        self.frames_written = 0
        self.frames_dropped = 0
        self.error: MediaError | None = None
        self.codec_name, self._options = _pick_codec(self.path.suffix.lower())
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._t0: float | None = None
        self._last_pts = -1
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="decart-recorder", daemon=True)
        self._thread.start()

    @staticmethod
    def check_path(path: Path) -> Path:
        """Validate a recording path before connecting.

        Raises:
            UsageError: extension not ``.mp4``/``.webm``, the path is a directory, or its
                directory does not exist or is not writable.
        """
        path = Path(path).expanduser()
        if path.suffix.lower() not in EXTENSIONS:
            raise UsageError(
                f"--record {str(path)!r}: unsupported extension {path.suffix or '(none)'!r}",
                hint="use a .mp4 (H.264) or .webm (VP8) file name",
            )
        if path.is_dir():
            raise UsageError(f"--record {str(path)!r} is a directory", hint="give a file name ending in .mp4 or .webm")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"--record {str(path)!r}: directory {str(parent)!r} does not exist")
        if path.exists() and not os.access(path, os.W_OK):
            raise UsageError(f"--record {str(path)!r}: file is not writable", hint="choose another file name")
        try:
            # os.access() lies for root and read-only mounts: actually create (and remove) a file.
            with tempfile.NamedTemporaryFile(dir=parent, prefix=".decart-probe-"):
                pass
        except OSError as exc:
            raise UsageError(
                f"--record {str(path)!r}: cannot write in {str(parent)!r} ({exc.strerror})",
                hint="choose a writable directory",
            ) from exc
        return path

    def write(self, frame: av.VideoFrame, t: float | None = None) -> bool:
        """Queue ``frame`` (arrived at ``t``, default now on ``perf_counter``); never blocks.

        Returns:
            False when the frame was dropped (queue full, recorder closed or failed).
        """
        if self._closed or self.error is not None:
            return False
        now = time.perf_counter() if t is None else t
        if self._t0 is None:
            self._t0 = now
        ideal = round((now - self._t0) * self.fps)
        if ideal < self._last_pts - self.fps:
            # Sustained input faster than fps would run the file's clock ahead of wall time:
            # beyond 1 s ahead, drop instead.
            self.frames_dropped += 1
            return False
        pts = max(self._last_pts + 1, ideal)
        try:
            self._queue.put_nowait((frame, pts))
        except queue.Full:
            self.frames_dropped += 1
            return False
        self._last_pts = pts
        return True

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Flush queued frames and the encoder, finalise the file. Idempotent, bounded by ``timeout``.

        Safe on the shutdown path after SIGINT/SIGTERM (no event loop needed). If the worker cannot
        finish in time the file is left as far as it got (fragmented MP4 / WebM stay playable).
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + timeout
        while True:  # the sentinel must get in even when the queue is full
            try:
                self._queue.put(_STOP, timeout=0.05)
                break
            except queue.Full:
                if time.monotonic() > deadline or not self._thread.is_alive():
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def closed(self) -> bool:
        """True after :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- worker thread

    def _work(self) -> None:
        import av

        container: Any = None
        stream: Any = None
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                frame, pts = item
                if container is None:
                    container, stream = self._open(av, frame)
                if frame.width != stream.width or frame.height != stream.height or frame.format.name != "yuv420p":
                    frame = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                else:
                    # reformat() would return the caller's own frame: copy it rather than set pts
                    # on an object the event loop may still be using.
                    frame = av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
                frame.pts = pts
                frame.time_base = Fraction(1, self.fps)
                for packet in stream.encode(frame):
                    container.mux(packet)
                self.frames_written += 1
        except Exception as exc:  # encoder / disk errors: keep the stream running, report once
            self.error = MediaError(f"recording to {str(self.path)!r} failed: {exc}")
            self._drain()
        finally:
            if container is not None:
                try:
                    for packet in stream.encode(None):
                        container.mux(packet)
                except Exception as exc:
                    self.error = self.error or MediaError(f"finalising {str(self.path)!r} failed: {exc}")
                finally:
                    container.close()

    def _open(self, av: Any, frame: Any) -> tuple[Any, Any]:
        # yuv420p needs even dimensions; the models' sizes are even, odd ones lose a pixel.
        width, height = frame.width - frame.width % 2, frame.height - frame.height % 2
        # flush_packets: hand every packet to the OS at once, so a killed process loses at most
        # the MP4 fragment / WebM cluster in progress.
        options = {"flush_packets": "1"}
        if self.path.suffix.lower() == ".mp4":
            options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
        try:
            container = av.open(str(self.path), mode="w", options=options)
        except OSError as exc:
            raise MediaError(f"cannot create {str(self.path)!r}: {exc}") from exc
        stream = container.add_stream(self.codec_name, rate=self.fps, options=self._options)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, self.fps)
        stream.codec_context.time_base = Fraction(1, self.fps)
        # A keyframe (so an MP4 fragment) every 2 s bounds what an outright kill can lose.
        stream.codec_context.gop_size = 2 * self.fps
        return container, stream

    def _drain(self) -> None:
        while True:
            try:
                if self._queue.get_nowait() is _STOP:
                    return
            except queue.Empty:
                return
