"""The preview window of `decart stream` (OpenCV HighGUI; off with --no-window): a plain video viewer.

It opens at the video's size, fitted to the screen (:func:`fit_size`, pure), keeps the aspect ratio
when resized, has no toolbar (``WINDOW_GUI_NORMAL``), and its title follows the model and the prompt
(:func:`window_title`; the runner calls :meth:`Window.set_title` on every change). ``q`` or Esc in
the window, or closing it, ends the stream. OpenCV's Qt backend prints ``QFontDatabase: Cannot find
font directory …`` warnings on stderr, over the live panel: :func:`quiet_qt` points Qt at the
system's fonts and turns its warnings off before Qt starts (unless the user set those variables).

Call everything from one thread (HighGUI is not thread-safe); ``poll()`` pumps the window's events
with ``waitKey(1)`` and says whether the user still wants it.

opencv-python's Qt backend *aborts the process* (SIGABRT, no cleanup, no disconnect) when
``DISPLAY`` names a display it cannot reach. So on Linux/BSD, :class:`Window` first opens a
window in a short-lived child process and only opens its own when that succeeded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from typing import Any

from decart_cli.errors import MediaError

__all__ = ["Window", "display_available", "fit_size", "quiet_qt", "screen_size", "window_title"]

_QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc
WINDOW_NAME = "decart"  # HighGUI's handle for the window; the visible title is set separately
SCREEN_SHARE = 0.9  # at most this much of the screen's width and height
DEFAULT_SCREEN = (1920, 1080)  # when the screen size cannot be read
FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/truetype",
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
)
QT_QUIET_RULES = "*.debug=false;*.info=false;*.warning=false;default.warning=false"
TITLE_PROMPT_CHARS = 60


def display_available(environ: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether a window can be shown: on Linux/BSD only with ``DISPLAY`` or ``WAYLAND_DISPLAY`` set;
    macOS and Windows always have a desktop."""
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if plat.startswith(("darwin", "win32", "cygwin")):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def fit_size(video: tuple[int, int], screen: tuple[int, int] | None, share: float = SCREEN_SHARE) -> tuple[int, int]:
    """The window size for a ``video`` (w, h) on a ``screen`` (w, h): the video's own size, or scaled
    down (aspect kept, never up) to fit ``share`` of the screen. ``None`` screen: a 1920×1080 one."""
    vw, vh = max(1, video[0]), max(1, video[1])
    sw, sh = screen or DEFAULT_SCREEN
    scale = min(1.0, sw * share / vw, sh * share / vh)
    return max(1, round(vw * scale)), max(1, round(vh * scale))


def window_title(model: str, prompt: str | None) -> str:
    """``"decart · lucy-2.1 · anime style — q/Esc to close"`` (the prompt shortened, or "passthrough")."""
    shown = " ".join((prompt or "").split()) or "passthrough"
    if len(shown) > TITLE_PROMPT_CHARS:
        shown = shown[: TITLE_PROMPT_CHARS - 1] + "…"
    return f"decart · {model} · {shown} — q/Esc to close"


def quiet_qt(environ: MutableMapping[str, str] | None = None, font_dirs: tuple[str, ...] = FONT_DIRS) -> None:
    """Before Qt starts: point it at an existing font directory (``QT_QPA_FONTDIR``) and turn its log
    warnings off (``QT_LOGGING_RULES``), each only when the user has not set it."""
    env = os.environ if environ is None else environ
    if "QT_QPA_FONTDIR" not in env:
        found = next((d for d in font_dirs if os.path.isdir(d)), None)
        if found is not None:
            env["QT_QPA_FONTDIR"] = found
    env.setdefault("QT_LOGGING_RULES", QT_QUIET_RULES)


def screen_size() -> tuple[int, int] | None:
    """The screen's size in pixels (X11 through libX11, or Windows), ``None`` when it cannot be read."""
    import ctypes
    import ctypes.util

    if sys.platform.startswith("win"):
        try:
            user32 = ctypes.windll.user32  # type: ignore[attr-defined,unused-ignore]
            return int(user32.GetSystemMetrics(0)), int(user32.GetSystemMetrics(1))
        except (AttributeError, OSError):
            return None
    name = ctypes.util.find_library("X11")
    if not name or not os.environ.get("DISPLAY"):
        return None
    try:
        x11 = ctypes.CDLL(name)
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
        x11.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        display = x11.XOpenDisplay(None)
        if not display:
            return None
        try:
            screen = x11.XDefaultScreen(display)
            return int(x11.XDisplayWidth(display, screen)), int(x11.XDisplayHeight(display, screen))
        finally:
            x11.XCloseDisplay(display)
    except (OSError, AttributeError):
        return None


class Window:
    """A HighGUI window showing BGR frames, sized to the first frame and fitted to the screen.

    Args:
        title: the first title (see :meth:`set_title`).

    Raises:
        MediaError: no display, or OpenCV was built without GUI support.
    """

    def __init__(self, title: str = "decart") -> None:
        if not display_available():
            raise MediaError("no display (DISPLAY / WAYLAND_DISPLAY unset)", hint="use --no-window")
        quiet_qt()
        if not sys.platform.startswith(("darwin", "win32", "cygwin")):
            _probe_gui()
        import cv2

        self.title = title
        self._cv2: Any = cv2
        self._open = True
        self._shown = False
        self._size: tuple[int, int] | None = None
        self._screen = screen_size()
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
        try:
            cv2.namedWindow(WINDOW_NAME, flags)
            cv2.setWindowTitle(WINDOW_NAME, title)
        except cv2.error as exc:
            raise MediaError(f"cannot open a window: {exc}", hint="use --no-window or install opencv-python") from exc

    def set_title(self, title: str) -> None:
        """Show ``title`` in the window's title bar (no-op when unchanged or closed)."""
        if self._open and title != self.title:
            self.title = title
            try:
                self._cv2.setWindowTitle(WINDOW_NAME, title)
            except self._cv2.error:
                pass

    def show(self, frame_bgr: Any) -> None:
        """Display ``frame_bgr`` (numpy BGR or ``av.VideoFrame``). No-op once closed."""
        if not self._open:
            return
        if hasattr(frame_bgr, "to_ndarray"):
            frame_bgr = frame_bgr.to_ndarray(format="bgr24")
        video = (int(frame_bgr.shape[1]), int(frame_bgr.shape[0]))
        if video != self._size:  # the first frame, or a /model switch to another size
            self._size = video
            self._cv2.resizeWindow(WINDOW_NAME, *fit_size(video, self._screen))
        self._cv2.imshow(WINDOW_NAME, frame_bgr)
        self._shown = True

    def poll(self) -> bool:
        """Pump events; False when the window was closed or ``q``/Esc was pressed."""
        if not self._open:
            return False
        key = self._cv2.waitKey(1) & 0xFF
        visible = True
        if self._shown:  # some backends report "not visible" until the first imshow
            try:
                visible = self._cv2.getWindowProperty(WINDOW_NAME, self._cv2.WND_PROP_VISIBLE) >= 1
            except self._cv2.error:
                visible = False
        if key in _QUIT_KEYS or not visible:
            self.close()
            return False
        return True

    def image_rect(self) -> tuple[int, int, int, int]:
        """Where the video is drawn inside the window: (x, y, width, height)."""
        x, y, w, h = self._cv2.getWindowImageRect(WINDOW_NAME)
        return int(x), int(y), int(w), int(h)

    def close(self) -> None:
        """Destroy the window. Idempotent."""
        if self._open:
            self._open = False
            try:
                self._cv2.destroyWindow(WINDOW_NAME)
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
        raise MediaError(f"cannot open a window on display {display!r}: {exc}", hint="use --no-window") from exc
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        why = lines[0].strip() if lines else f"exit status {proc.returncode}"
        raise MediaError(f"cannot open a window on display {display!r}: {why}", hint="use --no-window, or fix DISPLAY")
