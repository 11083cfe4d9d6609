"""Source selection: --camera/--input parsing, camera discovery, mode negotiation with a fake device,
mirroring, and camera faults (cannot open, stalls, recovers)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from test_media_fakes import Factory, FakeCamera

from decart_cli.errors import MediaError, UsageError
from decart_cli.media import devices, source
from decart_cli.media.devices import CameraInfo
from decart_cli.media.source import MirrorMode, SourceSpec, open_source, should_mirror

FRONT = CameraInfo(0, "/dev/video0", "Integrated Camera: Integrated C", "front", "name")
BACK = CameraInfo(2, "/dev/video2", "Rear Camera", "back", "name")


def test_all_is_pinned() -> None:
    """source.py exports exactly the contract's names."""
    assert sorted(source.__all__) == sorted(
        ["FrameSource", "MirrorMode", "SourceInfo", "SourceSpec", "open_source", "should_mirror"]
    )


@pytest.mark.parametrize(
    "module",
    [
        "adapt",
        "camera",
        "devices",
        "filesource",
        "frame_source",
        "marker",
        "recorder",
        "source",
        "synthetic",
        "track",
        "window",
    ],
)
def test_media_modules_export_what_they_define(module: str) -> None:
    """Every media module has an explicit __all__ without duplicates whose names all exist."""
    import importlib

    mod = importlib.import_module(f"decart_cli.media.{module}")
    assert len(mod.__all__) == len(set(mod.__all__))
    assert all(hasattr(mod, name) for name in mod.__all__)


# ----------------------------------------------------------------- SourceSpec.parse


@pytest.mark.parametrize(
    ("camera", "expected"),
    [
        (None, "front"),
        ("front", "front"),
        ("BACK", "back"),
        ("user", "front"),
        ("environment", "back"),
        ("test", "test"),
        ("0", "0"),
        ("07", "7"),
        ("/dev/video2", "/dev/video2"),
    ],
)
def test_parse_camera_forms(camera: str | None, expected: str) -> None:
    """Every documented --camera form is accepted and normalised; no flag means the front camera."""
    spec = SourceSpec.parse(camera, None, False)
    assert spec.camera == expected and spec.input_file is None and spec.loop is False


@pytest.mark.parametrize("bad", ["sideways", "-1", "/dev/sda", "1.5", ""])
def test_parse_bad_camera_names_value_and_forms(bad: str) -> None:
    """A bad --camera is a UsageError naming the value and listing the valid forms."""
    with pytest.raises(UsageError) as info:
        SourceSpec.parse(bad, None, False)
    assert repr(bad) in info.value.message
    assert info.value.hint is not None and "front, back" in info.value.hint and "test" in info.value.hint


def test_parse_input_file(tmp_path: Path) -> None:
    """--input FILE (+ --loop) gives a file spec."""
    f = tmp_path / "clip.mp4"
    f.write_bytes(b"x")
    spec = SourceSpec.parse(None, str(f), True)
    assert spec.input_file == f and spec.camera is None and spec.loop and spec.kind == "file"


def test_parse_input_errors(tmp_path: Path) -> None:
    """Missing file, a directory, both flags, and --loop without --input are UsageErrors naming the value."""
    with pytest.raises(UsageError, match="nope.mp4' does not exist"):
        SourceSpec.parse(None, str(tmp_path / "nope.mp4"), False)
    with pytest.raises(UsageError, match="is a directory"):
        SourceSpec.parse(None, str(tmp_path), False)
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x")
    with pytest.raises(UsageError, match="both given"):
        SourceSpec.parse("front", str(f), False)
    with pytest.raises(UsageError, match="--loop only applies"):
        SourceSpec.parse("test", None, True)


# ----------------------------------------------------------------- discovery


@pytest.mark.parametrize(
    ("name", "facing"),
    [
        ("Integrated Camera", "front"),
        ("FaceTime HD Camera", "front"),
        ("USB2.0 HD UVC WebCam: User Facing", "front"),
        ("Rear Camera", "back"),
        ("camera2: environment", "back"),
        ("HD Pro Webcam C920", None),
    ],
)
def test_guess_facing_from_name(name: str, facing: str | None) -> None:
    """Facing is read from the device name when it says so."""
    assert devices.guess_facing(name) == facing


def test_list_cameras_here_is_empty_and_fast() -> None:
    """On this camera-less machine list_cameras() returns [] without error, quickly."""
    t0 = time.perf_counter()
    cams = devices.list_cameras()
    assert isinstance(cams, list)
    if not Path("/dev/video0").exists():
        assert cams == []
    assert time.perf_counter() - t0 < 1.0


def test_linux_listing_skips_metadata_nodes_and_falls_back_by_order(tmp_path: Path) -> None:
    """/dev/video* nodes are named from sysfs, metadata nodes (index 1) skipped, facing by name or order."""
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for n, (name, index) in {0: ("HD Pro Webcam C920", 0), 1: ("HD Pro Webcam C920", 1), 2: ("Other Cam", 0)}.items():
        (dev / f"video{n}").write_bytes(b"")
        (sysfs / f"video{n}").mkdir(parents=True)
        (sysfs / f"video{n}" / "name").write_text(name + "\n")
        (sysfs / f"video{n}" / "index").write_text(f"{index}\n")
    (dev / "videoX").write_bytes(b"")  # not a node name
    cams = devices._list_linux(dev, sysfs)
    assert [(c.index, c.path, c.name, c.facing, c.facing_from) for c in cams] == [
        (0, str(dev / "video0"), "HD Pro Webcam C920", "front", "order"),
        (2, str(dev / "video2"), "Other Cam", "back", "order"),
    ]
    assert "cameras found: 0 " in devices.describe_cameras(cams)
    assert devices.describe_cameras([]) == "no cameras found; use --camera test or --input FILE"


# ----------------------------------------------------------------- negotiation with a fake device

MODEL: dict[str, Any] = {"width": 1088, "height": 624, "fps": 30}


def _open(cam_modes: list[tuple[int, int, float]], **kw: object) -> tuple[source.FrameSource, FakeCamera]:
    cam = FakeCamera(cam_modes)
    kw.setdefault("cameras", [])
    src = open_source(SourceSpec.parse("0", None), camera_factory=Factory(cam), **MODEL, **kw)  # type: ignore[arg-type]
    return src, cam


def _first(src: source.FrameSource) -> np.ndarray:
    deadline = time.perf_counter() + 3
    while (img := src.latest_frame()) is None:
        assert time.perf_counter() < deadline
        time.sleep(0.01)
    return img


def test_exact_mode_is_used_when_offered() -> None:
    """A device offering the model's size gets exactly that request and no resize."""
    src, cam = _open([(640, 480, 30), (1088, 624, 30), (1280, 720, 30)])
    try:
        assert src.info.device == (1088, 624, 30.0) and src.info.sent == (1088, 624, 30.0)
        assert src.info.asked == (1088, 624, 30.0)
        assert "model size" in src.info.mode_note
        assert _first(src).shape == (624, 1088, 3)
    finally:
        src.close()
    assert cam.released.is_set()


def test_fallback_to_nearest_16_9_then_crop_and_downscale() -> None:
    """A 720p-only webcam is asked 1088×624 first, falls back to 1280×720, and frames are cropped+resized."""
    src, cam = _open([(640, 480, 30), (1280, 720, 30), (1920, 1080, 30)])
    try:
        assert src.info.device == (1280, 720, 30.0)
        widths = [v for p, v in cam.requests if p == 3]  # CAP_PROP_FRAME_WIDTH
        assert widths[:2] == [1088, 1280]
        assert "centre-crop 1255×720" in src.info.mode_note
        img = _first(src)
        assert img.shape == (624, 1088, 3)
        _assert_square_not_stretched(img)
    finally:
        src.close()


def test_odd_aspect_device_is_cropped_never_stretched() -> None:
    """A device that only gives 800×800 still yields 1088×624 frames with undistorted geometry."""
    src, _ = _open([(800, 800, 15)])
    try:
        assert src.info.device == (800, 800, 15.0)
        assert src.info.sent == (1088, 624, 15.0)
        assert "upscale" in src.info.mode_note and "only 15 fps" in src.info.mode_note
        img = _first(src)
        assert img.shape == (624, 1088, 3)
        _assert_square_not_stretched(img)
    finally:
        src.close()


def _assert_square_not_stretched(img: np.ndarray) -> None:
    white = np.all(img > 230, axis=2)
    ys, xs = np.nonzero(white)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert abs(w - h) <= 3, f"square became {w}×{h}"
    assert abs((xs.max() + xs.min()) / 2 - img.shape[1] / 2) < 3  # still centred


def test_faster_device_frames_are_dropped_not_queued() -> None:
    """A 120 fps device feeding a 30 fps model: at most 30 frames/s pass the gate, the rest are dropped."""
    t0 = time.perf_counter()
    src, _ = _open([(1088, 624, 120)])
    try:
        time.sleep(0.6)
        captured, over = src.frames_captured, src.frames_over_fps
        elapsed = time.perf_counter() - t0
    finally:
        src.close()
    admitted = captured - over
    print(f"120 fps device: captured {captured} in {elapsed:.2f} s, admitted {admitted}, dropped {over} over 30 fps")
    assert over > 0
    assert admitted <= 30 * elapsed + 2
    assert "120 fps capped to 30" in src.info.mode_note


# ----------------------------------------------------------------- mirroring


@pytest.mark.parametrize(
    ("mode", "kind", "facing", "expected"),
    [
        (MirrorMode.AUTO, "camera", "front", True),
        (MirrorMode.AUTO, "camera", "back", False),
        (MirrorMode.AUTO, "camera", None, False),
        (MirrorMode.AUTO, "test", None, False),
        (MirrorMode.AUTO, "file", None, False),
        (MirrorMode.ON, "test", None, True),
        (MirrorMode.ON, "camera", "back", True),
        (MirrorMode.OFF, "camera", "front", False),
    ],
)
def test_should_mirror(mode: MirrorMode, kind: str, facing: str | None, expected: bool) -> None:
    """auto mirrors only a front camera; on always; off never."""
    assert should_mirror(mode, kind, facing) is expected


def _red_side(img: np.ndarray) -> str:
    left, right = img[:, :20, 2].mean() - img[:, :20, 0].mean(), img[:, -20:, 2].mean() - img[:, -20:, 0].mean()
    assert abs(left - right) > 100, "no red band on either side"
    return "left" if left > right else "right"


@pytest.mark.parametrize(
    ("camera", "cameras", "mode", "flipped"),
    [
        ("front", [FRONT, BACK], MirrorMode.AUTO, True),
        ("back", [FRONT, BACK], MirrorMode.AUTO, False),
        ("0", [], MirrorMode.AUTO, False),  # unknown facing
        ("back", [FRONT, BACK], MirrorMode.ON, True),
        ("front", [FRONT, BACK], MirrorMode.OFF, False),
    ],
)
def test_camera_mirroring_flips_pixels_exactly_when_expected(
    camera: str, cameras: list[CameraInfo], mode: MirrorMode, flipped: bool
) -> None:
    """The outgoing picture has the device's left-edge red band on the right iff mirroring applies."""
    factory = Factory(FakeCamera([(1280, 720, 30)]))
    src = open_source(SourceSpec.parse(camera, None), **MODEL, mirror=mode, camera_factory=factory, cameras=cameras)
    try:
        assert src.info.mirrored is flipped
        assert _red_side(_first(src)) == ("right" if flipped else "left")
        if camera in ("front", "back"):
            expected = FRONT if camera == "front" else BACK
            assert factory.opened == [expected.path] and src.info.facing == expected.facing
    finally:
        src.close()


# ----------------------------------------------------------------- faults


def test_unopenable_camera_names_device_and_cameras_found() -> None:
    """A camera that cannot be opened is a MediaError naming it and listing the cameras found."""
    with pytest.raises(MediaError) as info:
        open_source(
            SourceSpec.parse("2", None),
            **MODEL,
            camera_factory=Factory(FakeCamera([(640, 480, 30)], opened=False)),
            cameras=[FRONT, BACK],
        )
    msg = info.value.message
    assert "cannot open camera /dev/video2" in msg and "Rear Camera" in msg and "cameras found: 0 /dev/video0" in msg


def test_no_cameras_at_all() -> None:
    """Asking for the front camera on a machine without cameras says to use --camera test or --input."""
    with pytest.raises(MediaError, match=r"^no cameras found; use --camera test or --input FILE$"):
        open_source(SourceSpec.parse(None, None), **MODEL, cameras=[])


def test_no_back_camera_lists_what_exists() -> None:
    """--camera back with only a front camera names the cameras found."""
    with pytest.raises(MediaError, match="no back camera; cameras found: 0 /dev/video0"):
        open_source(SourceSpec.parse("back", None), **MODEL, cameras=[FRONT])


def test_camera_that_never_delivers_a_frame() -> None:
    """A camera that opens but gives no first frame fails within the stall timeout, naming it."""
    cam = FakeCamera([(1280, 720, 30)], frames=0)
    t0 = time.perf_counter()
    with pytest.raises(MediaError, match="camera 0 opened but delivered no frame"):
        open_source(SourceSpec.parse("0", None), **MODEL, camera_factory=Factory(cam), cameras=[], stall_timeout=0.3)
    assert time.perf_counter() - t0 < 2 and cam.released.is_set()


def test_stalled_camera_is_reopened_then_fails_with_clear_error() -> None:
    """A camera that stops mid-stream is re-opened for stall_timeout, then error is set and the source finished."""
    opened: list[int | str] = []

    def factory(device: int | str) -> FakeCamera:
        opened.append(device)
        return FakeCamera([(1280, 720, 30)], frames=5 if len(opened) == 1 else 0)

    src = open_source(SourceSpec.parse("0", None), **MODEL, camera_factory=factory, cameras=[], stall_timeout=0.6)
    try:
        deadline = time.perf_counter() + 5
        while not src.finished:
            assert time.perf_counter() < deadline
            time.sleep(0.02)
        assert isinstance(src.error, MediaError)
        assert "camera 0 stopped delivering frames for 0.6 s" in src.error.message
        assert len(opened) >= 2  # re-open attempted
        assert src.frames_captured == 5
    finally:
        src.close()


def test_camera_recovers_after_a_short_unplug() -> None:
    """A camera that fails briefly and works again after a re-open keeps the source alive."""
    opened: list[int | str] = []

    def factory(device: int | str) -> FakeCamera:
        opened.append(device)
        return FakeCamera([(1280, 720, 30)], frames=3 if len(opened) == 1 else None)

    src = open_source(SourceSpec.parse("0", None), **MODEL, camera_factory=factory, cameras=[], stall_timeout=2.0)
    try:
        deadline = time.perf_counter() + 5
        while src.frames_captured < 15:
            assert time.perf_counter() < deadline and not src.finished
            time.sleep(0.02)
        assert src.error is None and len(opened) == 2
    finally:
        src.close()


async def test_hanging_read_fails_the_track() -> None:
    """A camera whose read() blocks forever is detected by the track: MediaError set, recv ends."""
    cam = FakeCamera([(1088, 624, 30)], frames=2, hang=True)
    src = open_source(SourceSpec.parse("0", None), **MODEL, camera_factory=Factory(cam), cameras=[], stall_timeout=0.3)
    track = src.track
    try:
        await track.recv()
        with pytest.raises(MediaStreamError):
            async with asyncio.timeout(5):
                while True:
                    await track.recv()
        assert src.finished and isinstance(src.error, MediaError)
        assert "delivered no frame" in src.error.message
        assert track.readyState == "ended"
    finally:
        src.close()
    assert src.closed and cam.released.is_set()


def test_front_by_name_beats_front_by_order() -> None:
    """--camera front prefers a camera whose name says front over the first-camera fallback."""
    from decart_cli.media.camera import resolve_camera

    usb = CameraInfo(0, "/dev/video0", "HD Pro Webcam C920", "front", "order")
    laptop = CameraInfo(2, "/dev/video2", "Integrated Camera", "front", "name")
    assert resolve_camera("front", [usb, laptop]) == ("/dev/video2", laptop)
    assert resolve_camera("0", [usb, laptop]) == ("/dev/video0", usb)
    assert resolve_camera("5", [usb]) == (5, None)
    assert resolve_camera("/dev/video9", [usb]) == ("/dev/video9", None)


def test_source_info_json() -> None:
    """SourceInfo.to_json reports asked / device / sent as lists and the mode note."""
    src, _ = _open([(1280, 720, 60)], mirror=MirrorMode.ON)
    try:
        info = src.info.to_json()
    finally:
        src.close()
    assert info == {
        "kind": "camera",
        "name": "camera 0",
        "facing": None,
        "asked": [1088, 624, 30.0],
        "device": [1280, 720, 60.0],
        "sent": [1088, 624, 30.0],
        "mirrored": True,
        "mode_note": "camera gives 1280×720: centre-crop 1255×720, downscale to 1088×624; "
        "60 fps capped to 30 (extra frames dropped)",
    }
