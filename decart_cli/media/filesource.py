"""``--input FILE [--loop]``: a video file as the camera.

Decoded with PyAV on the source's thread, played at the file's own frame rate (from its
timestamps) capped at the model's fps (extra frames dropped by the gate, judged on the file's
timestamps), adapted to the model size by the same centre-crop + resize as a camera (a yuv420p
file already at the model size, not mirrored, is sent as decoded: no conversion). Unlike a
camera, a file never loses a frame to timing: playback starts when the stream takes its first
frame and waits for each frame to be taken (a file of 150 frames sends 150 frames, in order). At
the end the file restarts with ``--loop``; without it the source finishes cleanly (``finished``
true, ``error`` None). A file that fails to decode part-way fails the source (exit 4) naming it.
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
        offset = 0.0  # media time at the start of this pass: one clock across --loop passes for the fps gate
        while not self._stop.is_set():
            played, length = self._play_once(offset)
            if self._stop.is_set():
                return
            if not self._loop_file:
                self.finish()
                return
            if played == 0:
                raise MediaError(f"--input {str(self._path)!r}: no decodable frame on replay")
            offset += length

    def _as_sent(self, frame: Any) -> bool:
        """Whether a decoded frame is I420 at the model size and not to be mirrored: sent as it is."""
        return (
            frame.format.name == "yuv420p"
            and (frame.width, frame.height) == (self.width, self.height)
            and self.width % 2 == 0
            and self.height % 2 == 0
            and not self._mirrored
        )

    def _play_once(self, offset: float) -> tuple[int, float]:
        """Decode and publish the whole file once; returns (frames decoded, media seconds played).

        Every frame the fps gate admits (by the file's own timestamps, so a busy machine cannot make
        it drop frames) is published, then the producer waits until a track took it: nothing plays
        before the stream starts, and a slow consumer slows the file down instead of skipping it.
        The pacing clock starts when the first frame is taken.

        Raises:
            MediaError: the file fails to decode part-way (damaged), naming it and how far it got.
        """
        container, stream = _open_video(self._path)
        self._container = container
        played = 0
        start: float | None = None
        first_time: float | None = None
        rel = 0.0
        try:
            frames = container.decode(stream)
            while not self._stop.is_set():
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except _AV_ERRORS as exc:
                    raise MediaError(
                        f"--input {str(self._path)!r} is damaged: decoding failed after {played} frame(s) "
                        f"({rel:.1f} s): {exc}",
                        hint="re-encode or repair the file, e.g. ffmpeg -i FILE -c:v libx264 fixed.mp4",
                    ) from exc
                media_t = frame.time if frame.time is not None else played / self._file_fps
                if first_time is None:
                    first_time = media_t
                rel = max(0.0, media_t - first_time)
                played += 1
                if not self._admit(offset + rel):  # faster than the model's fps, by the file's clock
                    continue
                if start is not None:
                    due = start + rel
                    now = time.perf_counter()
                    if due > now:
                        if not self._sleep(due - now):
                            break
                    elif now - due > _MAX_CATCHUP:  # the consumer or the decoder fell behind: don't burst
                        start += now - due
                if self._as_sent(frame):  # already what is sent: the decoder's planes, no BGR round trip
                    self._publish_i420(frame.to_ndarray(), time.perf_counter())
                else:
                    self._publish(frame.to_ndarray(format="bgr24"), time.perf_counter())
                if not self._wait_taken():
                    break
                if start is None:
                    start = time.perf_counter() - rel
        finally:
            self._container = None
            container.close()
        return played, rel + 1.0 / self._file_fps
