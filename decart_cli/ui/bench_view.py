"""``decart bench`` on the terminal: a progress bar while it runs (stderr, TTY only), a table at the end.

Both read plain values (the bench's phase and per-session fps; the ``--json`` document at the
end), so the table shows exactly what ``--json`` prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decart_cli.ui.console import Streams

__all__ = ["BenchBar", "print_report", "report_rows"]

COLUMNS = (
    "Session",
    "FPS sent",
    "FPS recv",
    "≥29",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "Latency by",
    "Connect s",
    "1st frame s",
    "Ack ms",
    "CPU s/s",
    "RSS MB",
)


class BenchBar:
    """A transient Rich progress bar on stderr: phase, seconds done of the total, received fps per session."""

    def __init__(self, streams: Streams, sessions: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
            TextColumn("{task.fields[fps]}"),
            TimeElapsedColumn(),
            console=streams.console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("connecting", total=1.0, fps="")
        self._sessions = sessions
        self._progress.start()

    def update(self, phase: str, done: float, total: float, fps: list[float | None]) -> None:
        """Show ``phase`` and ``done`` of ``total`` seconds; fps of each session (— before its first frame)."""
        shown = " ".join("—" if f is None else f"{f:.0f}" for f in fps)
        self._progress.update(
            self._task, description=f"bench: {phase}", completed=done, total=max(total, 1e-9), fps=f"fps {shown}"
        )

    def stop(self) -> None:
        """Remove the bar."""
        self._progress.stop()


def _num(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def report_rows(doc: dict[str, Any]) -> list[list[str]]:
    """One row per session of a bench ``--json`` document, in :data:`COLUMNS` order."""
    rows = []
    for r in doc["results"]:
        lat = r["latency_ms"]
        rows.append(
            [
                str(r["session"]) + ("" if r["error"] is None else " ✗"),
                _num(r["fps_sent"]),
                _num(r["fps_received"]),
                "yes" if r["held_fps"] else "no",
                _num(lat["p50"]),
                _num(lat["p95"]),
                _num(lat["p99"]),
                (r["latency_source"] or "—").replace("_", " "),
                _num(r["connect_s"], 2),
                _num(r["first_frame_s"], 2),
                _num(r["prompt_ack_ms"]),
                _num(r["cpu_per_s"], 3),
                _num(r["peak_rss_mb"], 0),
            ]
        )
    return rows


def print_report(streams: Streams, doc: dict[str, Any]) -> None:
    """The table on stdout (boxed on a TTY, tab-separated otherwise), then one summary line on stderr."""
    width, height = doc["size"]
    title = (
        f"decart bench · {doc['model']} {width}×{height}@{doc['fps']} · {doc['transport']} {doc['codec']} · "
        f"{doc['duration_s']:g} s from the first frame, measured after {doc['warmup_s']:g} s"
    )
    streams.table(title, COLUMNS, report_rows(doc))
    m = doc["machine"]
    load = " ".join(f"{x:.2f}" for x in m["load_avg"]) if m["load_avg"] else "?"
    held = f"{doc['sessions_held']} of {doc['sessions']} session(s) held ≥ 29 fps"
    cpu = "—" if doc["cpu_per_s"] is None else f"{doc['cpu_per_s']:.3f}"
    streams.info(
        f"{held}; this process {cpu} CPU s/s, peak RSS {doc['peak_rss_mb']:.0f} MB; {m['cpus']} cores, load {load}"
    )
    for r in doc["results"]:
        if r["error"] is not None:
            streams.warn(f"session {r['session']}: {r['error']}")
