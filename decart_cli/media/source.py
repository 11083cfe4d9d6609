"""Where outgoing frames come from: camera, video file or the synthetic test pattern.

``SourceSpec.parse`` validates the ``--camera`` / ``--input`` / ``--loop`` flags before any I/O;
``open_source`` opens the device or file (blocking; call it before connecting or via
``asyncio.to_thread``) and returns a started :class:`FrameSource`. Every source produces frames on
its own thread into a one-slot buffer (newest frame wins, never a queue); the aiortc track
(:mod:`decart_cli.media.track`) paces them out at the model's fps.

Importing this module is cheap: numpy, cv2, av and aiortc are imported only when a source opens.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from decart_cli.errors import UsageError
from decart_cli.media.frame_source import FrameSource

if TYPE_CHECKING:
    from decart_cli.media.camera import CameraLike
    from decart_cli.media.devices import CameraInfo

__all__ = ["FrameSource", "MirrorMode", "SourceInfo", "SourceSpec", "open_source", "should_mirror"]

CAMERA_FORMS = "front, back, an index (0, 1, …), /dev/videoN or test"
_DEV_PATH = re.compile(r"^/dev/video\d+$")
_ALIASES = {"user": "front", "environment": "back", "rear": "back"}


class MirrorMode(enum.Enum):
    """``--mirror``: flip outgoing frames horizontally before encoding (the seed's front-camera practice)."""

    AUTO = "auto"  # mirror only a camera known to face the user
    ON = "on"
    OFF = "off"


def should_mirror(mode: MirrorMode, kind: str, facing: str | None) -> bool:
    """Whether outgoing frames are flipped.

    ``on`` always flips; ``off`` never; ``auto`` flips only a camera whose facing is ``"front"``
    (from its name, or the first camera by the order fallback). Test and file inputs are never
    flipped under ``auto``.
    """
    if mode is MirrorMode.ON:
        return True
    if mode is MirrorMode.OFF:
        return False
    return kind == "camera" and facing == "front"


@dataclass(frozen=True)
class SourceSpec:
    """What the user asked to stream from. Build with :meth:`parse`.

    Attributes:
        camera: ``"front"``, ``"back"``, ``"test"``, a decimal index ``"N"`` or ``"/dev/videoN"``;
            ``None`` when streaming a file.
        input_file: the video file for ``--input``; ``None`` for a camera.
        loop: restart the file at its end (only with ``input_file``).
    """

    camera: str | None
    input_file: Path | None
    loop: bool = False

    @classmethod
    def parse(cls, camera: str | None, input_file: str | None, loop: bool = False) -> SourceSpec:
        """Validate the flags. Neither given → the front camera.

        Raises:
            UsageError: unknown camera form, negative index, both ``--camera`` and ``--input``,
                missing/unreadable input file, ``--loop`` without ``--input``.
        """
        if camera is not None and input_file is not None:
            raise UsageError(
                f"--camera {camera!r} and --input {input_file!r} both given",
                hint="choose one source: a camera or a video file",
            )
        if input_file is not None:
            path = Path(input_file).expanduser()
            if not path.is_file():
                what = "is a directory" if path.is_dir() else "does not exist"
                raise UsageError(f"--input {input_file!r} {what}", hint="give a video file (mp4, webm, mov, …)")
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                raise UsageError(f"--input {input_file!r} cannot be read: {exc.strerror}") from exc
            return cls(camera=None, input_file=path, loop=loop)
        if loop:
            raise UsageError("--loop only applies to --input FILE", hint="add --input FILE or drop --loop")
        return cls(camera=_normalise_camera("front" if camera is None else camera), input_file=None, loop=False)

    @property
    def kind(self) -> str:
        """``"file"``, ``"test"`` or ``"camera"``."""
        if self.input_file is not None:
            return "file"
        return "test" if self.camera == "test" else "camera"


def _normalise_camera(value: str) -> str:
    v = value.strip().lower()
    v = _ALIASES.get(v, v)
    if v in ("front", "back", "test"):
        return v
    if re.fullmatch(r"[+-]?\d+", v):
        if int(v) < 0:
            raise UsageError(f"--camera {value!r}: a camera index cannot be negative", hint=f"use {CAMERA_FORMS}")
        return str(int(v))
    if _DEV_PATH.match(value.strip()):
        return value.strip()
    raise UsageError(f"--camera {value!r} is not a camera", hint=f"use {CAMERA_FORMS}")


@dataclass(frozen=True)
class SourceInfo:
    """How the source was set up, for the status line and ``--json`` output.

    Attributes:
        kind: ``"camera"``, ``"file"`` or ``"test"``.
        name: device name, file name or ``"test pattern"``.
        facing: ``"front"``, ``"back"`` or ``None``.
        asked: ``(w, h, fps)`` requested (the model's constraints).
        device: ``(w, h, fps)`` the device or file actually gives.
        sent: ``(w, h, fps)`` that goes to the encoder (always the model's size).
        mirrored: outgoing frames are flipped horizontally.
        mode_note: one line explaining any crop / resize / fps cap.
    """

    kind: str
    name: str
    facing: str | None
    asked: tuple[int, int, float]
    device: tuple[int, int, float]
    sent: tuple[int, int, float]
    mirrored: bool
    mode_note: str

    def to_json(self) -> dict[str, object]:
        """The info as a JSON-ready dict."""
        return {
            "kind": self.kind,
            "name": self.name,
            "facing": self.facing,
            "asked": list(self.asked),
            "device": list(self.device),
            "sent": list(self.sent),
            "mirrored": self.mirrored,
            "mode_note": self.mode_note,
        }


def open_source(
    spec: SourceSpec,
    *,
    width: int,
    height: int,
    fps: int,
    mirror: MirrorMode = MirrorMode.AUTO,
    camera_factory: Callable[[int | str], CameraLike] | None = None,
    cameras: list[CameraInfo] | None = None,
    stall_timeout: float = 3.0,
    stamp_marker: bool = False,
) -> FrameSource:
    """Open and start the source ``spec`` producing ``width × height`` frames at up to ``fps``.

    Blocking (opens the device, negotiates its mode, reads a first frame): call before connecting
    or through ``asyncio.to_thread``. The caller must :meth:`FrameSource.close` it.

    Args:
        camera_factory: opens a camera by index or path (default ``cv2.VideoCapture``); tests pass
            a fake with ``isOpened/read/set/get/release``.
        cameras: the known cameras (default :func:`~decart_cli.media.devices.list_cameras`),
            used to resolve ``front``/``back``, facing and error messages.
        stall_timeout: a camera that delivers no frame for this long (re-opened meanwhile) fails.
        stamp_marker: stamp the latency frame-id marker (latency-marker.md) into every frame.

    Raises:
        MediaError: the camera cannot be opened (naming it and the cameras found), delivers no
            frame, or the file is not a readable video.
    """
    if spec.input_file is not None:
        from decart_cli.media.filesource import FileSource

        return FileSource.open(
            spec.input_file,
            loop=spec.loop,
            width=width,
            height=height,
            fps=fps,
            mirrored=should_mirror(mirror, "file", None),
            stamp_marker=stamp_marker,
        )
    if spec.camera is None or spec.camera == "test":
        from decart_cli.media.synthetic import SyntheticSource

        return SyntheticSource.open(
            width=width, height=height, fps=fps, mirrored=should_mirror(mirror, "test", None), stamp_marker=stamp_marker
        )
    from decart_cli.media.camera import CameraSource

    return CameraSource.open(
        spec.camera,
        width=width,
        height=height,
        fps=fps,
        mirror=mirror,
        camera_factory=camera_factory,
        cameras=cameras,
        stall_timeout=stall_timeout,
        stamp_marker=stamp_marker,
    )
