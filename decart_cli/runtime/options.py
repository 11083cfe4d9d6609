"""What a stream run is given and what it ends with: :class:`StreamOptions` and :class:`StreamOutcome`.

The options also answer what follows from them alone: how latency is measured and the session's
configuration. Here too: the words for each way a run ends (:data:`ENDED_TEXT`) and the ones that
are a clean end (:data:`ENDING_OK`, exit 0). The runner (:mod:`.runner`) imports this, not the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from decart_cli.config import Settings
from decart_cli.core.catalog import Resolved
from decart_cli.core.prompt_queue import DEFAULT_DEBOUNCE, PromptState
from decart_cli.core.prompts_file import TimedPrompt
from decart_cli.core.session import TransportKind
from decart_cli.errors import ConnectionFailed, DecartError, ExitStatus, Interrupted
from decart_cli.media.source import MirrorMode, SourceSpec
from decart_cli.transport.signaling import is_loopback

if TYPE_CHECKING:
    from decart_cli.realtime import SessionConfig

__all__ = ["ENDED_TEXT", "ENDING_OK", "LATENCY_MODES", "StreamOptions", "StreamOutcome", "UiMode", "ending_error"]

UiMode = Literal["live", "plain", "json"]
LATENCY_MODES = ("auto", "marker", "frame-timing")
ENDING_OK = {"duration", "quit", "input_end", "window_closed", "session_limit"}
ENDED_TEXT = {
    "duration": "--duration reached",
    "session_limit": "the session's time limit was reached",
    "quit": "quit",
    "input_end": "end of the input file",
    "window_closed": "window closed",
    "signal": "interrupted",
    "source_error": "camera / input failure",
    "session_error": "connection lost for good",
    "error": "error",
}


@dataclass(frozen=True)
class StreamOptions:
    """Everything a run needs, validated by the command before any I/O."""

    settings: Settings
    model: Resolved
    spec: SourceSpec
    mirror: MirrorMode = MirrorMode.AUTO
    transport: TransportKind = "livekit"
    codec: str | None = None  # None: the transport's default (H264 on LiveKit, VP8 direct)
    speed: str | None = None
    reconnect: bool = True
    initial: PromptState = field(default_factory=PromptState)
    duration: float | None = None
    script: tuple[TimedPrompt, ...] = ()
    record: Path | None = None
    window: bool = False
    ui: UiMode = "plain"
    debounce: float = DEFAULT_DEBOUNCE
    install_signals: bool = True
    # How glass-to-glass latency is measured (LATENCY_MODES): "auto" stamps the frame-id marker when
    # the server is on this machine (decart serve preserves it) and asks LiveKit for frame timing.
    latency: str = "auto"
    # End the process itself once a LiveKit run is over (the CLI): livekit 1.2.1's native threads can
    # abort the interpreter's teardown (SIGABRT/SIGSEGV after a clean end, seen about one run in two).
    exit_process: bool = False

    @property
    def stamps_marker(self) -> bool:
        """Whether outgoing frames carry the frame-id marker: ``--latency marker``, or ``auto`` against a
        server on this machine (``decart serve`` copies it to its output; the cloud does not)."""
        mode = self.latency
        return mode == "marker" or (mode == "auto" and is_loopback(self.settings.realtime_url))

    @property
    def frame_timing(self) -> bool:
        """Whether the session asks for frame timing (LiveKit only; ``--latency auto`` or ``frame-timing``)."""
        return self.latency in ("auto", "frame-timing") and self.transport == "livekit"

    def session_config(self, model: Resolved, initial: PromptState) -> SessionConfig:
        """The session's configuration: ``model``, starting from the prompt state ``initial``.

        The command checked that the settings hold a credential.
        """
        from decart_cli.core.session import DesiredState
        from decart_cli.realtime import SessionConfig

        credential = self.settings.credential
        assert credential is not None  # the command checked it
        return SessionConfig(
            realtime_url=self.settings.realtime_url,
            credential=credential,
            model=model,
            initial=DesiredState(prompt=initial.prompt, enhance=initial.enhance, image=initial.image),
            transport=self.transport,
            codec=self.codec,  # None: the transport's default
            speed=self.speed,
            reconnect=self.reconnect,
            timeouts=self.settings.timeouts,
            frame_timing=self.frame_timing,
        )


@dataclass(frozen=True)
class StreamOutcome:
    """How the run ended: ``reason`` and the error to raise (``None`` for exit 0)."""

    reason: str
    error: DecartError | None
    summary: dict[str, Any]

    @property
    def exit_status(self) -> ExitStatus:
        """The process exit code this outcome maps to."""
        return ExitStatus.OK if self.error is None else self.error.exit_status


def ending_error(reason: str, error: DecartError | None, signal: str | None) -> DecartError | None:
    """The error a run that stopped for ``reason`` reports (before its recording is checked).

    A stop signal's :class:`Interrupted` comes first; then ``error``; a run that ended without an
    error for a reason that is not a clean end (:data:`ENDING_OK`) lost its session unexpectedly.
    """
    if signal is not None:
        return Interrupted(signal)
    if error is None and reason not in ENDING_OK:
        return ConnectionFailed("the session ended unexpectedly")
    return error
