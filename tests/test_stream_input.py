"""`decart stream --input FILE` end to end: every frame sent in order and back in the recording; damaged = exit 4."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from stream_proc import Stream
from test_media_filesource import damaged_copy, stamped_clip

from decart_cli.emulator.server import EmulatorThread
from decart_cli.media import marker

pytestmark = pytest.mark.slow


def recorded_ids(path: Path) -> list[int | None]:
    with av.open(str(path)) as container:
        return [marker.read(f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]


def test_input_sends_every_frame_from_the_first(emulator_env: EmulatorThread, tmp_path: Path) -> None:
    """A 60-frame file: 60 frames sent, and the recording holds the model's output of frames 0..59 in order (the
    first ~0.5 s, 22-26 frames, were once skipped while the session connected)."""
    clip = stamped_clip(tmp_path / "clip.mp4", 60, size=(1088, 624))  # the model's size: the marker is not scaled
    s = Stream(["--input", str(clip), "--json", "--no-window", "--record", "out.mp4"], tmp_path)
    code, stderr = s.finish(60)
    summary = s.records[-1]
    assert code == 0, stderr
    assert summary["reason"] == "input_end" and summary["frames_sent"] == 60
    ids = recorded_ids(tmp_path / "out.mp4")
    print(f"\n--input 60 frames: sent {summary['frames_sent']}, received {summary['frames_received']}")
    assert ids[0] == 0 and ids == sorted(ids) and len(set(ids)) == len(ids)
    # The tail in flight is waited for; the last frame at each aiortc hop stays in its jitter buffer
    # (released only by the next frame's packets), so the final ~2 outputs never come back.
    assert len(ids) == summary["frames_received"] >= 55


def test_damaged_input_is_an_error_naming_the_file(emulator_env: EmulatorThread, tmp_path: Path) -> None:
    """A file damaged half-way ends the run with exit 4 and one error line naming it (not a silent exit 0)."""
    clip = damaged_copy(stamped_clip(tmp_path / "clip.mp4", 150), tmp_path / "damaged.mp4")
    s = Stream(["--input", str(clip), "--json", "--no-window"], tmp_path)
    code, stderr = s.finish(60)
    assert code == 4, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"--input '{clip}' is damaged" in errors[0], stderr
    assert s.records[-1]["reason"] == "source_error"
