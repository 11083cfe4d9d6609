"""``--input FILE [--loop]``: a video file as the camera.

Decoded with PyAV on the source's thread, played at the file's own frame rate (from its
timestamps) capped at the model's fps (extra frames dropped by the gate), adapted to the model size
by the same centre-crop + resize as a camera. At the end the file restarts with ``--loop``;
without it the source finishes cleanly (``finished`` true, ``error`` None).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av

from decart_cli.core.negotiate import Mode, mode_note
from decart_cli.errors import MediaError
from decart_cli.media.frame_source import FrameSource

__all__ = ["FileSource", "probe"]

_AV_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, ValueError, StopIteration)
_MAX_CATCHUP = 0.5  # behind schedule by more than this (slow decode): re-anchor the clock


def _open_video(path: Path) -> tuple[Any, Any]:
    try:
        container = av.open(str(path))
    except _AV_ERRORS as exc:
        raise MediaError(
            f"--input {str(path)!r} is not a readable video: {exc}",
            hint="give a video file PyAV/FFmpeg can decode (mp4, webm, mov, …)",
        ) from exc
    if not container.streams.video:
        container.close()
        raise MediaError(f"--input {str(path)!r} has no video stream", hint="give a video file, not audio or an image")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def probe(path: Path) -> tuple[int, int, float]:
    """``(width, height, fps)`` of the first video stream, decoding one frame to prove it is readable.

    Raises:
        MediaError: not a readable video.
    """
    container, stream = _open_video(path)
    try:
        first = next(container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return first.width, first.height, float(rate) if rate else 0.0
    except _AV_ERRORS as exc:
        raise MediaError(f"--input {str(path)!r}: no decodable video frame ({exc or 'empty'})") from exc
    finally:
        container.close()


class FileSource(FrameSource):
    """Frames from a video file, decoded and paced on a daemon thread."""

    _path: Path
    _loop_file: bool
    _file_fps: float
    _container: Any = None

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        loop: bool,
        width: int,
        height: int,
        fps: float,
        mirrored: bool = False,
        stamp_marker: bool = False,
    ) -> FileSource:
        """Probe ``path`` and start playing it.

        Raises:
            MediaError: the file is not a readable video (naming it).
        """
        from decart_cli.media.source import SourceInfo

        fw, fh, file_fps = probe(path)
        file_fps = file_fps or float(fps)
        asked = Mode(width, height, float(fps))
        device = Mode(fw, fh, file_fps)
        sent = Mode(width, height, min(file_fps, float(fps)))
        note = mode_note(asked, device, sent).replace("camera", "file")
        info = SourceInfo(
            kind="file",
            name=path.name,
            facing=None,
            asked=asked.as_tuple(),
            device=device.as_tuple(),
            sent=sent.as_tuple(),
            mirrored=mirrored,
            mode_note=note + ("; looping" if loop else ""),
        )
        src = cls(info, fps=fps, stall_timeout=3.0, stamp_marker=stamp_marker)
        src._path, src._loop_file, src._file_fps = path, loop, file_fps
        src.start()
        return src

    def _run(self) -> None:
        while not self._stop.is_set():
            played = self._play_once()
            if self._stop.is_set():
                return
            if not self._loop_file:
                self.finish()
                return
            if played == 0:
                raise MediaError(f"--input {str(self._path)!r}: no decodable frame on replay")

    def _play_once(self) -> int:
        """Decode and publish the whole file once, paced by its timestamps. Returns frames decoded."""
        container, stream = _open_video(self._path)
        self._container = container
        played = 0
        start: float | None = None
        first_time: float | None = None
        try:
            for frame in container.decode(stream):
                if self._stop.is_set():
                    break
                media_t = frame.time if frame.time is not None else played / self._file_fps
                if start is None or first_time is None:
                    start, first_time = time.perf_counter(), media_t
                due = start + (media_t - first_time)
                now = time.perf_counter()
                if due > now:
                    if not self._sleep(due - now):
                        break
                elif now - due > _MAX_CATCHUP:  # decoding slower than real time: don't burst
                    start += now - due
                played += 1
                t = time.perf_counter()
                if self._admit(t):
                    self._publish(frame.to_ndarray(format="bgr24"), t)
        except av.FFmpegError as exc:
            if played == 0:
                raise MediaError(f"--input {str(self._path)!r}: decoding failed: {exc}") from exc
            # A damaged tail ends this pass like a normal end of file.
        finally:
            self._container = None
            container.close()
        return played
