"""What the input line and the view need from the stream runner: a small Protocol, not the runner.

:mod:`.input` and :mod:`.view` are typed against :class:`RunnerHost`; :mod:`.runner` implements it
and imports them. So imports run one way (runner → input, view → host) and neither of them can
reach into the runner's internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from decart_cli.core.catalog import Resolved
    from decart_cli.core.prompt_queue import PromptQueue
    from decart_cli.media.recorder import Recorder
    from decart_cli.media.source import FrameSource, SourceSpec
    from decart_cli.realtime import RealtimeSession
    from decart_cli.runtime.input import CommandHandler
    from decart_cli.runtime.view import View

__all__ = ["RunnerHost"]


class RunnerHost(Protocol):
    """The running stream as its input line and view see it."""

    queue: PromptQueue
    view: View
    model: Resolved
    spec: SourceSpec
    source: FrameSource | None
    session: RealtimeSession | None
    commands: CommandHandler | None
    sent_by_old_sources: int
    ready_at: float | None
    ended_at: float | None

    @property
    def recorder(self) -> Recorder | None:
        """The recording, if any (read only)."""

    @property
    def ready(self) -> asyncio.Event:
        """Set once the session reached connected/generating."""

    def now(self) -> float:
        """Seconds since the run started."""

    def emit(self, record: dict[str, Any]) -> None:
        """Send an output record (``--json`` / plain log)."""

    def redraw(self) -> None:
        """Refresh the panel now."""

    def request_stop(self, reason: str) -> None:
        """End the run."""

    def wake_pump(self) -> None:
        """The prompt queue changed."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task owned by the run."""

    def frames_sent(self) -> int:
        """Frames handed to the encoder over the whole run."""

    async def open_source(self, spec: SourceSpec, model: Resolved) -> FrameSource:
        """Open a frame source for ``model`` (off the loop)."""
