"""What the stream runner knows about its session, and its projections (panel snapshot, records).

:class:`View` is updated from session events (:meth:`View.apply`) and by the runner; it never does
I/O. :meth:`View.snapshot` freezes it into the :class:`~decart_cli.ui.live.PanelSnapshot` the live
panel draws; :meth:`View.summary` builds the final ``summary`` record.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decart_cli.core import events as ev
from decart_cli.core.stats import StatsSnapshot
from decart_cli.errors import ExitStatus
from decart_cli.ui.live import PanelSnapshot

if TYPE_CHECKING:
    from decart_cli.media.source import SourceInfo
    from decart_cli.runtime.host import RunnerHost

__all__ = ["View", "fmt_size"]


def fmt_size(size: tuple[int, int, float] | None) -> str:
    """``(w, h, fps)`` → ``"W×H@FPS"`` (``"—"`` when unknown)."""
    if size is None:
        return "—"
    w, h, fps = size
    return f"{w}×{h}@{fps:g}"


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _kib(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


class View:
    """Mutable state of one run as shown to the user: what only the session's events and the runner's
    frame callbacks tell. What the runner holds anyway (the model, which ``/model`` replaces; the
    session's timings) is read from it, never copied here.

    Args:
        mirror: the ``--mirror`` mode value.
        record: the recording path, if any.
        transport: how media travels (``"livekit · h264"``), shown in the panel.
    """

    def __init__(self, *, mirror: str, record: Path | None, transport: str = "") -> None:
        self.transport = transport
        self.queue: str | None = None  # "waiting for capacity: 3 of 12" while queued
        self.latency_ms: float | None = None  # glass-to-glass median, None when nothing measures it
        self.latency_source: str | None = None  # "marker" | "frame_timing" | None: how latency_ms is measured
        self.mirror_mode = mirror
        self.record = record
        self.source_info: SourceInfo | None = None
        self.state = "connecting"
        self.session_id: str | None = None
        self.tick_seconds: float = 0
        self.total_seconds: float = 0
        self.stats = StatsSnapshot()
        self.frames_received = 0
        self.received_size: tuple[int, int] | None = None  # of the latest remote frame
        self.last_error: str | None = None
        self.message: str | None = None
        self.reconnect_note: str | None = None
        self.ended: str | None = None

    def apply(self, event: ev.Event) -> None:
        """Fold a session event into the view."""
        if isinstance(event, ev.StateChanged):
            self.state = event.new.value
            if self.state != "reconnecting":
                self.reconnect_note = None
            if event.new.value in ("connected", "generating", "disconnected"):
                self.queue = None
        elif isinstance(event, ev.Queued):
            self.queue = f"waiting for capacity: {event.position} of {event.size}"
        elif isinstance(event, ev.ServiceStatus):
            if self.state in ("connecting", "reconnecting"):
                self.queue = f"waiting for capacity ({event.status})" if self.queue is None else self.queue
        elif isinstance(event, ev.GenerationEnded) and event.final:
            self.message = f"the server ended the session ({event.reason})"
        elif isinstance(event, ev.SessionStarted):
            self.session_id = event.session_id
            self.tick_seconds = 0
        elif isinstance(event, ev.Tick):
            self.tick_seconds = event.seconds
            self.total_seconds = event.total_seconds
        elif isinstance(event, ev.ErrorEvent):
            self.last_error = f"{event.source}: {event.message}" + (f" — {event.hint}" if event.hint else "")
        elif isinstance(event, ev.Ack) and not event.success:
            self.last_error = f"{event.kind} rejected: {event.error}"
        elif isinstance(event, ev.Reconnecting):
            self.reconnect_note = (
                f"attempt {event.attempt}/{event.max_attempts} in {event.delay:.1f} s ({event.reason})"
            )
        elif isinstance(event, ev.Reconnected):
            self.reconnect_note = None
            self.message = f"reconnected after {event.attempts} attempt(s)"
        elif isinstance(event, ev.StatsUpdated):
            self.stats = event.stats

    def run_media(self, runner: RunnerHost) -> StatsSnapshot:
        """The latest session figures with the frame counts of the whole run.

        The session's counters restart with every connection; the runner counts frames at the
        source (all sources, /camera included) and at ``on_frame`` (all connections).
        """
        return dataclasses.replace(self.stats, frames_sent=runner.frames_sent(), frames_received=self.frames_received)

    def stats_record(self, runner: RunnerHost) -> dict[str, Any]:
        """The ``stats`` record body (rates rounded for readability; frame counts for the run)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self.run_media(runner)).items():
            out[key] = round(value, 3) if isinstance(value, float) else value
        # Before the transport's first byte sample (~1 s into a connection) a bitrate is unknown, not 0.
        for key, fps in (("bitrate_sent_kbps", "fps_sent"), ("bitrate_received_kbps", "fps_received")):
            if not out[key] and out[fps]:
                out[key] = None
        out["latency_ms"] = None if self.latency_ms is None else round(self.latency_ms, 1)
        out["latency_source"] = self.latency_source if self.latency_ms is not None else None
        return out

    def update_kind(self, runner: RunnerHost) -> str | None:
        """Which message the pending (or in-flight) change sends, in words; ``None`` when none."""
        from decart_cli.runtime.input import update_message

        q = runner.queue
        update = q.pending or q.in_flight
        if update is None:
            return None
        server = q.applied if update is q.in_flight else (q.in_flight or q.applied)
        if update_message(update, server) == "prompt":
            return "prompt (keeps the image)" if server.image is not None else "prompt"
        return "set_image (image + prompt)" if update.image is not None else "set_image (clears the image)"

    def snapshot(self, runner: RunnerHost) -> PanelSnapshot:
        """Freeze everything the panel shows."""
        q = runner.queue
        desired = q.desired
        info = self.source_info
        m = runner.model.model
        status = None
        if q.in_flight is not None:
            status = "sending…"
        elif q.pending is not None:
            status = "typing…" if (q.wake_at() or 0) > time.monotonic() else "queued"
        image = None
        if desired.image is not None:
            image = f"{desired.image_name or 'image'} ({_kib(len(desired.image))})"
        editor = runner.commands.editor if runner.commands is not None else None
        source = "—"
        mirror = self.mirror_mode
        if info is not None:
            source = f"{info.kind} · {info.name}" + (f" ({info.facing})" if info.facing else "")
            mirror = f"{'on' if info.mirrored else 'off'} (--mirror {self.mirror_mode})"
        recording = None
        if self.record is not None:
            written = getattr(runner.recorder, "frames_written", 0)
            recording = f"{self.record} ({written} frames)"
        return PanelSnapshot(
            state=self.state,
            model=runner.model.wire_name,
            model_size=f"{m.width}×{m.height}@{m.fps}",
            session_id=self.session_id,
            source=source,
            size_asked=fmt_size(info.asked if info else None),
            size_device=fmt_size(info.device if info else None),
            size_sent=fmt_size(info.sent if info else None),
            mirror=mirror,
            prompt=q.applied.prompt,
            next_prompt=desired.prompt,
            enhance=desired.enhance,
            image=image,
            update_status=status,
            tick_seconds=self.tick_seconds,
            total_seconds=self.total_seconds,
            elapsed=runner.now(),
            media=self.run_media(runner),
            recording=recording,
            reconnect_note=self.reconnect_note,
            last_error=self.last_error,
            message=self.message,
            ended=self.ended,
            input_text=editor.text if editor is not None else "",
            cursor=editor.cursor if editor is not None else 0,
            transport=self.transport or "—",
            queue=self.queue,
            update_kind=self.update_kind(runner),
            latency_ms=self.latency_ms,
            latency_source=self.latency_source if self.latency_ms is not None else None,
            show_help=runner.commands.show_help if runner.commands is not None else False,
        )

    def summary(self, runner: RunnerHost, *, reason: str, status: ExitStatus, reconnects: int) -> dict[str, Any]:
        """The final ``summary`` record."""
        ready = runner.ready_at
        end = runner.ended_at or time.monotonic()
        rec = runner.recorder
        session = runner.session
        connect_s, first_frame_s = (
            (None, None)
            if session is None
            else (_seconds(session.connected_after), _seconds(session.first_frame_after))
        )
        return {
            "event": "summary",
            "reason": reason,
            "frames_sent": runner.frames_sent(),
            "frames_received": self.frames_received,
            "frames_recorded": rec.frames_written if rec is not None else 0,
            "frames_lost": rec.frames_lost if rec is not None else 0,
            "recording": str(self.record) if self.record is not None else None,
            "recording_error": rec.loss_reason if rec is not None else None,
            "received_size": list(self.received_size) if self.received_size else None,
            "duration": round(end - ready, 3) if ready is not None else 0.0,
            "elapsed": round(runner.now(), 3),
            "billed_seconds": self.total_seconds,
            "reconnects": reconnects,
            "updates_sent": runner.queue.sent,
            "connect_s": connect_s,  # connect() → media connected, first connection
            "first_frame_s": first_frame_s,  # connect() → first remote frame
            "transport": self.transport,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "latency_source": self.latency_source if self.latency_ms is not None else None,
            "exit_status": status.name.lower(),
            "exit_code": int(status),
        }
