"""Outgoing frames: the synthetic test source, the paced newest-frame track, file input, per-frame costs."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from test_media_fakes import scene

from decart_cli.errors import MediaError
from decart_cli.media import marker
from decart_cli.media.adapt import adapt
from decart_cli.media.source import MirrorMode, SourceSpec, open_source
from decart_cli.media.synthetic import LEFT_BAR_WIDTH, TestPattern

W, H, FPS = 1088, 624, 30


def _bgr(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="bgr24")


def _bar_side(img: np.ndarray) -> str:
    """Where the test pattern's red bar is: 'left' or 'right'."""
    mid = img[100:-100]
    left = mid[:, 4 : LEFT_BAR_WIDTH - 4, 2].mean() - mid[:, 4 : LEFT_BAR_WIDTH - 4, 0].mean()
    right = mid[:, -LEFT_BAR_WIDTH + 4 : -4, 2].mean() - mid[:, -LEFT_BAR_WIDTH + 4 : -4, 0].mean()
    assert max(left, right) > 150 and min(left, right) < 100, (left, right)
    return "left" if left > right else "right"


async def test_test_source_track_sizes_pts_and_pacing() -> None:
    """The test track yields yuv420p frames of exactly the model size, 90 kHz pts, at no more than fps."""
    src = open_source(SourceSpec.parse("test", None), width=W, height=H, fps=FPS)
    try:
        assert src.info.kind == "test" and src.info.sent == (W, H, 30.0) and not src.info.mirrored
        track = src.track
        await track.recv()  # warm-up: the first frame comes at once
        t0 = time.perf_counter()
        frames = [await track.recv() for _ in range(30)]
        elapsed = time.perf_counter() - t0
    finally:
        src.close()
    rate = 30 / elapsed
    print(f"\ntest track: 30 frames in {elapsed:.3f} s = {rate:.1f} fps (model fps {FPS})")
    assert {(f.width, f.height, f.format.name) for f in frames} == {(W, H, "yuv420p")}
    assert all(f.time_base == Fraction(1, 90_000) for f in frames)
    pts = [f.pts for f in frames]
    assert pts == sorted(set(pts))
    steps = np.diff(pts) / 90_000
    print(f"pts step mean {steps.mean() * 1000:.1f} ms (ideal {1000 / FPS:.1f})")
    assert rate <= FPS * 1.1  # never faster than the model's fps
    assert src.frames_sent == 31
    # The pattern moves: consecutive frames differ.
    assert not np.array_equal(_bgr(frames[0]), _bgr(frames[5]))


async def test_track_serves_newest_frame_after_a_pause() -> None:
    """A consumer that pauses gets the newest frame next (older ones dropped), not a backlog."""
    src = open_source(SourceSpec.parse("test", None), width=W, height=H, fps=FPS, stamp_marker=True)
    try:
        track = src.track
        first = marker.read(_bgr(await track.recv()))
        await asyncio.sleep(0.5)
        after = marker.read(_bgr(await track.recv()))
        newest = src.take_newer(0)
    finally:
        src.close()
    assert first is not None and after is not None and newest is not None
    # ~15 frames were produced during the pause: the track skipped to the newest (a queue would give +1).
    assert after - first >= 5
    assert newest.marker_id is not None and newest.marker_id - after <= 2
    assert src.frames_dropped >= 4
    assert set(src.marker_sent) == {first, after}


@pytest.mark.parametrize(
    ("mode", "side"), [(MirrorMode.AUTO, "left"), (MirrorMode.OFF, "left"), (MirrorMode.ON, "right")]
)
async def test_test_pattern_mirroring(mode: MirrorMode, side: str) -> None:
    """The test source is flipped only with --mirror on (auto never flips a test input); the marker is not."""
    src = open_source(SourceSpec.parse("test", None), width=W, height=H, fps=FPS, mirror=mode, stamp_marker=True)
    try:
        img = _bgr(await src.track.recv())
    finally:
        src.close()
    assert _bar_side(img) == side
    assert src.info.mirrored is (side == "right")
    assert marker.read(img) is not None  # stamped after mirroring: still readable


def test_pattern_is_asymmetric_and_at_model_size() -> None:
    """The pattern is the model size and differs from its own mirror image."""
    img = TestPattern(W, H, FPS).render(0)
    assert img.shape == (H, W, 3)
    assert _bar_side(img) == "left"
    assert not np.array_equal(img, img[:, ::-1])


async def test_closed_source_ends_the_track() -> None:
    """After close(), recv raises MediaStreamError and the track is ended."""
    src = open_source(SourceSpec.parse("test", None), width=320, height=192, fps=FPS)
    track = src.track
    await track.recv()
    src.close()
    src.close()  # idempotent
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert src.finished and src.error is None and track.readyState == "ended"


# ----------------------------------------------------------------- file input


def _make_video(path: Path, frames: int, fps: int, size: tuple[int, int] = (640, 360)) -> None:
    """Write a small H.264 file whose frames carry the scene() picture (red band on the left)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for n in range(frames):
            frame = av.VideoFrame.from_ndarray(scene(size[0], size[1], n), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


async def _drain(track: object, limit: float = 10.0) -> list[av.VideoFrame]:
    frames: list[av.VideoFrame] = []
    async with asyncio.timeout(limit):
        while True:
            try:
                frames.append(await track.recv())  # type: ignore[attr-defined]
            except MediaStreamError:
                return frames


async def test_file_input_plays_once_at_file_rate_and_finishes_cleanly(tmp_path: Path) -> None:
    """--input plays at the file's fps, adapts to the model size, then finishes with no error."""
    clip = tmp_path / "clip.mp4"
    _make_video(clip, frames=15, fps=15)
    src = open_source(SourceSpec.parse(None, str(clip)), width=W, height=H, fps=FPS)
    try:
        assert src.info.kind == "file" and src.info.name == "clip.mp4" and src.info.device == (640, 360, 15.0)
        assert src.info.sent == (W, H, 15.0) and not src.info.mirrored
        t0 = time.perf_counter()
        waiter = asyncio.ensure_future(src.wait_finished())
        frames = await _drain(src.track)
        elapsed = time.perf_counter() - t0
        async with asyncio.timeout(2):
            await waiter  # woken by the producer thread at end of file
    finally:
        src.close()
    print(f"\nfile 15 frames @15 fps played in {elapsed:.2f} s, sent {len(frames)}")
    assert src.finished and src.error is None
    assert len(frames) == 15  # a file loses no frame before the track starts
    assert {(f.width, f.height) for f in frames} == {(W, H)}
    assert elapsed > 0.6  # paced at 15 fps, not decoded as fast as possible
    assert _red_left(_bgr(frames[-1]))


def _red_left(img: np.ndarray) -> bool:
    return bool(img[:, :30, 2].mean() > 180 and img[:, -30:, 2].mean() < 80)


async def test_file_input_loops_and_caps_at_model_fps(tmp_path: Path) -> None:
    """With --loop the file restarts; a 60 fps file feeding a 30 fps model has frames dropped."""
    clip = tmp_path / "fast.mp4"
    _make_video(clip, frames=12, fps=60, size=(320, 180))
    src = open_source(SourceSpec.parse(None, str(clip), True), width=W, height=H, fps=FPS)
    try:
        assert src.info.sent == (W, H, 30.0) and "looping" in src.info.mode_note
        track = src.track
        async with asyncio.timeout(10):
            for _ in range(20):
                await track.recv()
        assert not src.finished
        assert src.frames_captured > 12  # went round more than once
        assert src.frames_over_fps > 0
    finally:
        src.close()


def test_unreadable_file_is_a_media_error_naming_it(tmp_path: Path) -> None:
    """A file that is not a video fails with a MediaError that names it."""
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 10)
    with pytest.raises(MediaError, match="notes.mp4"):
        open_source(SourceSpec.parse(None, str(bad)), width=W, height=H, fps=FPS)


def test_file_mirroring_only_when_on(tmp_path: Path) -> None:
    """Under auto a file is never mirrored; with --mirror on its frames are flipped."""
    clip = tmp_path / "m.mp4"
    _make_video(clip, frames=20, fps=30)
    for mode, left in ((MirrorMode.AUTO, True), (MirrorMode.ON, False)):
        src = open_source(SourceSpec.parse(None, str(clip)), width=W, height=H, fps=FPS, mirror=mode)
        try:
            deadline = time.perf_counter() + 5
            while (img := src.latest_frame()) is None:
                assert time.perf_counter() < deadline
                time.sleep(0.01)
            assert _red_left(img) is left
            assert _red_left(img[:, ::-1]) is not left
        finally:
            src.close()


# ----------------------------------------------------------------- costs (printed, not asserted)


def _ms(fn: object, n: int = 40) -> float:
    fn()  # type: ignore[operator]
    t0 = time.perf_counter()
    for _ in range(n):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - t0) / n * 1000


def test_report_per_frame_costs() -> None:
    """Print ms/frame for crop+resize 1280×720→1088×624, synthetic generation and track conversion."""
    import cv2

    cam = scene(1280, 720)
    pattern = TestPattern(W, H, FPS)
    img = pattern.render(1)
    costs = {
        "adapt() 1280x720->1088x624 (bilinear below a 2x shrink)": _ms(lambda: adapt(cam, W, H, mirror=False)),
        "adapt() with mirror": _ms(lambda: adapt(cam, W, H, mirror=True)),
        "  (for comparison: the same crop+resize with INTER_AREA)": _ms(
            lambda: cv2.resize(cam[:, 12:1267], (W, H), interpolation=cv2.INTER_AREA)
        ),
        "synthetic render 1088x624": _ms(lambda: pattern.render(7)),
        "bgr->yuv420p VideoFrame (cv2 I420)": _ms(
            lambda: av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        ),
        "bgr->yuv420p VideoFrame (av reformat)": _ms(
            lambda: av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
        ),
        "marker stamp": _ms(lambda: marker.stamp(img, 9)),
        "marker read": _ms(lambda: marker.read(img)),
    }
    print()
    for name, ms in costs.items():
        print(f"  {name}: {ms:.2f} ms/frame")
    assert all(ms > 0 for ms in costs.values())


def test_audio_only_file_is_a_media_error(tmp_path: Path) -> None:
    """A file without a video stream fails with a MediaError saying so."""
    audio = tmp_path / "voice.m4a"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=48_000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48_000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(MediaError, match="voice.m4a' has no video stream"):
        open_source(SourceSpec.parse(None, str(audio)), width=W, height=H, fps=FPS)
