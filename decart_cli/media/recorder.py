"""``--record FILE``: write every received frame to a playable video file, or say how many were lost.

``.mp4`` → H.264 (libx264 when this PyAV build has it, else MPEG-4 Part 2), ``.webm`` → VP8.
Frames are encoded on a worker thread: :meth:`Recorder.write` never blocks the event loop, it
appends to a backlog the worker drains. The backlog is bounded by memory
(:data:`BACKLOG_BYTES`, about 12 s of 1088×624 video), not by a frame count: a machine that is
busy for a few seconds delays the encoder, it does not lose frames. Only a backlog over that
bound, an encoder failure or an encoder that stops making progress at shutdown lose frames, and
each is counted in :attr:`Recorder.frames_lost` with the reason in :attr:`Recorder.loss_reason`
(the runner reports both on stderr and in the JSON summary, and fails the run with exit 4).

The encoders are set up to keep up on two busy cores: VP8 in realtime mode, ``cpu-used`` 10, one
thread (libvpx's VP8 threads spin-wait: with the default two threads and both cores busy with
another job it fell to 11–15 frames/s at 1088×624; one thread kept 80), no look-ahead
(``lag-in-frames`` 0: a killed process loses no frame held inside the encoder); libx264
``veryfast``/``zerolatency``. ``scripts/bench_recorder.py`` prints the recorder's frames/s idle and
with every core busy (on this 2-core machine: .webm 84 / 53, .mp4 63 / 45, against 30 needed).

The output size is fixed by the first frame (later frames of another size are scaled to it).
Timestamps are the arrival times in milliseconds (strictly increasing), so the file lasts the
wall-clock time of the stream however irregularly frames arrive, and no frame is dropped to
keep a constant rate. MP4 is written fragmented and every packet is flushed to the OS with a
fragment at least every second; WebM clusters are cut at least every second: a process killed
outright (SIGKILL) leaves a playable file missing about the last second (the fragment or cluster
in progress, plus whatever the backlog held).
"""

from __future__ import annotations

import collections
import os
import tempfile
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decart_cli.errors import MediaError, UsageError

if TYPE_CHECKING:
    import av

__all__ = ["BACKLOG_BYTES", "EXTENSIONS", "Recorder"]

EXTENSIONS = (".mp4", ".webm")
TIME_BASE = Fraction(1, 1000)  # milliseconds: WebM's own unit, fine for MP4
BACKLOG_BYTES = 384 * 1024 * 1024  # ~380 frames of 1088×624 yuv420p, ~12 s at 30 fps
STALL_TIMEOUT = 10.0  # close() gives up when the encoder finishes no frame for this long
PROGRESS_INTERVAL = 0.25  # seconds between close() progress callbacks
FRAGMENT_SECONDS = 1  # MP4 fragment / WebM cluster length bound: what SIGKILL can lose
KEYFRAME_SECONDS = 2


def _pick_codec(suffix: str) -> tuple[str, dict[str, str], int]:
    """``(codec, options, threads)`` for a file suffix (module docstring: why these values)."""
    import av

    if suffix == ".webm":
        options = {"deadline": "realtime", "cpu-used": "10", "lag-in-frames": "0", "b": "2M"}
        return "libvpx", options, 1
    if "libx264" in av.codecs_available:
        return "libx264", {"preset": "veryfast", "tune": "zerolatency", "crf": "23"}, 0
    return "mpeg4", {"qscale": "4"}, 0


def _frame_bytes(frame: Any) -> int:
    return int(frame.width) * int(frame.height) * 3 // 2 or 1


class Recorder:
    """Encodes ``av.VideoFrame`` objects into ``path``. Always :meth:`close` it.

    Args:
        path: ``.mp4`` or ``.webm`` file (created / overwritten at the first frame).
        fps: the stream's nominal frame rate (encoder rate control, keyframe interval).
        backlog_bytes: frames waiting for the encoder may hold at most this much memory.

    Attributes:
        frames_written: frames encoded into the file.
        frames_lost: frames given to :meth:`write` that will never be in the file.
        loss_reason: why frames were lost (the first reason), ``None`` when none were.
        error: the encoder / disk failure, if any (frames after it are lost too).

    Raises:
        UsageError: bad extension or unwritable directory (see :meth:`check_path`).
    """

    def __init__(self, path: Path | str, fps: int = 30, *, backlog_bytes: int = BACKLOG_BYTES) -> None:
        self.path = self.check_path(Path(path))
        self.fps = int(fps)
        self.frames_written = 0
        self.frames_lost = 0
        self.loss_reason: str | None = None
        self.error: MediaError | None = None
        self.codec_name, self._options, self._threads = _pick_codec(self.path.suffix.lower())
        self._backlog_limit = backlog_bytes
        self._backlog: collections.deque[tuple[Any, int]] = collections.deque()
        self._backlog_size = 0
        self._cond = threading.Condition()
        self._t0: float | None = None
        self._last_pts = -1
        self._accepting = True  # False once the caller closed the recorder
        self._closing = False  # the worker finishes the backlog (or drops it when abandoned) and stops
        self._closed = False
        self._close_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="decart-recorder", daemon=True)
        self._thread.start()

    @staticmethod
    def check_path(path: Path) -> Path:
        """Validate a recording path before connecting.

        Raises:
            UsageError: the path is a directory, its extension is not ``.mp4``/``.webm``, or its
                directory does not exist or is not writable.
        """
        path = Path(path).expanduser()
        if path.is_dir():
            raise UsageError(
                f"--record {str(path)!r} is a directory", hint="give a file name ending in .mp4 or .webm inside it"
            )
        if path.suffix.lower() not in EXTENSIONS:
            raise UsageError(
                f"--record {str(path)!r}: unsupported extension {path.suffix or '(none)'!r}",
                hint="use a .mp4 (H.264) or .webm (VP8) file name",
            )
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

    # ----------------------------------------------------------------- the producer side (event loop)

    def write(self, frame: av.VideoFrame, t: float | None = None) -> bool:
        """Queue ``frame`` (arrived at ``t``, default now on ``perf_counter``); never blocks.

        Returns:
            False when the frame will not be recorded: it is then counted in :attr:`frames_lost`
            (backlog over its memory bound, encoder failed) unless the recorder was already closed.
        """
        if not self._accepting:
            return False
        if self.error is not None:
            self._lose(1, self.loss_reason or f"the encoder failed: {self.error.message}")
            return False
        now = time.perf_counter() if t is None else t
        if self._t0 is None:
            self._t0 = now
        pts = max(self._last_pts + 1, round((now - self._t0) / TIME_BASE))
        size = _frame_bytes(frame)
        with self._cond:
            if not self._accepting:
                return False
            if self._closing:  # abandoned (encoder failed or stalled): nothing more gets in the file
                self._lose(1, self.loss_reason or "the recording was abandoned")
                return False
            if self._backlog and self._backlog_size + size > self._backlog_limit:
                behind = len(self._backlog) / max(1, self.fps)
                self._lose(1, f"the encoder fell {behind:.0f} s behind the stream (backlog over its memory bound)")
                return False
            self._backlog.append((frame, pts))
            self._backlog_size += size
            self._cond.notify()
        self._last_pts = pts
        return True

    def _lose(self, count: int, reason: str) -> None:
        with self._count_lock:  # the loop thread and the worker both count
            self.frames_lost += count
            if self.loss_reason is None:
                self.loss_reason = reason

    @property
    def queued(self) -> int:
        """Frames written but not yet encoded."""
        return len(self._backlog)

    # ----------------------------------------------------------------- closing

    def close(self, progress: Callable[[int], None] | None = None, *, stall_timeout: float = STALL_TIMEOUT) -> None:
        """Encode every queued frame, flush the encoder and finalise the file. Idempotent.

        Waits as long as the encoder keeps making progress (no fixed deadline: a recording is not
        cut short because the machine is busy); gives up when no frame was encoded for
        ``stall_timeout`` seconds, counting what was left in :attr:`frames_lost`. Safe on the
        shutdown path after SIGINT/SIGTERM (no event loop needed).

        Args:
            progress: called with the number of queued frames about every 0.25 s while waiting
                (from the calling thread).
            stall_timeout: seconds without progress after which the rest is abandoned.
        """
        with self._close_lock:
            if not self._accepting:
                return
            self._accepting = False
        with self._cond:
            self._closing = True
            self._cond.notify()
        last_count, last_change = -1, time.monotonic()
        while self._thread.is_alive():
            self._thread.join(PROGRESS_INTERVAL)
            if not self._thread.is_alive():
                break
            done = self.frames_written
            if done != last_count:
                last_count, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > stall_timeout:
                self.abandon("the encoder stopped making progress while finishing the file")
                break
            if progress is not None:
                progress(self.queued)
        self._closed = True

    def abandon(self, reason: str) -> int:
        """Give up on the queued frames (counted as lost with ``reason``); the worker stops after
        the frame in hand. Safe from any thread. Returns how many frames were abandoned."""
        with self._cond:
            count = len(self._backlog)
            self._backlog.clear()
            self._backlog_size = 0
            self._closing = True
            self._cond.notify()
        if count:
            self._lose(count, reason)
        return count

    @property
    def closed(self) -> bool:
        """True after :meth:`close` returned."""
        return self._closed

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- worker thread

    def _next(self) -> tuple[Any, int] | None:
        """The next queued frame; ``None`` once closing and drained (or abandoned)."""
        with self._cond:
            while not self._backlog:
                if self._closing:
                    return None
                self._cond.wait()
            frame, pts = self._backlog.popleft()
            self._backlog_size -= _frame_bytes(frame)
            return frame, pts

    def _work(self) -> None:
        import av

        container: Any = None
        stream: Any = None
        try:
            while (item := self._next()) is not None:
                frame, pts = item
                if container is None:
                    container, stream = self._open(av, frame)
                if frame.width != stream.width or frame.height != stream.height or frame.format.name != "yuv420p":
                    frame = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                # The frame is the decoder's, handed over by the runner and no longer used by it;
                # pts is read by the encoder when the frame is sent, before the next one is set.
                frame.pts = pts
                frame.time_base = TIME_BASE
                for packet in stream.encode(frame):
                    container.mux(packet)
                self.frames_written += 1
        except Exception as exc:  # encoder / disk errors: keep the stream running, report once
            self.error = MediaError(f"recording to {str(self.path)!r} failed: {exc}")
            reason = f"the encoder failed: {exc}"
            self._lose(1, reason)  # the frame in hand
            self.abandon(reason)
        finally:
            if container is not None:
                try:
                    if self.error is None:
                        for packet in stream.encode(None):
                            container.mux(packet)
                except Exception as exc:
                    self.error = self.error or MediaError(f"finalising {str(self.path)!r} failed: {exc}")
                finally:
                    container.close()

    def _open(self, av: Any, frame: Any) -> tuple[Any, Any]:
        # yuv420p needs even dimensions; the models' sizes are even, odd ones lose a pixel.
        width, height = frame.width - frame.width % 2, frame.height - frame.height % 2
        # flush_packets: hand every packet to the OS at once; short fragments / clusters: a killed
        # process loses at most the one in progress.
        options = {"flush_packets": "1"}
        if self.path.suffix.lower() == ".mp4":
            options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
            options["frag_duration"] = str(FRAGMENT_SECONDS * 1_000_000)
        else:
            options["cluster_time_limit"] = str(FRAGMENT_SECONDS * 1000)
        try:
            container = av.open(str(self.path), mode="w", options=options)
        except OSError as exc:
            raise MediaError(f"cannot create {str(self.path)!r}: {exc}") from exc
        stream = container.add_stream(self.codec_name, rate=self.fps, options=self._options)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        if self._threads:
            stream.codec_context.thread_count = self._threads
        stream.codec_context.gop_size = KEYFRAME_SECONDS * self.fps
        return container, stream
