"""The preview window of `decart stream` (OpenCV; off with --no-window). Untestable headless, so tiny.

Call everything from one thread (HighGUI is not thread-safe); ``poll()`` pumps the window's
events with ``waitKey(1)`` and says whether the user still wants it.

opencv-python's Qt backend *aborts the process* (SIGABRT, no cleanup, no disconnect) when
``DISPLAY`` names a display it cannot reach. So on Linux/BSD, :class:`Window` first opens a
window in a short-lived child process and only opens its own when that succeeded.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from decart_cli.errors import MediaError

__all__ = ["Window", "display_available"]

_QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc


def display_available(environ: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether a window can be shown: on Linux/BSD only with ``DISPLAY`` or ``WAYLAND_DISPLAY`` set;
    macOS and Windows always have a desktop."""
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if plat.startswith(("darwin", "win32", "cygwin")):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


class Window:
    """A named HighGUI window showing BGR frames.

    Raises:
        MediaError: no display, or OpenCV was built without GUI support.
    """

    def __init__(self, title: str = "decart") -> None:
        if not display_available():
            raise MediaError("no display for --show (DISPLAY / WAYLAND_DISPLAY unset)", hint="drop --show")
        if not sys.platform.startswith(("darwin", "win32", "cygwin")):
            _probe_gui()
        import cv2

        self.title = title
        self._cv2: Any = cv2
        self._open = True
        self._shown = False
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise MediaError(f"cannot open a window: {exc}", hint="drop --show or install opencv-python") from exc

    def show(self, frame_bgr: Any) -> None:
        """Display ``frame_bgr`` (numpy BGR or ``av.VideoFrame``). No-op once closed."""
        if not self._open:
            return
        if hasattr(frame_bgr, "to_ndarray"):
            frame_bgr = frame_bgr.to_ndarray(format="bgr24")
        self._cv2.imshow(self.title, frame_bgr)
        self._shown = True

    def poll(self) -> bool:
        """Pump events; False when the window was closed or ``q``/Esc was pressed."""
        if not self._open:
            return False
        key = self._cv2.waitKey(1) & 0xFF
        visible = True
        if self._shown:  # some backends report "not visible" until the first imshow
            try:
                visible = self._cv2.getWindowProperty(self.title, self._cv2.WND_PROP_VISIBLE) >= 1
            except self._cv2.error:
                visible = False
        if key in _QUIT_KEYS or not visible:
            self.close()
            return False
        return True

    def close(self) -> None:
        """Destroy the window. Idempotent."""
        if self._open:
            self._open = False
            try:
                self._cv2.destroyWindow(self.title)
                self._cv2.waitKey(1)
            except self._cv2.error:
                pass


_PROBE = "import cv2; cv2.namedWindow('decart-probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
PROBE_TIMEOUT = 10.0


def _probe_gui() -> None:
    """Open and close a window in a child process; MediaError when that fails or aborts."""
    import subprocess

    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or ""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MediaError(f"cannot open a window on display {display!r}: {exc}", hint="drop --show") from exc
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        why = lines[0].strip() if lines else f"exit status {proc.returncode}"
        raise MediaError(f"cannot open a window on display {display!r}: {why}", hint="drop --show or fix DISPLAY")
