"""The live panel of ``decart stream`` on a TTY: a pure rendering of a frozen :class:`PanelSnapshot`.

The runner builds a new snapshot whenever something changes and hands it to :class:`LivePanel`;
Rich's ``Live(get_renderable=...)`` pulls the latest one on every refresh, so rendering never races
with the event loop. :func:`render` is pure and is what the tests print to a captured ``Console``.

Layout (the habit of ``lk`` and htop: the input line always visible, details dropped first)::

    ╭ decart stream · lucy-2.1 ───────────────────────────────────────────────╮
    │ ● LIVE · lucy-2.1 · livekit · ↑ 30.0 ↓ 29.8 fps · 85 ms · billed 7 s     │  status strip
    │ (what the current state means, when it is not LIVE)                      │
    │ Prompt  anime style  [enhance on]  → cyberpunk  typing… · sends prompt   │
    │ (feedback for the last command)                                          │
    │ › cyber▌                                                                  │  the input line
    │ ? help · Enter send · Esc clear · Tab complete · ↑↓ history · /quit       │  details, in the
    │ Media   ↑ 1500 kbps · ↓ 900 kbps · RTT 3 ms · loss 0.0% · frames …       │  order they are
    │ …                                                                        │  kept
    ╰──────────────────────────────────────────────────────────────────────────╯

Every line is one terminal row (cropped with an ellipsis, never wrapped), and :func:`render` keeps to
the height it is given, so Rich never cuts the bottom — where the input line is. The seed's state
table is shown only on ``?``/F1 (:data:`STATE_ROWS`), with the meaning of the current state in the
panel when it is not LIVE. :class:`LivePanel` clears the screen when the terminal size changes, so a
resize leaves no stale lines.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from decart_cli.core.stats import StatsSnapshot

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.text import Text

__all__ = ["HELP_LINES", "STATE_ROWS", "LivePanel", "PanelSnapshot", "render"]

# (state, meaning, what the user sees) — the seed's table, in its order; shown on `?`.
STATE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("connecting", "Initial connection in progress", "loading…"),
    ("connected", "Ready to send prompts", "ready"),
    ("generating", "Actively producing transformed video", "● live"),
    ("reconnecting", "Auto-reconnecting after drop", "reconnecting banner"),
    ("disconnected", "Not connected", "reconnect with /reconnect"),
)
BADGES = {
    "connecting": ("… connecting", "cyan"),
    "connected": ("✔ ready", "green"),
    "generating": ("● LIVE", "bold green"),
    "reconnecting": ("⟳ reconnecting", "bold yellow"),
    "disconnected": ("✖ disconnected", "bold red"),
}
KEYS_HINT = "? help · Enter send · Esc clear · Tab complete · ↑↓ history · Ctrl-W word · /quit"
HELP_LINES: tuple[str, ...] = (
    "Type a prompt: it is sent when you pause (~0.5 s); 1–2 characters wait for Enter. Enter sends at once.",
    "/image PATH  reference image with the current prompt (one set) · /image off  clear it",
    "/enhance on|off  prompt enhancement · /model NAME  switch model · /camera SPEC  switch camera",
    "/reconnect  reconnect now · /quit  leave · ?, F1 or /help  this help (any key closes it)",
    "Keys: Esc clear · Ctrl-U clear · Ctrl-W delete a word · Tab complete /model names and /image paths",
    "      ↑/↓ history (kept between runs) · ←/→ Home/End move · q/Esc in the video window closes it",
    *(f"State {name:<13} {meaning} ({shown})" for name, meaning, shown in STATE_ROWS),
)
MIN_BOXED_HEIGHT = 8  # below this many rows the panel drops its border


@dataclass(frozen=True)
class PanelSnapshot:
    """Everything the panel shows, as plain values (no live objects).

    Sizes are preformatted ``"W×H@FPS"`` strings; rates are floats; ``None`` means "not known yet".
    """

    state: str = "connecting"
    model: str = ""
    model_size: str = ""
    session_id: str | None = None
    source: str = ""
    size_asked: str = ""
    size_device: str = ""
    size_sent: str = ""
    mirror: str = ""
    prompt: str | None = None
    enhance: bool = True
    image: str | None = None
    next_prompt: str | None = None  # the prompt on its way (typed, queued or awaiting its ack)
    update_status: str | None = None  # e.g. "sending…", "queued", "typing…"
    tick_seconds: float = 0
    total_seconds: float = 0
    elapsed: float = 0.0
    media: StatsSnapshot = field(default_factory=StatsSnapshot)  # the session's figures, as reported
    recording: str | None = None
    reconnect_note: str | None = None  # "attempt 2/5 in 2.0 s: connection lost"
    last_error: str | None = None
    message: str | None = None  # feedback for the last command ("unknown command /foo")
    ended: str | None = None  # set on the final frame: why the run ended
    input_text: str = ""
    cursor: int = 0
    transport: str = "—"  # "livekit" / "webrtc"
    queue: str | None = None  # "waiting for capacity: 3 of 12"
    update_kind: str | None = None  # which message the next change sends: "prompt" or "set_image"
    latency_ms: float | None = None  # glass-to-glass, "—" when None
    latency_source: str | None = None  # how it was measured, e.g. "marker"
    show_help: bool = False  # `?` / F1: the help and the state table instead of the details


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def _opt(value: float | None, fmt: str, none: str = "—") -> str:
    return none if value is None else format(value, fmt)


def _kbps(value: float, fps: float) -> str:
    # The transport's first byte sample comes ~1 s into a connection: until then a 0 is "not measured".
    return "—" if value <= 0 and fps > 0 else f"{value:.0f}"


def _text(content: str = "", style: str | None = None) -> Text:
    from rich.text import Text

    return Text(content, style=style or "", no_wrap=True, overflow="ellipsis")


def _segments(parts: Iterable[tuple[str, str | None]]) -> Text:
    line = _text()
    for i, (part, style) in enumerate(parts):
        if i:
            line.append(" · ", style="dim")
        line.append(part, style=style or "")
    return line


def status_strip(snap: PanelSnapshot, width: int = 200) -> Text:
    """The one-line status: state (or queue), model, transport, fps both ways, latency, billed seconds.

    Shortened to fit ``width`` columns (latency source, then the transport, go first); cropped beyond.
    """
    style: str | None
    if snap.ended is not None:
        badge, style = f"■ ended: {snap.ended}", "bold"
    elif snap.queue:
        badge, style = f"⧗ {snap.queue}", "bold yellow"
    else:
        badge, style = BADGES.get(snap.state, (snap.state, ""))
    media = snap.media
    latency = "latency —" if snap.latency_ms is None else f"{snap.latency_ms:.0f} ms"
    shown_by = (snap.latency_source or "").replace("_", " ")  # "marker", "frame timing"
    source = f" ({shown_by})" if shown_by and snap.latency_ms is not None else ""
    fps = f"↑{media.fps_sent:.1f} ↓{media.fps_received:.1f} fps"
    billed = f"billed {snap.total_seconds:g} s"
    variants = [
        [
            (badge, style),
            (snap.model or "—", "bold"),
            (snap.transport, None),
            (fps, None),
            (latency + source, None),
            (billed, None),
        ],
        [
            (badge, style),
            (snap.model or "—", "bold"),
            (snap.transport, None),
            (fps, None),
            (latency, None),
            (billed, None),
        ],
        [(badge, style), (snap.model or "—", "bold"), (fps, None), (latency, None), (billed, None)],
        [(badge, style), (snap.model or "—", "bold"), (fps, None), (billed, None)],
        [(badge, style), (fps, None), (billed, None)],
    ]
    lines = [_segments(v) for v in variants]
    return next((line for line in lines if line.cell_len <= width), lines[-1])


def state_meaning(snap: PanelSnapshot) -> tuple[str, str] | None:
    """What the current state means for the user, when it is not plain LIVE (the seed's table, one row)."""
    if snap.ended is not None:
        return (f"■ session ended: {snap.ended}", "bold")
    if snap.queue:
        return ("waiting for a free slot: the session starts by itself", "yellow")
    if snap.state == "reconnecting":
        return ("⟳ reconnecting" + (f" — {snap.reconnect_note}" if snap.reconnect_note else "…"), "bold yellow")
    if snap.state == "disconnected":
        return ("✖ disconnected — reconnect with /reconnect (or /quit)", "bold red")
    if snap.state == "connecting":
        return ("… loading: connecting to the model", "cyan")
    if snap.state == "connected":
        return ("✔ ready: waiting for the first generated frame", "green")
    return None


def _prompt_line(snap: PanelSnapshot) -> Text:
    line = _text("Prompt  ", "bold")
    line.append(snap.prompt if snap.prompt else "(none: passthrough)")
    line.append(f"  [enhance {'on' if snap.enhance else 'off'}]", style="dim")
    if snap.next_prompt is not None and snap.next_prompt != snap.prompt:
        line.append(f"  → {snap.next_prompt}", style="yellow")
    if snap.update_status:
        line.append(f"  {snap.update_status}", style="yellow")
    if snap.update_kind:
        line.append(f" · sends {snap.update_kind}", style="dim")
    return line


def _input_line(text: str, cursor: int) -> Text:
    line = _text("› ", "bold cyan")
    cursor = max(0, min(cursor, len(text)))
    line.append(text[:cursor])
    line.append(text[cursor : cursor + 1] or " ", style="reverse")
    line.append(text[cursor + 1 :])
    return line


def _row(label: str, value: str | Text, style: str | None = None) -> Text:
    line = _text(f"{label:<8}", "bold")
    if isinstance(value, str):
        line.append(value, style=style or "")
    else:
        line.append_text(value)
    return line


def _details(snap: PanelSnapshot) -> list[Text]:
    """The lines below the input, most useful first (the last ones go first when rows are short)."""
    if snap.show_help:
        return [_text(line, "cyan") for line in HELP_LINES]
    media = snap.media
    loss = _opt(None if media.loss is None else media.loss * 100, ".1f")
    lines = []
    if snap.last_error:
        lines.append(_row("Error", snap.last_error, "red"))
    lines.append(_text(KEYS_HINT, "dim"))
    lines.append(
        _row(
            "Media",
            f"↑ {_kbps(media.bitrate_sent_kbps, media.fps_sent)} kbps · "
            f"↓ {_kbps(media.bitrate_received_kbps, media.fps_received)} kbps · "
            f"RTT {_opt(media.rtt_ms, '.0f')} ms · loss {loss}% · "
            f"frames {media.frames_sent} sent / {media.frames_received} received",
        )
    )
    if snap.image:
        lines.append(_row("Image", snap.image))
    if snap.recording:
        lines.append(_row("Record", snap.recording))
    camera = f"{snap.source} · mirror {snap.mirror}" if snap.mirror else snap.source
    lines.append(_row("Camera", camera))
    lines.append(_row("Sizes", f"asked {snap.size_asked} · device {snap.size_device} · sent {snap.size_sent}"))
    model = snap.model + (f" ({snap.model_size})" if snap.model_size else "")
    model += f" · over {snap.transport}" if snap.transport != "—" else ""  # the strip drops it first
    model += f" · session {snap.session_id}" if snap.session_id else ""
    lines.append(_row("Model", model))
    lines.append(
        _row(
            "Billed",
            f"{snap.tick_seconds:g} s this session · {snap.total_seconds:g} s total · {_clock(snap.elapsed)} elapsed",
        )
    )
    return lines


def panel_lines(snap: PanelSnapshot, rows: int, width: int = 200) -> list[Text]:
    """The panel's lines for ``rows`` rows of ``width`` columns: status, state, prompt, message and the
    input line first (the input line always), then as many details as fit."""
    essential: list[tuple[int, Text]] = [(0, status_strip(snap, width))]  # (drop order: higher goes first)
    meaning = state_meaning(snap)
    if meaning is not None:
        essential.append((3, _text(*meaning)))
    essential.append((2, _prompt_line(snap)))
    if snap.message:
        essential.append((1, _text(snap.message, "yellow")))
    essential.append((-1, _input_line(snap.input_text, snap.cursor)))
    rows = max(1, rows)
    while len(essential) > rows:
        drop = max(range(len(essential)), key=lambda i: essential[i][0])
        del essential[drop]
    lines = [line for _, line in essential]
    return lines + _details(snap)[: rows - len(lines)]


def render(snap: PanelSnapshot, *, width: int = 100, height: int = 30) -> RenderableType:
    """Build the panel for ``snap`` in a ``width`` × ``height`` terminal (pure: same inputs, same text).

    The result is at most ``height - 1`` rows (one row is left for the cursor), every line cropped to
    the width, so nothing wraps and the input line is never cut off.
    """
    from rich import box
    from rich.console import Group
    from rich.panel import Panel

    budget = max(1, height - 1)
    boxed = budget >= MIN_BOXED_HEIGHT
    lines = panel_lines(snap, budget - 2 if boxed else budget, width - 4 if boxed else width)
    if not boxed:
        return Group(*lines)
    return Panel(
        Group(*lines),
        title=f"decart stream · {snap.model}",
        title_align="left",
        box=box.ROUNDED,
        width=max(20, width),
        padding=(0, 1),
    )


class LivePanel:
    """Rich ``Live`` around :func:`render`; the caller replaces :attr:`snapshot` and calls :meth:`refresh`.

    Args:
        console: where to draw (the stderr console: stdout stays for data).
        snapshot: the first snapshot to show.
    """

    def __init__(self, console: Console, snapshot: PanelSnapshot) -> None:
        self.snapshot = snapshot
        self._console = console
        self._live: Live | None = None
        self._size: tuple[int, int] | None = None
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    def _renderable(self) -> RenderableType:
        width, height = self._console.size
        return render(self.snapshot, width=width, height=height)

    def start(self) -> None:
        """Start drawing. Refreshes are driven by the caller (no Rich refresh thread)."""
        from rich.live import Live

        real_stderr = sys.stderr
        self._size = tuple(self._console.size)  # type: ignore[assignment]
        self._live = Live(
            get_renderable=self._renderable,
            console=self._console,
            auto_refresh=False,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=True,  # stray writes to stderr print above the panel, not through it
            vertical_overflow="crop",
        )
        self._live.start(refresh=True)
        # Log handlers hold the real stderr: point them at Rich's proxy while the panel is up.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is real_stderr:
                self._handlers.append((handler, handler.setStream(sys.stderr)))

    def update(self, snapshot: PanelSnapshot) -> None:
        """Show ``snapshot`` from the next refresh on."""
        self.snapshot = snapshot

    def refresh(self) -> None:
        """Redraw now with the latest snapshot; after a terminal resize, from a cleared screen."""
        if self._live is None:
            return
        size = tuple(self._console.size)
        if size != self._size:
            self._size = size  # type: ignore[assignment]
            self._redraw_from_scratch()
        self._live.refresh()

    def _redraw_from_scratch(self) -> None:
        # The terminal re-wrapped the old frame's rows at the new width, so Live's "cursor up N rows"
        # would land in the middle of it and leave stale lines: clear the screen and forget the frame.
        assert self._live is not None
        self._console.clear(home=True)
        live_render = getattr(self._live, "_live_render", None)
        if live_render is not None and hasattr(live_render, "_shape"):
            live_render._shape = None

    def stop(self) -> None:
        """Draw the final snapshot and leave it on screen. Idempotent."""
        live, self._live = self._live, None
        if live is not None:
            for handler, stream in self._handlers:
                handler.setStream(stream)
            self._handlers.clear()
            live.stop()
