"""The only fake in the suite: a camera object with cv2.VideoCapture's interface and fixed modes."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

W, H, FPS = cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS
RED = (0, 0, 255)


_SCENES: dict[tuple[int, int], np.ndarray] = {}


def scene(width: int, height: int, n: int = 0) -> np.ndarray:
    """A device frame: blue background, red band on the left tenth, a centred white square (side = h/4)."""
    if (width, height) not in _SCENES:
        _SCENES[width, height] = _draw(width, height)
    img = _SCENES[width, height].copy()
    img[0, 0] = n % 256  # makes consecutive frames differ
    return img


def _draw(width: int, height: int) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    img[:] = (200, 60, 0)
    img[:, : max(1, width // 10)] = RED
    s = height // 4
    cx, cy = width // 2, height // 2
    img[cy - s // 2 : cy + s // 2, cx - s // 2 : cx + s // 2] = 255
    return img


class FakeCamera:
    """Offers a fixed list of ``(w, h, fps)`` modes; snaps a request to the nearest one like V4L2.

    Args:
        modes: supported modes; the first is the power-on default.
        opened: what ``isOpened()`` says.
        frames: how many frames ``read()`` delivers before failing (None = forever).
        hang: after ``frames``, ``read()`` blocks (until released) instead of failing.
        realtime: ``read()`` sleeps ``1/fps`` like a real device.
    """

    def __init__(
        self,
        modes: list[tuple[int, int, float]],
        *,
        opened: bool = True,
        frames: int | None = None,
        hang: bool = False,
        realtime: bool = True,
    ) -> None:
        self.modes = modes
        self.mode = modes[0]
        self.opened = opened
        self.frames = frames
        self.hang = hang
        self.realtime = realtime
        self.reads = 0
        self.requests: list[tuple[int, float]] = []
        self.released = threading.Event()
        self._want_w = float(self.mode[0])
        self._due = 0.0

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened and not self.released.is_set()

    def set(self, prop: int, value: float) -> bool:
        self.requests.append((prop, value))
        if prop == W:
            self._want_w = value
        elif prop == H:
            want = (self._want_w, value)
            exact = [m for m in self.modes if (m[0], m[1]) == want]
            self.mode = exact[0] if exact else min(self.modes, key=lambda m: abs(m[0] * m[1] - want[0] * want[1]))
        elif prop == FPS:
            same = [m for m in self.modes if (m[0], m[1]) == (self.mode[0], self.mode[1])]
            self.mode = min(same, key=lambda m: abs(m[2] - value))
        else:
            return False
        return True

    def get(self, prop: int) -> float:
        return {W: float(self.mode[0]), H: float(self.mode[1]), FPS: float(self.mode[2])}.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.released.is_set():
            return False, None
        if self.frames is not None and self.reads >= self.frames:
            if self.hang:
                self.released.wait(30)
            else:
                time.sleep(0.01)
            return False, None
        self.reads += 1
        if self.realtime:  # deliver on a fixed 1/fps schedule like a real sensor
            now = time.perf_counter()
            self._due = max(self._due + 1 / self.mode[2], now) if self._due else now
            time.sleep(max(0.0, self._due - now))
        return True, scene(self.mode[0], self.mode[1], self.reads)

    def release(self) -> None:
        self.released.set()


class Factory:
    """A camera factory handing out prepared fakes in order (the last one repeats); records opens."""

    def __init__(self, *cams: FakeCamera) -> None:
        self.cams = list(cams)
        self.opened: list[int | str] = []

    def __call__(self, device: int | str) -> FakeCamera:
        self.opened.append(device)
        return self.cams.pop(0) if len(self.cams) > 1 else self.cams[0]
