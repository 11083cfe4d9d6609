"""``decart bench`` on the terminal: a progress bar while it runs (stderr, TTY only), a table at the end.

Both read plain values (the bench's phase and per-session fps; the ``--json`` document at the
end), so the table shows exactly what ``--json`` prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decart_cli.ui.console import Streams

__all__ = ["FIGURES", "BenchBar", "print_report", "report_table"]

FIGURES = (
    "FPS sent",
    "FPS received",
    "Held ≥ 29 fps",
    "Latency p50 ms",
    "Latency p95 ms",
    "Latency p99 ms",
    "Latency by",
    "Connect s",
    "First frame s",
    "Prompt ack ms",
    "CPU s/s",
    "Peak RSS MB",
    "Error",
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


def _cells(r: dict[str, Any]) -> dict[str, str]:
    """One session's result (a ``results[]`` entry) as the table's cells, by figure."""
    lat = r["latency_ms"]
    return {
        "FPS sent": _num(r["fps_sent"]),
        "FPS received": _num(r["fps_received"]),
        "Held ≥ 29 fps": "yes" if r["held_fps"] else "no",
        "Latency p50 ms": _num(lat["p50"]),
        "Latency p95 ms": _num(lat["p95"]),
        "Latency p99 ms": _num(lat["p99"]),
        "Latency by": (r["latency_source"] or "—").replace("_", " "),
        "Connect s": _num(r["connect_s"], 2),
        "First frame s": _num(r["first_frame_s"], 2),
        "Prompt ack ms": _num(r["prompt_ack_ms"]),
        "CPU s/s": _num(r["cpu_per_s"], 3),
        "Peak RSS MB": _num(r["peak_rss_mb"], 0),
        "Error": r["error"] or "—",
    }


def report_table(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The columns and rows of a bench ``--json`` document: one row per figure, one column per session
    (so it fits a terminal whatever the number of figures)."""
    results = doc["results"]
    columns = ["Figure", *(f"Session {r['session']}" for r in results)]
    cells = [_cells(r) for r in results]
    return columns, [[figure, *(c[figure] for c in cells)] for figure in FIGURES]


def print_report(streams: Streams, doc: dict[str, Any]) -> None:
    """The table on stdout (boxed on a TTY, tab-separated otherwise), then one summary line on stderr."""
    width, height = doc["size"]
    title = (
        f"decart bench · {doc['model']} {width}×{height}@{doc['fps']} · {doc['transport']} {doc['codec']} · "
        f"{doc['duration_s']:g} s from the first frame, measured after {doc['warmup_s']:g} s"
    )
    columns, rows = report_table(doc)
    streams.table(title, columns, rows)
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
