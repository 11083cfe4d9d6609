"""--record: path checks, round trip through real encoders, and files that survive an abrupt stop."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import numpy as np
import pytest

from decart_cli.errors import UsageError
from decart_cli.media import marker
from decart_cli.media.recorder import Recorder
from decart_cli.media.synthetic import TestPattern

W, H, FPS = 1088, 624, 30


def _frames(n: int, w: int = W, h: int = H, stamp: bool = False) -> list[av.VideoFrame]:
    pattern = TestPattern(w, h, FPS)
    out = []
    for i in range(n):
        img = pattern.render(i)
        if stamp:
            marker.stamp(img, i)
        out.append(av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p"))
    return out


def _probe(path: Path) -> tuple[int, int, int, float, str, list[np.ndarray]]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        decoded = [f.to_ndarray(format="bgr24") for f in c.decode(stream)]
        duration = c.duration / 1_000_000 if c.duration else 0.0
        return len(decoded), stream.width, stream.height, duration, stream.codec_context.name, decoded


@pytest.mark.parametrize(
    ("suffix", "codecs", "size"),
    [(".mp4", {"h264", "mpeg4"}, (W, H)), (".webm", {"vp8"}, (W // 2, H // 2))],  # libvpx is slow on 2 busy cores
)
def test_round_trip_two_seconds(tmp_path: Path, suffix: str, codecs: set[str], size: tuple[int, int]) -> None:
    """60 frames at 30 fps reopen as 60 frames of the first frame's size lasting 2 s, markers intact."""
    path = tmp_path / f"out{suffix}"
    rec = Recorder(path, FPS)
    t0 = time.perf_counter()
    for i, frame in enumerate(_frames(60, *size, stamp=True)):
        assert rec.write(frame, t=100.0 + i / FPS)
    rec.close(timeout=60)  # generous: the shared CI machine may be busy; the default is 5 s
    rec.close()  # idempotent
    print(f"\n{suffix}: {rec.codec_name}, 60 frames written+closed in {time.perf_counter() - t0:.2f} s")
    assert rec.frames_written == 60 and rec.frames_dropped == 0 and rec.error is None
    count, w, h, duration, codec, decoded = _probe(path)
    assert (count, (w, h)) == (60, size)
    assert codec in codecs
    assert duration == pytest.approx(2.0, abs=0.05)
    assert [marker.read(img) for img in decoded[::10]] == list(range(0, 60, 10))


def test_size_fixed_by_first_frame_and_gaps_keep_wall_time(tmp_path: Path) -> None:
    """Later frames of another size are scaled to the first; a pause in arrivals stays a pause in the file."""
    path = tmp_path / "mixed.mp4"
    rec = Recorder(path, FPS)
    small = _frames(1, 320, 192)[0]
    big = _frames(1)[0]
    for i in range(30):
        rec.write(big if i % 2 else small, t=i / FPS)
    rec.write(small, t=3.0)  # arrives 2 s after the previous frame
    rec.close(timeout=60)
    count, w, h, duration, _, _ = _probe(path)
    assert (count, w, h) == (31, 320, 192)
    assert duration == pytest.approx(3.0 + 1 / FPS, abs=0.1)


def test_input_faster_than_fps_cannot_stretch_the_file(tmp_path: Path) -> None:
    """Frames arriving at 60 fps into a 30 fps recording are kept only while the clock is < 1 s ahead."""
    rec = Recorder(tmp_path / "fast.mp4", FPS)
    frame = _frames(1, 320, 192)[0]
    kept = 0
    for i in range(240):  # 4 s of input at 60 fps
        kept += rec.write(frame, t=i / 60)
        deadline = time.perf_counter() + 30
        while kept - rec.frames_written > 30:  # stay clear of the queue bound: test the clock only
            assert time.perf_counter() < deadline
            time.sleep(0.005)
    rec.close(timeout=60)
    count, _, _, duration, _, _ = _probe(tmp_path / "fast.mp4")
    assert count == kept == rec.frames_written
    assert rec.frames_dropped == 240 - kept > 0
    assert duration == pytest.approx(4.0, abs=1.1)


def test_full_queue_drops_instead_of_blocking(tmp_path: Path) -> None:
    """write() never blocks: past the queue bound frames are dropped and counted."""
    rec = Recorder(tmp_path / "burst.mp4", FPS)
    frame = _frames(1, 320, 192)[0]
    t0 = time.perf_counter()
    results = [rec.write(frame, t=i / FPS) for i in range(400)]
    spent = time.perf_counter() - t0
    rec.close(timeout=60)
    print(f"\n400 writes took {spent * 1000:.1f} ms; dropped {rec.frames_dropped}, encoded {rec.frames_written}")
    assert spent < 0.5
    assert rec.frames_dropped == results.count(False) > 0
    assert rec.frames_written == results.count(True)


def test_close_right_after_writes_gives_playable_file(tmp_path: Path) -> None:
    """close() called while frames are still queued flushes them and finalises a playable file."""
    path = tmp_path / "abrupt.mp4"
    rec = Recorder(path, FPS)
    for i, frame in enumerate(_frames(45)):
        rec.write(frame, t=i / FPS)
    rec.close(timeout=60)  # immediately: most frames are still in the queue
    count, w, h, duration, _, _ = _probe(path)
    assert (count, w, h) == (45, W, H) and duration == pytest.approx(1.5, abs=0.05)
    assert not rec.write(_frames(1)[0])  # closed: refused, not raised


def test_close_without_frames_writes_nothing(tmp_path: Path) -> None:
    """A recorder that never got a frame closes quickly and creates no file."""
    path = tmp_path / "empty.webm"
    rec = Recorder(path, FPS)
    rec.close()
    assert not path.exists()


_CHILD = textwrap.dedent(
    """
    import asyncio, signal, sys, time
    import av
    from decart_cli.media.recorder import Recorder
    from decart_cli.media.synthetic import TestPattern

    async def main(path, mode):
        rec = Recorder(path, 30)
        stop = asyncio.Event()
        if mode == "sigint":
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        pattern = TestPattern(320, 192, 30)
        t0 = time.perf_counter()
        i = 0
        try:
            while not stop.is_set():
                frame = av.VideoFrame.from_ndarray(pattern.render(i), format="bgr24")
                rec.write(frame, t=i / 30)
                i += 1
                if i == 150:  # let the encoder catch up, then report what is in the file
                    while rec.frames_written + rec.frames_dropped < 150:
                        await asyncio.sleep(0.01)
                    print("ready", rec.frames_written, flush=True)
                await asyncio.sleep(0.005 if i < 150 else 0.03)
        finally:
            rec.close()  # the shutdown path after SIGINT
            print("closed", rec.frames_written, flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.parametrize(("how", "suffix"), [("sigint", ".mp4"), ("sigkill", ".mp4"), ("sigkill", ".webm")])
def test_recording_survives_abrupt_stop(tmp_path: Path, how: str, suffix: str) -> None:
    """SIGINT (close on the shutdown path) gives a complete file; even SIGKILL leaves a playable file."""
    path = tmp_path / f"{how}{suffix}"
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), "sigint" if how == "sigint" else "kill"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "child never became ready"
        word, written = proc.stdout.readline().split()
        assert word == "ready"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    count, w, h, duration, _, _ = _probe(path)
    print(f"\n{how}: {count} frames readable, {duration:.2f} s")
    assert (w, h) == (320, 192)
    if how == "sigint":
        assert proc.returncode == 0 and out.split()[0] == "closed"
        assert count == int(out.split()[1]) >= 150
    else:
        assert proc.returncode == -signal.SIGKILL
        # MP4 fragments / WebM clusters end at each 2-s keyframe: at most the one in progress is lost.
        assert count >= int(written) - 2 * 30 > 0


# ----------------------------------------------------------------- check_path


def test_check_path_accepts_mp4_and_webm(tmp_path: Path) -> None:
    """.mp4 and .webm (any case) in a writable directory pass and leave no probe file behind."""
    assert Recorder.check_path(tmp_path / "a.mp4") == tmp_path / "a.mp4"
    assert Recorder.check_path(tmp_path / "b.WEBM") == tmp_path / "b.WEBM"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "match"), [("out.avi", "unsupported extension '.avi'"), ("out", r"'\(none\)'")])
def test_check_path_rejects_bad_extensions(tmp_path: Path, name: str, match: str) -> None:
    """Other extensions are a UsageError naming the path and the supported ones."""
    with pytest.raises(UsageError, match=match) as info:
        Recorder.check_path(tmp_path / name)
    assert name in info.value.message and ".mp4" in str(info.value.hint)


def test_check_path_rejects_missing_and_unwritable_directories(tmp_path: Path) -> None:
    """A missing directory, a directory given as the file, or an unwritable directory are UsageErrors."""
    with pytest.raises(UsageError, match="does not exist"):
        Recorder.check_path(tmp_path / "nope" / "a.mp4")
    with pytest.raises(UsageError, match="is a directory"):
        (tmp_path / "d.mp4").mkdir()
        Recorder.check_path(tmp_path / "d.mp4")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    # root ignores permission bits; sysfs refuses new files even to root.
    target = Path("/sys") if os.geteuid() == 0 else locked
    with pytest.raises(UsageError, match="cannot write in"):
        Recorder.check_path(target / "a.mp4")
    locked.chmod(0o755)
    with pytest.raises(UsageError):
        Recorder(tmp_path / "x.mkv", FPS)
