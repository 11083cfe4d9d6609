"""The preview window on its own thread: the event loop only drops the newest frame into a slot.

HighGUI must be driven from one thread, and each of its calls blocks: ``waitKey(1)`` pumps events
for at least a millisecond, ``imshow`` copies and paints, and a received ``av.VideoFrame`` needs a
colour conversion first. Done on the loop (60 times a second) that delayed the very frames being
measured; here a daemon thread owns the :class:`~decart_cli.media.window.Window` — it creates it,
converts and shows the newest frame only (older ones are dropped, never queued), pumps its events,
applies title changes — and the loop only calls :meth:`WindowThread.show` (a slot assignment),
:meth:`WindowThread.set_title` and :meth:`WindowThread.poll`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from decart_cli.errors import MediaError

__all__ = ["PUMP_INTERVAL", "WindowThread"]

PUMP_INTERVAL = 1 / 60  # seconds between event pumps while no frame arrives
OPEN_TIMEOUT = 15.0  # seconds for the window (and its GUI probe) to open
CLOSE_TIMEOUT = 2.0


class WindowThread:
    """A :class:`~decart_cli.media.window.Window` driven by its own thread.

    Args:
        title: the first title.
        factory: builds the window on the thread (tests inject a fake); default ``Window``.
        on_closed: called (from the window's thread) once the window closed by itself, not by :meth:`close`.

    Raises:
        MediaError: the window could not be opened (no display, no GUI backend), as ``Window`` raises it.
    """

    def __init__(self, title: str, factory: Any = None, on_closed: Callable[[], None] | None = None) -> None:
        if factory is None:
            from decart_cli.media.window import Window

            factory = Window
        self._factory = factory
        self._title = title
        self._on_closed = on_closed
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._frame: Any = None
        self._pending_title: str | None = None
        self._open = True
        self._error: MediaError | None = None
        self.shown = 0  # frames painted
        self.dropped = 0  # frames replaced in the slot before they were painted
        self._thread = threading.Thread(target=self._run, name="decart-window", daemon=True)
        self._thread.start()
        if not self._ready.wait(OPEN_TIMEOUT):
            self._stop.set()
            raise MediaError("the video window did not open in time", hint="use --no-window")
        if self._error is not None:
            raise self._error

    # -- the loop's side ----------------------------------------------------------------------------

    def show(self, frame: Any) -> None:
        """Make ``frame`` (``av.VideoFrame`` or BGR array) the next one painted; cheap, never blocks."""
        with self._lock:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
        self._wake.set()

    def set_title(self, title: str) -> None:
        """Show ``title`` in the title bar (applied by the window's thread)."""
        with self._lock:
            self._pending_title = title
        self._wake.set()

    def poll(self) -> bool:
        """False once the window was closed (by the user: ``q``, Esc, the close button) or failed."""
        return self._open

    def close(self) -> None:
        """Close the window and stop its thread (bounded; idempotent)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(CLOSE_TIMEOUT)
        self._open = False

    # -- the window's thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            window = self._factory(self._title)
        except MediaError as exc:
            self._error = exc
            self._open = False
            self._ready.set()
            return
        except Exception as exc:  # an odd GUI failure: no window, the stream goes on
            self._error = MediaError(f"cannot open a window: {exc}", hint="use --no-window")
            self._open = False
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                self._wake.wait(PUMP_INTERVAL)
                self._wake.clear()
                with self._lock:
                    frame, self._frame = self._frame, None
                    title, self._pending_title = self._pending_title, None
                if title is not None:
                    window.set_title(title)
                if frame is not None:
                    window.show(frame)
                    self.shown += 1
                if not window.poll():
                    break
        except Exception:  # a GUI failure mid-stream ends the window, never the stream
            pass
        finally:
            self._open = False
            try:
                window.close()
            except Exception:  # noqa: S110 - closing a broken window: nothing left to do
                pass
            if not self._stop.is_set() and self._on_closed is not None:
                self._on_closed()
