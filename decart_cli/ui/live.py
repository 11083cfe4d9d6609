"""The live panel of ``decart stream`` on a TTY: a pure rendering of a frozen :class:`PanelSnapshot`.

The runner builds a new snapshot whenever something changes and hands it to :class:`LivePanel`;
Rich's ``Live(get_renderable=...)`` pulls the latest one on every refresh, so rendering never races
with the event loop. :func:`render` is pure and is what the tests (and the report) print to a
captured ``Console``.

The connection-state table is the seed's (streaming best practices, "Track connection state"):
every state with its meaning and what the user sees, the current one marked and highlighted.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from decart_cli.core.stats import StatsSnapshot

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

__all__ = ["STATE_ROWS", "LivePanel", "PanelSnapshot", "render"]

# (state, meaning, what the user sees) — the seed's table, in its order.
STATE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("connecting", "Initial connection in progress", "loading…"),
    ("connected", "Ready to send prompts", "ready"),
    ("generating", "Actively producing transformed video", "● live"),
    ("reconnecting", "Auto-reconnecting after drop", "reconnecting banner"),
    ("disconnected", "Not connected", "reconnect with /reconnect"),
)

SHORT_HELP = "Enter send · ↑↓ history · /image /enhance /model /camera /reconnect /quit"
COMPACT_BELOW = 30  # terminal lines: below this the panel uses its compact form
HELP_LINE = "Enter send · ↑/↓ history · /image PATH · /enhance on|off · /model NAME · /camera SPEC · /reconnect · /quit"


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
    extra: dict[str, str] = field(default_factory=dict)


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def _opt(value: float | None, fmt: str, none: str = "—") -> str:
    return none if value is None else format(value, fmt)


def _banner(snap: PanelSnapshot) -> tuple[str, str] | None:
    if snap.ended is not None:
        return (f"■ session ended: {snap.ended}", "bold")
    if snap.state == "reconnecting":
        return ("⟳ reconnecting" + (f" — {snap.reconnect_note}" if snap.reconnect_note else "…"), "bold yellow")
    if snap.state == "disconnected":
        return ("✖ disconnected — reconnect with /reconnect (or /quit)", "bold red")
    if snap.state == "connecting":
        return ("… loading: connecting to the model", "cyan")
    if snap.state == "connected":
        return ("✔ ready: waiting for the first generated frame", "green")
    return ("● LIVE", "bold green")


def _state_table(snap: PanelSnapshot) -> Any:
    from rich import box
    from rich.table import Table

    states = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_edge=False)
    states.add_column(" ", width=1, no_wrap=True)
    states.add_column("State", no_wrap=True)
    states.add_column("Meaning")
    states.add_column("Shown", no_wrap=True)
    for name, meaning, shown in STATE_ROWS:
        current = name == snap.state
        states.add_row("▶" if current else "", name, meaning, shown, style="bold reverse" if current else "dim")
    return states


def _state_line(snap: PanelSnapshot) -> Any:
    """The same table on one line, for short terminals: every state, the current one marked (the
    banner below it shows what that state means for the user)."""
    from rich.text import Text

    line = Text("State   ", style="bold")
    for i, (name, _meaning, _shown) in enumerate(STATE_ROWS):
        if i:
            line.append(" · ", style="dim")
        if name == snap.state:
            line.append(f"▶ {name}", style="bold reverse")
        else:
            line.append(name, style="dim")
    return line


def render(snap: PanelSnapshot, *, compact: bool = False) -> RenderableType:
    """Build the panel for ``snap`` (pure: the same snapshot always renders the same text).

    Args:
        compact: for short terminals (about 24 lines): the state table becomes one line and the
            help line is shortened, so the input line stays on screen.
    """
    from rich import box
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    states = _state_line(snap) if compact else _state_table(snap)

    info = Table.grid(padding=(0, 2), expand=True)
    info.add_column(style="bold", no_wrap=True)
    info.add_column(ratio=1)
    model = snap.model + (f" ({snap.model_size})" if snap.model_size else "")
    info.add_row("Model", model + (f" · session {snap.session_id}" if snap.session_id else ""))
    info.add_row("Camera", f"{snap.source} · mirror {snap.mirror}" if snap.mirror else snap.source)
    info.add_row("Sizes", f"asked {snap.size_asked} · device {snap.size_device} · sent {snap.size_sent}")
    prompt = Text(snap.prompt if snap.prompt else "(none: passthrough)")
    prompt.append(f"  [enhance {'on' if snap.enhance else 'off'}]", style="dim")
    if snap.next_prompt is not None and snap.next_prompt != snap.prompt:
        prompt.append(f"  → {snap.next_prompt}", style="yellow")
    if snap.update_status:
        prompt.append(f"  {snap.update_status}", style="yellow")
    info.add_row("Prompt", prompt)
    info.add_row("Image", snap.image or "—")
    info.add_row(
        "Billed",
        f"{snap.tick_seconds:g} s this session · {snap.total_seconds:g} s total · {_clock(snap.elapsed)} elapsed",
    )
    media = snap.media
    loss = _opt(None if media.loss is None else media.loss * 100, ".1f")
    info.add_row(
        "Media",
        f"↑ sent {media.fps_sent:.1f} fps {media.bitrate_sent_kbps:.0f} kbps · "
        f"↓ received {media.fps_received:.1f} fps {media.bitrate_received_kbps:.0f} kbps · "
        f"RTT {_opt(media.rtt_ms, '.0f')} ms · loss {loss}%",
    )
    info.add_row("Frames", f"{media.frames_sent} sent · {media.frames_received} received")
    if snap.recording:
        info.add_row("Record", snap.recording)
    for key, value in snap.extra.items():
        info.add_row(key, value)
    info.add_row("Error", Text(snap.last_error, style="red") if snap.last_error else Text("—"))

    parts: list[Any] = [states]
    banner = _banner(snap)
    if banner is not None:
        parts.append(Text(banner[0], style=banner[1]))
    parts += [info] if compact else [info, Text("")]
    if snap.message:
        parts.append(Text(snap.message, style="yellow"))
    parts += [_input_line(snap.input_text, snap.cursor), Text(SHORT_HELP if compact else HELP_LINE, style="dim")]
    return Panel(Group(*parts), title=f"decart stream · {snap.model}", title_align="left", box=box.ROUNDED)


def _input_line(text: str, cursor: int) -> Any:
    from rich.text import Text

    line = Text("› ", style="bold cyan")
    cursor = max(0, min(cursor, len(text)))
    line.append(text[:cursor])
    line.append(text[cursor : cursor + 1] or " ", style="reverse")
    line.append(text[cursor + 1 :])
    return line


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
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    def start(self) -> None:
        """Start drawing. Refreshes are driven by the caller (no Rich refresh thread)."""
        from rich.live import Live

        real_stderr = sys.stderr
        self._live = Live(
            get_renderable=lambda: render(self.snapshot, compact=self._console.size.height < COMPACT_BELOW),
            console=self._console,
            auto_refresh=False,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=True,  # stray writes to stderr print above the panel, not through it
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
        """Redraw now with the latest snapshot."""
        if self._live is not None:
            self._live.refresh()

    def stop(self) -> None:
        """Draw the final snapshot and leave it on screen. Idempotent."""
        live, self._live = self._live, None
        if live is not None:
            for handler, stream in self._handlers:
                handler.setStream(stream)
            self._handlers.clear()
            live.stop()
