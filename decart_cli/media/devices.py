"""Camera discovery: which video devices exist, what they are called, which way they face.

OpenCV cannot report a camera's ``facingMode``, so facing is guessed from the device name
(:func:`guess_facing`); when the name says nothing, the documented fallback is by order: the
first camera is ``front``, the second ``back``, others unknown. On Linux the list comes from
``/dev/video*`` with names from ``/sys/class/video4linux/videoN/name``; metadata-only nodes (a UVC
camera exposes two nodes) are skipped when ``VIDIOC_QUERYCAP`` or sysfs can tell. Elsewhere indexes
0..3 are probed with OpenCV. No camera → ``[]``, quickly and without error.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CameraInfo", "describe_cameras", "guess_facing", "list_cameras"]

_FRONT_WORDS = ("integrated", "user", "front", "facetime", "built-in", "builtin", "internal")
_BACK_WORDS = ("rear", "back", "environment", "world")
_VIDEO_NODE = re.compile(r"^video(\d+)$")
# struct v4l2_capability is 104 bytes; VIDIOC_QUERYCAP = _IOR('V', 0, struct v4l2_capability).
_VIDIOC_QUERYCAP = 0x80685600
_V4L2_CAP_VIDEO_CAPTURE = 0x00000001
_V4L2_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
_V4L2_CAP_DEVICE_CAPS = 0x80000000
_PROBE_INDEXES = 4  # non-Linux: how many OpenCV indexes to probe


@dataclass(frozen=True)
class CameraInfo:
    """One local camera.

    Attributes:
        index: OpenCV index (N of ``/dev/videoN`` on Linux).
        path: device path on Linux, ``""`` elsewhere.
        name: human name from the driver (or ``"camera N"``).
        facing: ``"front"`` / ``"back"`` / ``None`` (unknown).
        facing_from: ``"name"`` when the name said so, ``"order"`` for the position fallback.
    """

    index: int
    path: str
    name: str
    facing: str | None
    facing_from: str = "name"

    def label(self) -> str:
        """Short display form: ``0 /dev/video0 "Integrated Camera" (front)``."""
        where = f" {self.path}" if self.path else ""
        facing = f" ({self.facing})" if self.facing else ""
        return f'{self.index}{where} "{self.name}"{facing}'


def guess_facing(name: str) -> str | None:
    """``"front"``/``"back"`` when the device name says so, else ``None``."""
    low = name.lower()
    if any(w in low for w in _BACK_WORDS):
        return "back"
    if any(w in low for w in _FRONT_WORDS):
        return "front"
    return None


def _with_order_fallback(found: list[tuple[int, str, str]]) -> list[CameraInfo]:
    """Attach facing: from the name when possible, else first = front, second = back."""
    cams: list[CameraInfo] = []
    for pos, (index, path, name) in enumerate(found):
        facing = guess_facing(name)
        if facing is not None:
            cams.append(CameraInfo(index, path, name, facing, "name"))
        else:
            by_order = ("front", "back")[pos] if pos < 2 else None
            cams.append(CameraInfo(index, path, name, by_order, "order"))
    return cams


def _is_capture_node(path: Path, sys_dir: Path) -> bool:
    """Whether ``/dev/videoN`` captures video (False for UVC metadata nodes)."""
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            buf = bytearray(104)
            fcntl.ioctl(fd, _VIDIOC_QUERYCAP, buf)
        finally:
            os.close(fd)
        caps, device_caps = struct.unpack_from("<II", buf, 84)
        if caps & _V4L2_CAP_DEVICE_CAPS:
            caps = device_caps
        return bool(caps & (_V4L2_CAP_VIDEO_CAPTURE | _V4L2_CAP_VIDEO_CAPTURE_MPLANE))
    except OSError:
        # No permission or not a V4L2 node: UVC numbers its metadata node with index 1.
        with contextlib.suppress(OSError, ValueError):
            return int((sys_dir / "index").read_text().strip()) == 0
        return True


def _list_linux(dev: Path = Path("/dev"), sysfs: Path = Path("/sys/class/video4linux")) -> list[CameraInfo]:
    found: list[tuple[int, str, str]] = []
    try:
        entries = sorted((int(m.group(1)), p) for p in dev.iterdir() if (m := _VIDEO_NODE.match(p.name)) is not None)
    except OSError:
        return []
    for index, path in entries:
        sys_dir = sysfs / path.name
        if not _is_capture_node(path, sys_dir):
            continue
        try:
            name = (sys_dir / "name").read_text().strip() or f"camera {index}"
        except OSError:
            name = f"camera {index}"
        found.append((index, str(path), name))
    return _with_order_fallback(found)


def _list_probe() -> list[CameraInfo]:
    import cv2

    found: list[tuple[int, str, str]] = []
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # no "can't open camera" noise
    try:
        for index in range(_PROBE_INDEXES):
            cap = cv2.VideoCapture(index)
            try:
                if not cap.isOpened():
                    break
                found.append((index, "", f"camera {index}"))
            finally:
                cap.release()
    finally:
        cv2.utils.logging.setLogLevel(previous)
    return _with_order_fallback(found)


def list_cameras() -> list[CameraInfo]:
    """The local cameras, in index order, with guessed facing. ``[]`` when there are none.

    Never raises: a machine without cameras (or without permission to see them) gets ``[]``.
    """
    if sys.platform.startswith("linux"):
        return _list_linux()
    try:
        return _list_probe()
    except Exception:  # OpenCV backends raise assorted errors on headless machines
        return []


def describe_cameras(cameras: list[CameraInfo]) -> str:
    """``"cameras found: 0 /dev/video0 "…" (front), …"`` or the hint for a machine without any."""
    if not cameras:
        return "no cameras found; use --camera test or --input FILE"
    return "cameras found: " + ", ".join(c.label() for c in cameras)
