"""Where received frames go besides the panel: the preview window (``--window``) and the recording (``--record``).

:class:`Outputs` opens both, hands each received frame to them, keeps the window's title current,
finishes the recording (reporting its progress) and closes the window, and says what the recording
lost. The runner (:mod:`.runner`) holds one and decides when; this module never imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decart_cli.errors import MediaError

if TYPE_CHECKING:
    from decart_cli.media.recorder import Recorder
    from decart_cli.media.window_thread import WindowThread

__all__ = ["Outputs"]


class Outputs:
    """The run's window and recorder; either is ``None`` when not asked for (or, the window, not available).

    Args:
        record: the recording's path (``--record``), or ``None``.
        window: whether a preview window is wanted (``--window``).
    """

    def __init__(self, record: Path | None, window: bool) -> None:
        self.record = record
        self.want_window = window
        self.recorder: Recorder | None = None
        self.window: WindowThread | None = None
        self.window_closed = asyncio.Event()  # the user closed the video window

    async def open(self, *, fps: int, model: str, prompt: str | None, notice: Callable[[str], None]) -> None:
        """Open the recorder, then the window (on its own thread).

        Without a display or a usable GUI backend the run streams on without a window, said through ``notice``.

        Args:
            fps: the recording's frame rate (the model's).
            model: the model's wire name and ``prompt`` the applied prompt, for the window's title.
            prompt: see ``model``.
            notice: says why there is no window.
        """
        from decart_cli.media.recorder import Recorder
        from decart_cli.media.window import display_available
        from decart_cli.media.window_thread import WindowThread

        if self.record is not None:
            self.recorder = Recorder(self.record, fps=fps)
        if not self.want_window:
            return
        from decart_cli.media.window import window_title

        try:
            if not display_available():
                raise MediaError("no display (DISPLAY / WAYLAND_DISPLAY unset)")
            title = window_title(model, prompt)
            loop = asyncio.get_running_loop()

            def closed() -> None:  # on the window's thread
                with contextlib.suppress(RuntimeError):  # the loop may be gone at exit
                    loop.call_soon_threadsafe(self.window_closed.set)

            self.window = await asyncio.to_thread(WindowThread, title, on_closed=closed)  # its own thread
        except MediaError as exc:  # no display, or no usable GUI backend: stream without a window
            notice(f"no video window: {exc.message}; streaming on (--no-window silences this)")

    def show(self, frame: Any) -> None:
        """A received frame: into the recording, and the newest one into the window thread's slot."""
        if self.recorder is not None:
            self.recorder.write(frame)
        if self.window is not None:
            self.window.show(frame)

    def set_title(self, model: str, prompt: str | None) -> None:
        """The window's title follows the model and the prompt the session holds."""
        if self.window is not None:
            from decart_cli.media.window import window_title

            self.window.set_title(window_title(model, prompt))

    async def finish_recording(self, progress: Callable[[int], None]) -> None:
        """Encode what the recorder still holds, calling ``progress(queued)`` on the loop while it takes time.

        No fixed deadline (a busy machine must not cut the file short); the recorder itself gives
        up on an encoder that stops making progress, and a second Ctrl-C still leaves at once.
        """
        rec = self.recorder
        if rec is None:
            return
        loop = asyncio.get_running_loop()

        def on_thread(queued: int) -> None:  # on the closing thread: hop to the loop
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(progress, queued)

        with contextlib.suppress(Exception):
            await asyncio.to_thread(rec.close, on_thread)

    async def close_window(self) -> None:
        """Close the window (off the loop); never raises."""
        if self.window is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.window.close)

    def cut_short(self) -> str:
        """For a forced exit: what of the recording is lost, as a note for ``forced exit``, or ``""``."""
        rec = self.recorder
        if rec is None or rec.closed:
            return ""
        return f" (recording {self.record} cut short: {rec.queued} queued frames not written)"

    def loss(self, frames_received: int) -> MediaError | None:
        """The recording's shortfall as an error (every received frame must be in the file), or None."""
        rec = self.recorder
        if rec is None:
            return None
        path = str(self.record)
        if rec.frames_written == 0:
            why = f": {rec.loss_reason}" if rec.loss_reason else ""
            return MediaError(f"recording {path!r} is empty: {frames_received} frame(s) received, none written{why}")
        if rec.frames_lost:
            return MediaError(
                f"recording {path!r} is short: {rec.frames_lost} of {frames_received} received frames "
                f"lost ({rec.loss_reason})",
                hint="the rest of the file is playable; a machine too busy to encode in time causes this",
            )
        return None
