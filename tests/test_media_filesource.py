"""--input FILE: every frame of the file is sent, in order, from the first, and a damaged file is an error."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from decart_cli.errors import MediaError
from decart_cli.media import marker
from decart_cli.media.source import MirrorMode, SourceSpec, open_source
from decart_cli.media.synthetic import TestPattern

W, H, FPS = 320, 192, 30


def stamped_clip(path: Path, frames: int, fps: int = 30, size: tuple[int, int] = (W, H)) -> Path:
    """An H.264 file whose frame n carries marker id n (latency-marker.md) in its top-left corner."""
    pattern = TestPattern(size[0], size[1], fps)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for n in range(frames):
            img = pattern.render(n)
            marker.stamp(img, n)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def damaged_copy(clip: Path, out: Path) -> Path:
    """``clip`` with its middle third overwritten by random bytes (the container header survives)."""
    data = bytearray(clip.read_bytes())
    rng = random.Random(1)
    for i in range(len(data) // 3, 2 * len(data) // 3):
        data[i] = rng.randrange(256)
    out.write_bytes(bytes(data))
    return out


async def _ids(track: object, limit: float = 30.0) -> list[int | None]:
    ids: list[int | None] = []
    async with asyncio.timeout(limit):
        while True:
            try:
                frame = await track.recv()  # type: ignore[attr-defined]
            except MediaStreamError:
                return ids
            ids.append(marker.read(frame.to_ndarray(format="bgr24")))


async def test_a_late_consumer_gets_every_frame_from_the_first(tmp_path: Path) -> None:
    """Frames are not played to nobody while the session connects: a track starting 0.8 s late gets 0..44 in order."""
    clip = stamped_clip(tmp_path / "clip.mp4", 45)
    src = open_source(SourceSpec.parse(None, str(clip)), width=W, height=H, fps=FPS)
    try:
        await asyncio.sleep(0.8)  # a connect's worth of waiting before the first recv()
        ids = await _ids(src.track)
    finally:
        src.close()
    assert ids == list(range(45))
    assert src.frames_sent == 45 and src.error is None


def test_a_slow_consumer_slows_the_file_down_instead_of_skipping(tmp_path: Path) -> None:
    """A consumer taking a frame every 60 ms (slower than 30 fps) still gets every frame, in order."""
    clip = stamped_clip(tmp_path / "clip.mp4", 40)
    src = open_source(SourceSpec.parse(None, str(clip)), width=W, height=H, fps=FPS)
    ids: list[int | None] = []
    last = 0
    deadline = time.monotonic() + 30
    try:
        while not (src.finished and src.take_newer(last) is None) and time.monotonic() < deadline:
            item = src.take_newer(last)
            if item is None:
                time.sleep(0.005)
                continue
            last = item.seq
            ids.append(marker.read(item.i420))
            time.sleep(0.06)
    finally:
        src.close()
    assert ids == list(range(40))


async def test_a_60_fps_file_keeps_every_other_frame_by_its_own_clock(tmp_path: Path) -> None:
    """A 60 fps file into a 30 fps model sends frames 0, 2, 4, … exactly (the gate reads file timestamps)."""
    clip = stamped_clip(tmp_path / "fast.mp4", 60, fps=60)
    src = open_source(SourceSpec.parse(None, str(clip)), width=W, height=H, fps=FPS)
    try:
        ids = await _ids(src.track)
    finally:
        src.close()
    assert ids == list(range(0, 60, 2))


async def test_a_damaged_file_fails_the_source_naming_it(tmp_path: Path) -> None:
    """A file that stops decoding part-way fails the source with a MediaError naming it and how far it got."""
    clip = damaged_copy(stamped_clip(tmp_path / "clip.mp4", 150), tmp_path / "damaged.mp4")
    src = open_source(SourceSpec.parse(None, str(clip)), width=W, height=H, fps=FPS)
    try:
        ids = await _ids(src.track)
    finally:
        src.close()
    assert isinstance(src.error, MediaError), src.error
    assert f"--input '{clip}' is damaged: decoding failed after" in src.error.message
    assert src.error.exit_status == 4
    assert ids == list(range(len(ids))) and 0 < len(ids) < 150


def _planes(i420: np.ndarray) -> list[np.ndarray]:
    """Y, U, V of a ``W × H`` I420 array, each without the marker's region (its luma blocks, its chroma)."""
    y, u, v = i420[:H], i420[H : H + H // 4].reshape(H // 2, W // 2), i420[H + H // 4 :].reshape(H // 2, W // 2)
    return [y[marker.HEIGHT :], y[:, marker.WIDTH :], *(c[marker.HEIGHT // 2 :] for c in (u, v))] + [
        c[:, marker.WIDTH // 2 :] for c in (u, v)
    ]


def test_a_file_at_the_model_size_is_sent_as_decoded(tmp_path: Path) -> None:
    """A yuv420p file at the model size goes out as the decoder's own I420 planes (no BGR round trip), with the
    source's marker stamped into them; mirrored, or at another size, it is adapted through BGR as a camera."""
    clip = stamped_clip(tmp_path / "clip.mp4", 3)
    with av.open(str(clip)) as container:
        decoded = next(container.decode(video=0)).to_ndarray()
    cases = [(MirrorMode.AUTO, (W, H), True), (MirrorMode.ON, (W, H), False), (MirrorMode.AUTO, (W * 2, H * 2), False)]
    for mirror, (w, h), direct in cases:
        src = open_source(
            SourceSpec.parse(None, str(clip)), width=w, height=h, fps=FPS, mirror=mirror, stamp_marker=True
        )
        try:
            deadline = time.monotonic() + 10
            while (item := src.take_newer(0)) is None:
                assert time.monotonic() < deadline and src.error is None
                time.sleep(0.005)
        finally:
            src.close()
        assert item.i420.shape == (h * 3 // 2, w) and marker.read(item.i420) == 0  # the source's own marker, id 0
        assert (item.bgr is None) is direct, (mirror, w, h)
        if direct:
            sent, made = _planes(item.i420), _planes(decoded)  # the decoder's picture, marker aside
            assert all(np.array_equal(a, b) for a, b in zip(sent, made, strict=True))
            assert src.latest_frame() is not None and src.latest_frame().shape == (H, W, 3)
