"""Preview window: only the display detection is testable on a headless machine."""

from __future__ import annotations

import pytest

from decart_cli.errors import MediaError
from decart_cli.media.window import Window, display_available


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


def test_window_without_display_is_a_media_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a window with no display fails with a MediaError saying to drop --show."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if display_available():  # macOS / Windows runners have a desktop
        return
    with pytest.raises(MediaError, match="no display") as info:
        Window("x")
    assert info.value.hint == "drop --show"


def test_unreachable_display_is_a_media_error_not_an_abort(monkeypatch: pytest.MonkeyPatch) -> None:
    """With DISPLAY naming no server, Window raises a MediaError (OpenCV's Qt would abort the process)."""
    import sys

    if sys.platform.startswith(("darwin", "win32", "cygwin")):
        return  # desktop platforms have no DISPLAY to get wrong
    monkeypatch.setenv("DISPLAY", ":97")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(MediaError, match="cannot open a window on display ':97'") as info:
        Window("x")
    assert info.value.hint == "drop --show or fix DISPLAY"
