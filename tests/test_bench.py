"""`decart bench`: its measuring rules on a scripted runner, its JSON contract, and real runs of both
transports against `decart serve` (LiveKit in a namespace, as every LiveKit media run)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from netns import run_in_netns

from decart_cli.config import Secret, Settings, Timeouts
from decart_cli.core import catalog
from decart_cli.core.prompt_queue import PromptQueue, PromptState
from decart_cli.core.stats import StatsSnapshot
from decart_cli.media.latency import LatencyMeter
from decart_cli.runtime.bench import BENCH_SCHEMA, BenchOptions, run_bench
from decart_cli.runtime.runner import StreamOutcome
from decart_cli.ui.bench_view import FIGURES, report_table
from decart_cli.ui.console import Streams

TOP_KEYS = {
    "schema",
    "event",
    "model",
    "size",
    "fps",
    "transport",
    "codec",
    "duration_s",
    "warmup_s",
    "latency_mode",
    "machine",
    "sessions",
    "sessions_held",
    "cpu_per_s",
    "peak_rss_mb",
    "exit_code",
    "results",
}
RESULT_KEYS = {
    "session",
    "window_s",
    "frames_sent",
    "frames_received",
    "fps_sent",
    "fps_received",
    "held_fps",
    "latency_ms",
    "latency_source",
    "connect_s",
    "first_frame_s",
    "prompt_ack_ms",
    "cpu_per_s",
    "peak_rss_mb",
    "exit_code",
    "error",
}


class _View:
    def __init__(self) -> None:
        self.frames_received = 0
        self.stats = StatsSnapshot()


class _Session:
    connected_after = 0.25
    first_frame_after = 0.4


class ScriptedRunner:
    """Stands in for StreamRunner: frames at ``fps`` both ways, 50 ms of latency, acks 8 ms after updates."""

    def __init__(self, options: Any, streams: Streams, sink: Any, fps: float = 30.0) -> None:
        self.options = options
        self.sink = sink
        self.fps = fps
        self.view = _View()
        self.queue = PromptQueue(PromptState(prompt="anime"))
        self.latency = LatencyMeter(None, marker=False)
        self.session = _Session()
        self._sent = 0
        self._stop = asyncio.Event()
        self._t0 = time.monotonic()
        self.reason = ""

    def frames_sent(self) -> int:
        return self._sent

    def wake_pump(self) -> None:
        pass

    def request_stop(self, reason: str) -> None:
        self.reason = self.reason or reason
        self._stop.set()

    async def run(self) -> StreamOutcome:
        start = time.monotonic()
        while not self._stop.is_set():
            await asyncio.sleep(max(0.0, start + (self._sent + 1) / self.fps - time.monotonic()))
            self._sent += 1
            self.view.frames_received += 1
            self.view.stats = StatsSnapshot(fps_received=self.fps)
            self.latency.marker.add(50.0, time.perf_counter())
            update = self.queue.next_due(time.monotonic())
            if update is not None:
                t = time.monotonic() - self._t0
                self.sink.emit({"event": "update", "prompt": update.prompt, "t": t})
                self.sink.emit(
                    {"event": "ack", "kind": "prompt", "prompt": update.prompt, "success": True, "t": t + 0.008}
                )
                self.queue.finish(success=True)
        return StreamOutcome(self.reason, None, {})


def _options(**kw: Any) -> BenchOptions:
    settings = Settings(api_key=Secret("k"), realtime_url="ws://127.0.0.1:1")
    return BenchOptions(**{"settings": settings, "model": catalog.resolve("lucy-2.1"), "duration": 3.0, **kw})


async def test_sessions_are_measured_in_the_window_after_the_first_frame() -> None:
    """Each session's window starts 2 s after its first frame: fps, held ≥ 29, latency percentiles with
    their source, the prompts' ack round trip, connect/first-frame from the session, CPU shared out."""
    report = await run_bench(_options(sessions=2), Streams(), make_runner=ScriptedRunner)
    doc = report.to_json()
    assert set(doc) == TOP_KEYS and doc["schema"] == BENCH_SCHEMA and doc["sessions"] == 2
    assert doc["exit_code"] == 0 and doc["sessions_held"] == 2
    for r in doc["results"]:
        assert set(r) == RESULT_KEYS
        assert 1.3 <= r["window_s"] <= 1.7  # 3 s from the first frame, minus a 1.5 s warm-up (half of it)
        assert 25 <= r["fps_received"] <= 31 and r["held_fps"] is True
        assert r["latency_ms"]["p50"] == 50.0 and r["latency_ms"]["samples"] > 20
        assert r["latency_source"] == "marker" and r["prompt_ack_ms"] == pytest.approx(8.0, abs=0.5)
        assert (r["connect_s"], r["first_frame_s"]) == (0.25, 0.4)
        assert r["cpu_per_s"] == pytest.approx(doc["cpu_per_s"] / 2, abs=0.002)


async def test_a_session_below_29_fps_does_not_hold() -> None:
    """A session receiving 20 fps is reported, but not as holding the model's rate."""

    def slow(options: Any, streams: Streams, sink: Any) -> ScriptedRunner:
        return ScriptedRunner(options, streams, sink, fps=20.0)

    report = await run_bench(_options(), Streams(), make_runner=slow)
    (r,) = report.to_json()["results"]
    assert r["held_fps"] is False and 15 <= r["fps_received"] <= 21


async def test_a_session_without_frames_fails_the_run() -> None:
    """No remote frame before the deadline: the session has an error and the run a non-zero exit code."""

    class Dark(ScriptedRunner):
        async def run(self) -> StreamOutcome:
            await self._stop.wait()
            return StreamOutcome(self.reason, None, {})

    fast = Settings(api_key=Secret("k"), realtime_url="ws://127.0.0.1:1", timeouts=Timeouts(first_frame=0.3))
    report = await run_bench(_options(settings=fast), Streams(), make_runner=Dark)
    doc = report.to_json()
    assert doc["exit_code"] == 1 and doc["results"][0]["error"] == "no remote frame arrived"
    assert doc["results"][0]["fps_received"] is None


def test_the_table_shows_what_json_says() -> None:
    """One row per figure and one column per session (it fits a terminal), "—" for what was not measured."""
    result = {
        "session": 1,
        "fps_sent": 30.0,
        "fps_received": 29.5,
        "held_fps": True,
        "latency_ms": {"p50": 61.0, "p95": 80.25, "p99": None, "samples": 10},
        "latency_source": "frame_timing",
        "connect_s": 0.3,
        "first_frame_s": 0.5,
        "prompt_ack_ms": None,
        "cpu_per_s": 0.31,
        "peak_rss_mb": 200.0,
        "error": None,
    }
    columns, rows = report_table({"results": [result, {**result, "session": 2, "error": "no remote frame arrived"}]})
    assert columns == ["Figure", "Session 1", "Session 2"]
    assert [row[0] for row in rows] == list(FIGURES)
    table = {row[0]: row[1:] for row in rows}
    assert table["FPS received"] == ["29.5", "29.5"] and table["Held ≥ 29 fps"] == ["yes", "yes"]
    assert table["Latency p95 ms"][0] == "80.2" and table["Latency p99 ms"][0] == "—"
    assert table["Latency by"][0] == "frame timing" and table["Prompt ack ms"][0] == "—"
    assert table["Error"] == ["—", "no remote frame arrived"]


def _bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "decart_cli", "bench", "--local", "--duration", "3", "--json", *args]
    result = run_in_netns(argv, timeout=120, cwd=tmp_path, env={"DECART_SERVE_LOOPBACK_ONLY": "1"})
    result.check()
    doc: dict[str, Any] = json.loads(result.stdout)
    print(f"\n{' '.join(args)}: {json.dumps(doc['results'][0])}")
    return doc


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["webrtc", "livekit"])
def test_bench_local_runs_each_transport(tmp_path: Path, transport: str) -> None:
    """`decart bench --local --duration 3 --json` (a decart serve child): one JSON document with the
    contract's keys, frames flowed both ways, the marker measured latency, exit 0 (speed is printed, not asserted)."""
    doc = _bench(tmp_path, "--transport", transport)
    assert set(doc) == TOP_KEYS and doc["transport"] == transport and doc["exit_code"] == 0
    (r,) = doc["results"]
    assert set(r) == RESULT_KEYS and r["error"] is None
    assert r["frames_sent"] > 0 and r["frames_received"] > 0 and r["fps_received"] > 0
    assert r["latency_source"] == "marker" and r["latency_ms"]["samples"] > 0
    assert r["connect_s"] is not None and r["first_frame_s"] is not None and r["cpu_per_s"] is not None


@pytest.mark.slow
def test_bench_measures_by_frame_timing_when_the_marker_is_off(tmp_path: Path) -> None:
    """--latency frame-timing over LiveKit: no marker is stamped, and latency comes from the capture
    timestamps decart serve echoes in packet trailers (the cloud's measure)."""
    doc = _bench(tmp_path, "--transport", "livekit", "--latency", "frame-timing")
    (r,) = doc["results"]
    assert r["error"] is None and r["latency_source"] == "frame_timing"
    assert r["latency_ms"]["samples"] > 0 and 0 < r["latency_ms"]["p50"] < 2000


@pytest.mark.slow
@pytest.mark.parametrize(("version", "script"), [("0.0.40", "sdk_0_0_40.py"), ("0.2.4", "sdk_0_2_4.py")])
def test_the_sdk_drivers_report_what_decart_bench_reports(version: str, script: str) -> None:
    """make bench's other side: each official SDK, unchanged, runs the same job against decart serve and
    reports the same per-session figures as `decart bench` (frames flowed, marker latency measured)."""
    from netns import run_scenario
    from sdk_venvs import HARNESS, SDK_SCRIPTS, sdk_python

    argv = ["--", str(sdk_python(version)), str(SDK_SCRIPTS / script), "--url", "{http}", "bench", "--seconds", "4"]
    result = run_scenario(HARNESS, *argv, timeout=120).check().json()
    figures = result["driver"]
    print(f"\ndecart=={version}: {json.dumps(figures)}")
    assert figures is not None and figures["sdk"] == version
    shared = RESULT_KEYS - {"session", "held_fps", "exit_code", "error"}
    assert shared <= set(figures), shared - set(figures)
    assert figures["fps_received"] > 0 and figures["latency_ms"]["samples"] > 0
    assert figures["latency_source"] == "marker" and figures["cpu_per_s"] > 0
