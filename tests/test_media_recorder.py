"""--record: path checks, round trip through real encoders, and files that survive an abrupt stop."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
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
    [(".mp4", {"h264", "mpeg4"}, (W, H)), (".webm", {"vp8"}, (W, H))],
)
def test_round_trip_two_seconds(tmp_path: Path, suffix: str, codecs: set[str], size: tuple[int, int]) -> None:
    """60 frames at 30 fps reopen as 60 frames of the first frame's size lasting 2 s, markers intact."""
    path = tmp_path / f"out{suffix}"
    rec = Recorder(path, FPS)
    t0 = time.perf_counter()
    for i, frame in enumerate(_frames(60, *size, stamp=True)):
        assert rec.write(frame, t=100.0 + i / FPS)
    rec.close()
    rec.close()  # idempotent
    print(f"\n{suffix}: {rec.codec_name}, 60 frames written+closed in {time.perf_counter() - t0:.2f} s")
    assert rec.frames_written == 60 and rec.frames_lost == 0 and rec.error is None and rec.loss_reason is None
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
    rec.close()
    count, w, h, duration, _, _ = _probe(path)
    assert (count, w, h) == (31, 320, 192)
    assert duration == pytest.approx(3.0 + 1 / FPS, abs=0.1)


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_frames_faster_than_fps_are_all_kept_at_wall_time(tmp_path: Path, suffix: str) -> None:
    """Frames arriving at 60 fps into a 30 fps recording are all kept, and the file lasts the wall-clock 4 s."""
    rec = Recorder(tmp_path / f"fast{suffix}", FPS)
    frame = _frames(1, 320, 192)[0]
    results = [rec.write(frame, t=i / 60) for i in range(240)]  # 4 s of input at 60 fps
    rec.close()
    count, _, _, duration, _, _ = _probe(tmp_path / f"fast{suffix}")
    assert all(results) and count == rec.frames_written == 240 and rec.frames_lost == 0
    assert duration == pytest.approx(4.0, abs=0.1)


def test_a_burst_is_queued_not_dropped(tmp_path: Path) -> None:
    """write() never blocks, and a burst far faster than the encoder is queued and recorded in full."""
    rec = Recorder(tmp_path / "burst.mp4", FPS)
    frame = _frames(1, 320, 192)[0]
    t0 = time.perf_counter()
    results = [rec.write(frame, t=i / FPS) for i in range(400)]
    spent = time.perf_counter() - t0
    queued = rec.queued
    rec.close()
    print(f"\n400 writes took {spent * 1000:.1f} ms with {queued} still queued; encoded {rec.frames_written}")
    assert spent < 0.5
    assert all(results) and rec.frames_written == 400 and rec.frames_lost == 0
    assert _probe(tmp_path / "burst.mp4")[0] == 400


def test_backlog_over_its_memory_bound_counts_every_lost_frame(tmp_path: Path) -> None:
    """Past the backlog's memory bound frames are refused, and each one is counted as lost with the reason."""
    frame = _frames(1, 320, 192)[0]
    rec = Recorder(tmp_path / "bound.mp4", FPS, backlog_bytes=10 * 320 * 192 * 3 // 2)
    results = [rec.write(frame, t=i / FPS) for i in range(400)]
    rec.close()
    assert results.count(False) == rec.frames_lost > 0
    assert rec.frames_written + rec.frames_lost == 400
    assert rec.loss_reason is not None and "fell" in rec.loss_reason and "behind" in rec.loss_reason


def test_close_right_after_writes_gives_playable_file(tmp_path: Path) -> None:
    """close() called while frames are still queued flushes them and finalises a playable file."""
    path = tmp_path / "abrupt.mp4"
    rec = Recorder(path, FPS)
    for i, frame in enumerate(_frames(45)):
        rec.write(frame, t=i / FPS)
    rec.close()  # immediately: most frames are still in the queue
    count, w, h, duration, _, _ = _probe(path)
    assert (count, w, h) == (45, W, H) and duration == pytest.approx(1.5, abs=0.05)
    assert not rec.write(_frames(1)[0])  # closed: refused, not raised
    assert rec.frames_lost == 0  # a frame offered after the end is not a recording's loss


class SlowEncoder:
    """Stands in for a PyAV stream whose encoder takes ``delay`` seconds per frame, hangs on ``gate`` until it is
    set, or fails (disk full) from frame ``fail_at`` on. Shared with test_stream_recording.py."""

    def __init__(
        self,
        delay: float = 0.0,
        gate: threading.Event | None = None,
        fail_at: int | None = None,
        size: tuple[int, int] = (320, 192),
    ) -> None:
        self.delay, self.gate, self.fail_at, self.frames = delay, gate, fail_at, 0
        self.width, self.height = size

    def encode(self, frame: object) -> list[object]:
        if frame is None:
            return []
        if self.gate is not None:
            self.gate.wait()
        if self.fail_at is not None and self.frames >= self.fail_at:
            raise OSError(28, "No space left on device")
        time.sleep(self.delay)
        self.frames += 1
        return []


class _NullContainer:
    def mux(self, packet: object) -> None:
        pass

    def close(self) -> None:
        pass


def use_encoder(monkeypatch: pytest.MonkeyPatch, stream: SlowEncoder) -> None:
    """Every Recorder opened from now on encodes with ``stream`` into a container that writes nothing."""
    monkeypatch.setattr(Recorder, "_open", lambda self, av, frame: (_NullContainer(), stream))


def test_close_waits_for_a_slow_encoder_and_reports_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog that takes longer than the old 5 s bound is finished, with a falling "N queued" count reported."""
    use_encoder(monkeypatch, SlowEncoder(delay=0.02))
    rec = Recorder(tmp_path / "slow.mp4", FPS)
    frame = _frames(1, 320, 192)[0]
    for i in range(300):  # 6 s of encoding at 50 fps
        assert rec.write(frame, t=i / FPS)
    seen: list[int] = []
    rec.close(progress=seen.append)
    assert rec.frames_written == 300 and rec.frames_lost == 0
    assert len(seen) >= 5 and seen == sorted(seen, reverse=True) and seen[0] > seen[-1]


def test_close_gives_up_on_a_hung_encoder_and_counts_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An encoder that makes no progress is abandoned after the stall timeout; what it held is counted as lost."""
    gate = threading.Event()
    use_encoder(monkeypatch, SlowEncoder(gate=gate))
    rec = Recorder(tmp_path / "hung.mp4", FPS)
    frame = _frames(1, 320, 192)[0]
    for i in range(50):
        rec.write(frame, t=i / FPS)
    t0 = time.monotonic()
    rec.close(stall_timeout=0.5)
    gate.set()
    assert time.monotonic() - t0 < 10
    assert rec.frames_written + rec.frames_lost >= 49 and rec.frames_lost >= 49
    assert rec.loss_reason is not None and "stopped making progress" in rec.loss_reason


def test_encoder_failure_is_reported_and_later_frames_count_as_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk-full error mid-recording sets error, and every frame that is not in the file is counted as lost."""
    use_encoder(monkeypatch, SlowEncoder(fail_at=10))
    rec = Recorder(tmp_path / "full.mp4", FPS)
    frame = _frames(1, 320, 192)[0]
    for i in range(30):
        rec.write(frame, t=i / FPS)
    deadline = time.monotonic() + 30
    while rec.error is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    rec.write(frame, t=2.0)
    rec.close()
    assert rec.error is not None and "No space left" in rec.error.message
    assert rec.frames_written == 10 and rec.frames_lost == 21
    assert rec.loss_reason is not None and "encoder failed" in rec.loss_reason


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

    READY = 119  # frames 0..118: the worst moment, a keyframe interval (2 s) all but complete

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
                if mode == "kill" and i == READY:  # hold still just before the 2-s keyframe
                    await asyncio.sleep(0.05)
                    continue
                frame = av.VideoFrame.from_ndarray(pattern.render(i), format="bgr24")
                rec.write(frame, t=i / 30)
                i += 1
                if i == READY:  # let the encoder catch up, then report what is in the file
                    while rec.frames_written + rec.frames_lost < READY:
                        await asyncio.sleep(0.01)
                    print("ready", rec.frames_written, flush=True)
                await asyncio.sleep(0.005 if i < READY else 0.03)
        finally:
            rec.close()  # the shutdown path after SIGINT
            print("closed", rec.frames_written, flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.parametrize(("how", "suffix"), [("sigint", ".mp4"), ("sigkill", ".mp4"), ("sigkill", ".webm")])
def test_recording_survives_abrupt_stop(tmp_path: Path, how: str, suffix: str) -> None:
    """SIGINT (close on the shutdown path) gives a complete file; SIGKILL leaves a playable file missing at
    most about one second (one MP4 fragment / WebM cluster), even just before a keyframe."""
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
        time.sleep(0.3 if how == "sigint" else 0.1)
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
        assert count == int(out.split()[1]) >= 119
    else:
        assert proc.returncode == -signal.SIGKILL
        # Fragments / clusters are cut at least every second: at most the one in progress is lost.
        assert int(written) == 119
        assert count >= int(written) - 30 - 3


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


def test_check_path_names_a_directory_as_a_directory(tmp_path: Path) -> None:
    """--record naming an existing directory (with or without an extension) says it is a directory."""
    for target in (tmp_path, tmp_path / "takes.webm"):
        target.mkdir(exist_ok=True)
        with pytest.raises(UsageError, match="is a directory") as info:
            Recorder.check_path(target)
        assert "extension" not in info.value.message


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
