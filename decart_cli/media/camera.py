"""Local cameras through OpenCV: pick the device, negotiate its mode, capture off the event loop.

Setup follows the seed: request the model's ``width × height @ fps``; when the device grants
something else, walk the ideal-fallback chain of :func:`~decart_cli.core.negotiate.fallback_chain`
and keep the best granted mode; the frames are then centre-cropped and resized to the model size
(:mod:`decart_cli.media.adapt`). A camera that stops delivering is re-opened until
``stall_timeout`` has passed since its last frame, then the source fails with a MediaError.

The device object is injectable (``camera_factory``): anything with ``isOpened() read() set()
get() release()`` like ``cv2.VideoCapture``. Tests use a fake; it is the only fake in the suite.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import cv2

from decart_cli.core.negotiate import Mode, fallback_chain, mode_note, pick_best
from decart_cli.errors import MediaError
from decart_cli.media.devices import CameraInfo, describe_cameras, list_cameras
from decart_cli.media.frame_source import FrameSource

if TYPE_CHECKING:
    from decart_cli.media.source import MirrorMode

__all__ = ["CameraFactory", "CameraLike", "CameraSource", "default_camera_factory", "negotiate", "resolve_camera"]

_DEV_INDEX = re.compile(r"^/dev/video(\d+)$")
_REOPEN_DELAY = 0.2  # between re-open attempts of a stalled camera
_MAX_FAILED_READS = 5  # consecutive failed reads before re-opening the device


class CameraLike(Protocol):
    """The subset of ``cv2.VideoCapture`` the camera source uses."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name
    def read(self) -> tuple[bool, Any]: ...
    def set(self, prop: int, value: float) -> bool: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


CameraFactory = Callable[[int | str], CameraLike]


def default_camera_factory(device: int | str) -> CameraLike:
    """Open ``device`` (index or ``/dev/videoN``) with OpenCV, preferring V4L2 on Linux.

    OpenCV's own warnings ("can't open camera by index") are silenced: failures become one
    MediaError line instead.
    """
    linux = sys.platform.startswith("linux")
    if isinstance(device, str) and (m := _DEV_INDEX.match(device)) is not None:
        device = int(m.group(1))  # OpenCV 5's V4L2 backend opens by index, not by name
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2 if linux else cv2.CAP_ANY)
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if cap.isOpened():
        # Many UVC cameras reach 720p at 30 fps only in MJPG (raw YUYV tops out near 10 fps).
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
    return cap


def resolve_camera(camera: str, cameras: list[CameraInfo]) -> tuple[int | str, CameraInfo | None]:
    """Map a parsed ``--camera`` value to what the factory opens, plus what we know about it.

    Raises:
        MediaError: ``front``/``back`` asked but no such camera (naming the cameras found).
    """
    if camera in ("front", "back"):
        if not cameras:
            raise MediaError(describe_cameras(cameras))
        by_name = [c for c in cameras if c.facing == camera and c.facing_from == "name"]
        by_order = [c for c in cameras if c.facing == camera]
        if not by_order:
            raise MediaError(f"no {camera} camera; {describe_cameras(cameras)}", hint="pick one with --camera INDEX")
        chosen = (by_name or by_order)[0]
        return (chosen.path or chosen.index), chosen
    if camera.isdigit():
        index = int(camera)
        known = next((c for c in cameras if c.index == index), None)
        return (known.path if known and known.path else index), known
    known = next((c for c in cameras if c.path == camera), None)
    return camera, known


def _granted(cap: CameraLike, fallback_fps: float) -> Mode:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return Mode(
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        float(fps) if fps and fps > 0 else fallback_fps,
    )


def _request(cap: CameraLike, width: int, height: int, fps: float) -> Mode:
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    cap.set(cv2.CAP_PROP_FPS, fps)
    return _granted(cap, fps)


def negotiate(cap: CameraLike, width: int, height: int, fps: float) -> Mode:
    """Set the best mode the device accepts for a ``width × height @ fps`` model.

    Tries the exact size, then the fallback chain; the first size granted exactly wins. When none
    is granted exactly, the best of the modes the device offered instead is requested again.

    Returns:
        the mode the device reports after negotiation (the caller confirms it from a frame).
    """
    offered: list[Mode] = []
    for w, h in fallback_chain(width, height):
        got = _request(cap, w, h, fps)
        if got.size == (w, h) and got.width > 0:
            return got
        if got.width > 0 and got not in offered:
            offered.append(got)
    best = pick_best(offered, width, height, fps)
    if best is None:
        return _granted(cap, fps)
    return _request(cap, best.width, best.height, fps)


class CameraSource(FrameSource):
    """Frames from a local camera, read on a daemon thread."""

    self_paced = True  # real time by itself: frames go out as they come (the pacer adds no wait)

    hang_watchdog = True

    _cap: CameraLike | None
    _factory: CameraFactory
    _device: int | str
    _mode: Mode

    @classmethod
    def open(
        cls,
        camera: str,
        *,
        width: int,
        height: int,
        fps: float,
        mirror: MirrorMode,
        camera_factory: CameraFactory | None = None,
        cameras: list[CameraInfo] | None = None,
        stall_timeout: float = 3.0,
        stamp_marker: bool = False,
    ) -> CameraSource:
        """Open, negotiate, read a first frame and start capturing.

        Raises:
            MediaError: cannot open (naming the device and the cameras found), or no first frame
                within ``stall_timeout``.
        """
        from decart_cli.media.source import SourceInfo, should_mirror

        factory = camera_factory or default_camera_factory
        if cameras is None:
            cameras = list_cameras()
        device, known = resolve_camera(camera, cameras)
        name = known.name if known else (f"camera {device}" if isinstance(device, int) else str(device))
        label = f"{device} ({name})" if known else str(device)
        cap = _open(factory, device, label, cameras)
        try:
            asked = Mode(width, height, float(fps))
            negotiate(cap, width, height, fps)
            first = _first_frame(cap, label, stall_timeout)
            reported = _granted(cap, float(fps))
            fh, fw = first.shape[:2]
            device_mode = Mode(fw, fh, reported.fps)  # trust the frame over get()
        except BaseException:
            cap.release()
            raise
        sent = Mode(width, height, min(float(fps), device_mode.fps) if device_mode.fps else float(fps))
        facing = known.facing if known else None
        info = SourceInfo(
            kind="camera",
            name=name,
            facing=facing,
            asked=asked.as_tuple(),
            device=device_mode.as_tuple(),
            sent=sent.as_tuple(),
            mirrored=should_mirror(mirror, "camera", facing),
            mode_note=mode_note(asked, device_mode, sent),
        )
        src = cls(info, fps=fps, stall_timeout=stall_timeout, stamp_marker=stamp_marker)
        src._cap, src._factory, src._device, src._mode = cap, factory, device, device_mode
        src._label, src._cameras = label, cameras
        t = time.perf_counter()
        if src._admit(t):
            src._publish(first, t)
        src.start()
        return src

    _label: str
    _cameras: list[CameraInfo]

    def _run(self) -> None:
        last_good = time.perf_counter()
        failures = 0
        while not self._stop.is_set():
            cap = self._cap
            ok, frame = cap.read() if cap is not None else (False, None)
            now = time.perf_counter()
            if self._stop.is_set():
                return
            if ok and frame is not None:
                last_good, failures = now, 0
                if self._admit(now):
                    self._publish(frame, now)
                continue
            failures += 1
            if now - last_good >= self.stall_timeout:
                self.fail(
                    MediaError(
                        f"camera {self._label} stopped delivering frames for {self.stall_timeout:g} s",
                        hint="check the cable / that no other application uses it, then restart",
                    )
                )
                return
            if cap is None or failures >= _MAX_FAILED_READS:
                self._reopen()
                failures = 0
            elif not self._sleep(0.02):
                return

    def _reopen(self) -> None:
        """Release and re-open the device (unplug/replug), restoring the negotiated mode."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if not self._sleep(_REOPEN_DELAY):
            return
        try:
            cap = self._factory(self._device)
        except Exception:
            return
        if not cap.isOpened():
            cap.release()
            return
        _request(cap, self._mode.width, self._mode.height, self.fps)
        self._cap = cap

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


def _open(factory: CameraFactory, device: int | str, label: str, cameras: list[CameraInfo]) -> CameraLike:
    try:
        cap = factory(device)
    except Exception as exc:
        raise MediaError(f"cannot open camera {label}: {exc}; {describe_cameras(cameras)}") from exc
    if not cap.isOpened():
        cap.release()
        raise MediaError(
            f"cannot open camera {label}; {describe_cameras(cameras)}",
            hint="check it is connected and not in use by another application" if cameras else None,
        )
    return cap


def _first_frame(cap: CameraLike, label: str, timeout: float) -> Any:
    deadline = time.perf_counter() + timeout
    while True:
        ok, frame = cap.read()
        if ok and frame is not None:
            return frame
        if time.perf_counter() >= deadline:
            raise MediaError(
                f"camera {label} opened but delivered no frame in {timeout:g} s",
                hint="check that no other application is using it",
            )
        time.sleep(0.05)
