"""--record inside a real run (StreamRunner against the emulator): a short file is never a silent success."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from test_media_recorder import SlowEncoder, use_encoder
from test_stream_runner import options

from decart_cli.emulator.server import EmulatorThread
from decart_cli.errors import ExitStatus
from decart_cli.media.source import SourceSpec
from decart_cli.runtime import StreamRunner
from decart_cli.ui.console import Streams

pytestmark = pytest.mark.slow

LUCY_21 = (1088, 624)  # the encoder's size: frames at the model's size need no conversion


def _run(emulator: EmulatorThread, tmp_path: Path, ui: str) -> tuple[Any, list[dict[str, Any]], str]:
    import asyncio

    out, err = io.StringIO(), io.StringIO()
    opts = options(emulator, spec=SourceSpec.parse("test", None), duration=1.5, record=tmp_path / "x.webm", ui=ui)
    runner = StreamRunner(opts, Streams(stdout=out, stderr=err))
    outcome = asyncio.run(runner.run())
    records = [json.loads(line) for line in out.getvalue().splitlines()] if ui == "json" else []
    return outcome, records, err.getvalue()


def test_lost_frames_fail_the_run_with_one_line_and_summary_fields(
    emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encoder failing mid-run: exit 4, an error naming how many frames were lost and why, frames_lost in the summary."""
    use_encoder(monkeypatch, SlowEncoder(fail_at=5, size=LUCY_21))
    outcome, records, _ = _run(emulator, tmp_path, "json")
    summary = records[-1]
    assert outcome.exit_status == ExitStatus.MEDIA and outcome.reason == "duration"
    assert outcome.error is not None and "short" in outcome.error.message and "lost" in outcome.error.message
    assert "No space left" in outcome.error.message
    assert summary["event"] == "summary" and summary["exit_code"] == 4
    assert summary["frames_recorded"] == 5
    assert summary["frames_lost"] == summary["frames_received"] - 5 > 0
    assert "encoder failed" in summary["recording_error"] and summary["error"] == outcome.error.message


def test_no_frame_at_all_is_an_empty_recording_error(
    emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recording that got no frame into the file ends the run with exit 4 saying it is empty."""
    use_encoder(monkeypatch, SlowEncoder(fail_at=0, size=LUCY_21))
    outcome, records, _ = _run(emulator, tmp_path, "json")
    assert outcome.exit_status == ExitStatus.MEDIA
    assert outcome.error is not None and "is empty" in outcome.error.message
    assert records[-1]["frames_recorded"] == 0


def test_slow_encoder_finishes_with_a_progress_line(
    emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encoder slower than the stream is waited for at the end, with "finishing recording… N frames queued" on stderr."""
    stream = SlowEncoder(delay=0.06, size=LUCY_21)  # ~16 fps against a 30 fps stream: a backlog builds up
    use_encoder(monkeypatch, stream)
    outcome, _, stderr = _run(emulator, tmp_path, "plain")
    assert outcome.error is None, outcome
    assert outcome.summary["frames_lost"] == 0
    assert outcome.summary["frames_recorded"] == outcome.summary["frames_received"] == stream.frames > 0
    lines = [line for line in stderr.splitlines() if line.startswith("finishing recording")]
    assert len(lines) == 1 and "frames queued" in lines[0], stderr
