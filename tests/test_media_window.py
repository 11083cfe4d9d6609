"""Preview window: geometry, title and Qt quieting as pure functions; the real window under Xvfb."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from decart_cli.errors import MediaError
from decart_cli.media.window import QT_QUIET_RULES, Window, display_available, fit_size, quiet_qt, window_title

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"DISPLAY": ""}, "linux", False),
        ({}, "freebsd14", False),
        ({}, "darwin", True),
        ({}, "win32", True),
    ],
)
def test_display_available(env: dict[str, str], platform: str, expected: bool) -> None:
    """Linux needs DISPLAY or WAYLAND_DISPLAY; macOS and Windows always have a desktop."""
    assert display_available(env, platform) is expected


@pytest.mark.parametrize(
    ("video", "screen", "expected"),
    [
        ((1088, 624), (1920, 1080), (1088, 624)),  # fits: the video's own size, never scaled up
        ((1280, 720), (1280, 720), (1152, 648)),  # 90 % of the screen, aspect kept
        ((1088, 624), (800, 600), (720, 413)),
        ((1088, 624), None, (1088, 624)),  # screen unknown: a 1920×1080 one is assumed
        ((1884, 1080), (1366, 768), (1206, 691)),
    ],
)
def test_fit_size(video: tuple[int, int], screen: tuple[int, int] | None, expected: tuple[int, int]) -> None:
    """The window is the video's size, or scaled down (aspect kept) to 90 % of the screen."""
    assert fit_size(video, screen) == expected


def test_window_title_follows_model_and_prompt() -> None:
    """The title names the model and the prompt (shortened), or passthrough, and how to close."""
    assert window_title("lucy-2.1", "anime style") == "decart · lucy-2.1 · anime style — q/Esc to close"
    assert window_title("lucy-2.5", None) == "decart · lucy-2.5 · passthrough — q/Esc to close"
    long = window_title("lucy-2.1", "a " * 100)
    assert "…" in long and len(long) < 110


def test_quiet_qt_sets_what_the_user_did_not(tmp_path: Path) -> None:
    """Qt gets an existing font directory and its warnings off, unless the user set either variable."""
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    env: dict[str, str] = {}
    quiet_qt(env, font_dirs=(str(tmp_path / "missing"), str(fonts)))
    assert env == {"QT_QPA_FONTDIR": str(fonts), "QT_LOGGING_RULES": QT_QUIET_RULES}
    mine = {"QT_QPA_FONTDIR": "/mine", "QT_LOGGING_RULES": "*.debug=true"}
    quiet_qt(mine, font_dirs=(str(fonts),))
    assert mine == {"QT_QPA_FONTDIR": "/mine", "QT_LOGGING_RULES": "*.debug=true"}


def test_window_without_display_is_a_media_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a window with no display fails with a MediaError saying to use --no-window."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if display_available():  # macOS / Windows runners have a desktop
        return
    with pytest.raises(MediaError, match="no display") as info:
        Window("x")
    assert info.value.hint == "use --no-window"


def test_unreachable_display_is_a_media_error_not_an_abort(monkeypatch: pytest.MonkeyPatch) -> None:
    """With DISPLAY naming no server, Window raises a MediaError (OpenCV's Qt would abort the process)."""
    if sys.platform.startswith(("darwin", "win32", "cygwin")):
        return  # desktop platforms have no DISPLAY to get wrong
    monkeypatch.setenv("DISPLAY", ":97")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(MediaError, match="cannot open a window on display ':97'") as info:
        Window("x")
    assert info.value.hint == "use --no-window, or fix DISPLAY"


# ----------------------------------------------------------------- the real window, under Xvfb


@contextlib.contextmanager
def xvfb(width: int, height: int) -> Iterator[str]:
    """A virtual X display of ``width × height``; fails (in CI) or skips (elsewhere) without Xvfb."""
    if shutil.which("Xvfb") is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is not installed (make xvfb, or apt-get install -y xvfb): the window is untested")
        pytest.skip("Xvfb is not installed here (make xvfb); CI fails instead of skipping")
    for number in range(91, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    display = f":{number}"
    proc = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield display
    finally:
        proc.terminate()
        proc.wait(10)


VIEWER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from decart_cli.media.window import Window, window_title
    w = Window(window_title("lucy-2.1", None))
    img = np.zeros((624, 1088, 3), np.uint8)
    img[:, :544] = 255
    for _ in range(20):
        w.show(img); w.poll(); time.sleep(0.02)
    w.set_title(window_title("lucy-2.5", "pencil sketch"))
    for _ in range(20):
        w.poll(); time.sleep(0.02)
    print("rect", *w.image_rect(), flush=True)
    sys.stdin.readline()  # the test reads the title while the window is up
    w.close()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("screen", "size"), [((1920, 1080), (1088, 624)), ((800, 600), (720, 413))])
def test_the_window_is_a_plain_viewer_under_xvfb(screen: tuple[int, int], size: tuple[int, int]) -> None:
    """Under a virtual display the video fills a toolbar-less window of its size (fitted to a small screen),
    the title follows set_title, and nothing from Qt reaches stderr (was: 400×300 with a toolbar and
    ten QFontDatabase lines)."""
    with xvfb(*screen) as display:
        env = {**os.environ, "DISPLAY": display, "PYTHONPATH": str(ROOT)}
        env.pop("QT_LOGGING_RULES", None)
        env.pop("QT_QPA_FONTDIR", None)
        proc = subprocess.Popen(
            [sys.executable, "-c", VIEWER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            words = proc.stdout.readline().split()
            assert words and words[0] == "rect", proc.stderr.read() if proc.stderr else ""
            x, y, w, h = map(int, words[1:])
            tree = subprocess.run(
                ["xwininfo", "-root", "-tree"], capture_output=True, text=True, env=env, check=False
            ).stdout
            proc.stdin.write("\n")
            proc.stdin.flush()
            _out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert (x, y) == (0, 0)  # no toolbar above the picture
    assert abs(w - size[0]) <= 2 and abs(h - size[1]) <= 2, (w, h)
    if shutil.which("xwininfo"):
        assert "decart · lucy-2.5 · pencil sketch — q/Esc to close" in tree
    assert err.strip() == "", err
