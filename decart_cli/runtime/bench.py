"""``decart bench``: N concurrent stream sessions on the code ``decart stream`` runs, measured.

Each session is a :class:`~decart_cli.runtime.runner.StreamRunner` — the stream command's own
runner, nothing re-implemented — with the synthetic test camera at the model's size and fps,
stamped with frame ids when the server preserves them (``--latency``), no window, no panel, and a
sink that keeps its records instead of printing them. The bench only watches and measures:

* the window opens :data:`WARMUP` s after a session's first remote frame (half the duration when
  that is under 4 s) and closes ``duration`` s after that first frame (so ``duration`` counts from
  the first frame, as the SDK drivers of ``make bench`` count it);
* fps sent / received = frames handed to the encoder / frames received in the window, per second;
* glass-to-glass p50 / p95 / p99 over every latency sample of the window, from the measure the
  stream would show (:class:`~decart_cli.media.latency.LatencyMeter`: marker or frame timing);
* ``connect_s`` = connect start → media connected, ``first_frame_s`` = connect start → first
  remote frame (the session's own figures);
* ``prompt_ack_ms``: :data:`PROMPTS` are typed into each session's prompt queue during the window and
  go out through the stream's update pump; the round trip is the ``update`` record → its ``ack``;
* CPU seconds per second of this process over the window (``getrusage``: every thread, the native
  SDK's included), divided among the sessions; peak RSS (``ru_maxrss``) of this process.

A session *holds* the model's rate when it received at least :data:`HOLD_FPS` frames per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from decart_cli.config import Settings
from decart_cli.core.catalog import Resolved
from decart_cli.core.session import TransportKind
from decart_cli.errors import ExitStatus, Interrupted
from decart_cli.media.latency import quantile
from decart_cli.ui.console import Streams

__all__ = [
    "BENCH_SCHEMA",
    "HOLD_FPS",
    "PROMPTS",
    "WARMUP",
    "BenchOptions",
    "BenchProgress",
    "BenchReport",
    "SessionFigures",
    "machine",
    "run_bench",
    "warmup",
]

BENCH_SCHEMA = 1  # the version of the --json document; raised on a renamed or removed key
WARMUP = 2.0  # seconds after the first remote frame before measuring (the JS SDK's warm-up too)
HOLD_FPS = 29.0  # a session "holds" a 30 fps model at or above this received rate
PROMPTS = ("anime portrait", "pencil sketch", "cyberpunk city")
POLL = 0.05  # seconds between looks at the sessions


@dataclass(frozen=True)
class BenchOptions:
    """What to measure (validated by the command)."""

    settings: Settings
    model: Resolved
    transport: TransportKind = "livekit"
    codec: str | None = None
    duration: float = 20.0
    sessions: int = 1
    latency: str = "auto"
    prompts: tuple[str, ...] = PROMPTS


@dataclass
class SessionFigures:
    """One session's figures (the keys of ``results[]`` in the JSON document)."""

    session: int
    window_s: float | None = None
    frames_sent: int = 0
    frames_received: int = 0
    fps_sent: float | None = None
    fps_received: float | None = None
    held_fps: bool = False
    latency_ms: dict[str, float | int | None] = field(
        default_factory=lambda: {"p50": None, "p95": None, "p99": None, "samples": 0}
    )
    latency_source: str | None = None
    connect_s: float | None = None
    first_frame_s: float | None = None
    prompt_ack_ms: float | None = None
    cpu_per_s: float | None = None
    peak_rss_mb: float | None = None
    exit_code: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values."""
        return dict(self.__dict__)


@dataclass
class BenchReport:
    """The whole run: options, machine, per-session figures, and the exit status."""

    options: BenchOptions
    machine: dict[str, Any]
    sessions: list[SessionFigures]
    cpu_per_s: float | None
    peak_rss_mb: float
    status: ExitStatus = ExitStatus.OK
    codec: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (stable keys, ``schema`` versioned like the stream events)."""
        m = self.options.model.model
        held = sum(1 for s in self.sessions if s.held_fps)
        return {
            "schema": BENCH_SCHEMA,
            "event": "bench",
            "model": self.options.model.wire_name,
            "size": [m.width, m.height],
            "fps": m.fps,
            "transport": self.options.transport,
            "codec": self.codec,
            "duration_s": self.options.duration,
            "warmup_s": warmup(self.options.duration),
            "latency_mode": self.options.latency,
            "machine": self.machine,
            "sessions": len(self.sessions),
            "sessions_held": held,
            "cpu_per_s": self.cpu_per_s,
            "peak_rss_mb": self.peak_rss_mb,
            "exit_code": int(self.status),
            "results": [s.to_json() for s in self.sessions],
        }


class BenchProgress(Protocol):
    """What the bench tells its progress display (ui/bench_view.py)."""

    def update(self, phase: str, done: float, total: float, fps: list[float | None]) -> None:
        """``phase`` (connecting, warming up, measuring, finishing), seconds done of ``total``, fps per session."""

    def stop(self) -> None:
        """The run is over (remove the bar)."""


def warmup(duration: float) -> float:
    """Seconds after the first frame before measuring: :data:`WARMUP`, or half of a shorter run."""
    return min(WARMUP, duration / 2)


def machine() -> dict[str, Any]:
    """Where the figures come from: cores, load average (1/5/15 min), Python, platform."""
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpus": os.cpu_count(),
        "load_avg": load,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


class _Records:
    """A runner's event sink that keeps the records the bench needs (update/ack pairs)."""

    def __init__(self) -> None:
        self.pending: dict[str, float] = {}  # prompt → t of its update record
        self.acks_ms: list[float] = []

    def emit(self, record: dict[str, Any]) -> None:
        kind = record.get("event")
        if kind == "update" and record.get("prompt") is not None:
            self.pending[str(record["prompt"])] = float(record["t"])
        elif kind == "ack" and record.get("kind") == "prompt":
            sent = self.pending.pop(str(record.get("prompt")), None)
            if sent is not None and record.get("success"):
                self.acks_ms.append((float(record["t"]) - sent) * 1000.0)


class _Session:
    """One runner and the bench's view of it."""

    def __init__(self, index: int, runner: Any, records: _Records) -> None:
        self.index = index
        self.runner = runner
        self.records = records
        self.task: asyncio.Task[Any] | None = None
        self.first_at: float | None = None  # perf_counter at the first remote frame (seen by polling)
        self.start: tuple[float, int, int] | None = None  # (t, sent, received) when the window opened
        self.end: tuple[float, int, int] | None = None
        self.prompts_sent = 0

    def counters(self) -> tuple[float, int, int]:
        return time.perf_counter(), int(self.runner.frames_sent()), int(self.runner.view.frames_received)

    def fps_now(self) -> float | None:
        stats = self.runner.view.stats
        return float(stats.fps_received) if self.first_at is not None else None


async def run_bench(
    options: BenchOptions,
    streams: Streams,
    progress: BenchProgress | None = None,
    *,
    make_runner: Callable[..., Any] | None = None,
) -> BenchReport:
    """Run ``options.sessions`` sessions concurrently and measure them (see the module docstring).

    Args:
        options: what to run.
        streams: where runners say their one-line errors (stderr).
        progress: the progress display, if any.
        make_runner: ``(StreamOptions, Streams, sink=…) → runner`` (tests inject one; default StreamRunner).

    Returns:
        The report; a session that failed has its ``error`` set and the report a non-zero status.
    """
    from decart_cli.core.prompt_queue import PromptState
    from decart_cli.media.source import MirrorMode, SourceSpec
    from decart_cli.realtime.config import DEFAULT_CODECS
    from decart_cli.runtime.runner import StreamOptions, StreamRunner

    factory = make_runner or StreamRunner
    base = StreamOptions(
        settings=options.settings,
        model=options.model,
        spec=SourceSpec.parse("test", None),
        mirror=MirrorMode.OFF,
        transport=options.transport,
        codec=options.codec,
        initial=PromptState(prompt="anime"),
        ui="json",
        window=False,
        install_signals=False,
        exit_process=False,
        latency=options.latency,
    )
    sessions = []
    for i in range(options.sessions):
        records = _Records()
        sessions.append(_Session(i + 1, factory(replace(base), streams, sink=records), records))
    interrupted: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        interrupted.append(name)
        for s in sessions:
            s.runner.request_stop("quit")  # a clean end of each session; the bench exits 130/143

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
    cpu: float | None = None
    try:
        for s in sessions:
            s.task = asyncio.ensure_future(s.runner.run())
        cpu = await _measure(options, sessions, progress, interrupted)
    finally:
        for s in sessions:
            s.runner.request_stop("quit" if interrupted else "duration")
        if progress is not None:
            progress.update("finishing", 0, 0, [s.fps_now() for s in sessions])
        outcomes = await asyncio.gather(*(s.task for s in sessions if s.task is not None), return_exceptions=True)
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        if progress is not None:
            progress.stop()
    figures = [_figures(s, options) for s in sessions]
    status = ExitStatus.OK
    for s, fig, outcome in zip(sessions, figures, outcomes, strict=False):
        if isinstance(outcome, BaseException):
            fig.error = f"{type(outcome).__name__}: {outcome}"
            fig.exit_code = int(ExitStatus.ERROR)
        elif outcome.error is not None:
            fig.error = outcome.error.message
            fig.exit_code = int(outcome.exit_status)
        elif s.first_at is None:
            fig.error = "no remote frame arrived"
            fig.exit_code = int(ExitStatus.ERROR)
        if fig.exit_code and status is ExitStatus.OK:
            status = ExitStatus(fig.exit_code)
    if cpu is not None:
        for fig in figures:
            fig.cpu_per_s = round(cpu / len(figures), 3)
    rss = peak_rss_mb()
    for fig in figures:
        fig.peak_rss_mb = rss
    if interrupted:
        status = Interrupted(interrupted[0]).exit_status
    codec = options.codec or DEFAULT_CODECS[options.transport]
    return BenchReport(options, machine(), figures, cpu, rss, status, codec)


async def _measure(
    options: BenchOptions, sessions: list[Any], progress: BenchProgress | None, interrupted: list[str]
) -> float | None:
    """Wait for every first frame, open the windows, send the prompts, close the windows.

    Returns this process's CPU seconds per second from the first window's start to the last one's end
    (``None`` when no window opened).
    """
    deadline = time.perf_counter() + options.settings.timeouts.first_frame
    started = time.perf_counter()
    cpu0: float | None = None
    t0 = 0.0
    duration = options.duration
    while not interrupted:
        now = time.perf_counter()
        for s in sessions:
            if s.first_at is None and s.runner.view.frames_received > 0:
                s.first_at = now
            if s.first_at is not None and s.start is None and now >= s.first_at + warmup(duration):
                if s.runner.latency is not None:
                    s.runner.latency.keep_history()
                s.start = s.counters()
                if cpu0 is None:
                    cpu0, t0 = cpu_seconds(), now
            if s.start is not None and s.end is None:
                _maybe_prompt(s, options, now)
                if now >= s.first_at + duration:
                    s.end = s.counters()
        alive = [s for s in sessions if s.task is not None and not s.task.done()]
        waiting = [s for s in alive if s.first_at is None]
        if all(s.end is not None or s.task is None or s.task.done() for s in sessions):
            break
        if waiting and now > deadline and len(waiting) == len([s for s in sessions if s.end is None]):
            break  # nobody got a frame in time: give up (each reports "no remote frame")
        if progress is not None:
            firsts = [s.first_at for s in sessions if s.first_at is not None]
            if not firsts:
                progress.update("connecting", now - started, duration, [None] * len(sessions))
            else:
                done = now - min(firsts)
                phase = "warming up" if done < warmup(duration) else "measuring"
                progress.update(phase, min(done, duration), duration, [s.fps_now() for s in sessions])
        await asyncio.sleep(POLL)
    if cpu0 is None:
        return None
    cpu1, t1 = cpu_seconds(), time.perf_counter()
    return round((cpu1 - cpu0) / (t1 - t0), 3) if t1 > t0 else None


def _maybe_prompt(s: Any, options: BenchOptions, now: float) -> None:
    """Type the next prompt into the session's queue when its time in the window has come."""
    prompts = options.prompts
    if s.prompts_sent >= len(prompts) or s.start is None or s.first_at is None:
        return
    span = max(0.0, s.first_at + options.duration - s.start[0])
    due = s.start[0] + span * (s.prompts_sent + 1) / (len(prompts) + 1)
    if now >= due:
        s.runner.queue.submit_prompt(prompts[s.prompts_sent], time.monotonic())
        s.runner.wake_pump()
        s.prompts_sent += 1


def _figures(s: Any, options: BenchOptions) -> SessionFigures:
    """A session's figures from its counters, latency history, records and session timings."""
    fig = SessionFigures(session=s.index)
    runner = s.runner
    fig.frames_sent = int(runner.frames_sent())
    fig.frames_received = int(runner.view.frames_received)
    session = runner.session
    if session is not None:
        for name, value in (("connect_s", session.connected_after), ("first_frame_s", session.first_frame_after)):
            setattr(fig, name, None if value is None else round(float(value), 3))
    fig.prompt_ack_ms = _round(quantile(s.records.acks_ms, 0.5))
    if s.start is None:
        return fig
    t0, sent0, recv0 = s.start
    t1, sent1, recv1 = s.end if s.end is not None else s.counters()
    span = max(1e-6, t1 - t0)
    fig.window_s = round(span, 2)
    fig.fps_sent = round((sent1 - sent0) / span, 2)
    fig.fps_received = round((recv1 - recv0) / span, 2)
    fig.held_fps = fig.fps_received >= HOLD_FPS * options.model.model.fps / 30.0
    meter = runner.latency
    window = None if meter is None else meter.window()
    if window is not None:
        samples = [ms for at, ms in (window.history or []) if t0 <= at <= t1]
        fig.latency_source = meter.source
        fig.latency_ms = {
            "p50": _round(quantile(samples, 0.5)),
            "p95": _round(quantile(samples, 0.95)),
            "p99": _round(quantile(samples, 0.99)),
            "samples": len(samples),
        }
    return fig


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
