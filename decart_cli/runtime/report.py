"""The error that ends a run is said once: in words, with the next step, before the closing line.

Server errors reach the runner twice — as the session's :class:`~decart_cli.core.events.ErrorEvent`
when they happen and as the exception that ends the run. :class:`FinalError` holds back the
session's permanent errors (those end the session) and, at the end, picks the words for the one
``error:``/``hint:`` pair: the session's own report when it is the same failure. Held errors that
did not end the run are released as ordinary records. With ``--json`` the session's record of the
final error still goes to stdout, with its own time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from decart_cli.core import events as ev
from decart_cli.errors import DecartError

__all__ = ["FinalError"]


class FinalError:
    """Held permanent errors of one run (see the module docstring).

    Args:
        emit: writes a record (already carrying its ``t``) to the run's sink.
        json_mode: ``--json``: the final error's own record is emitted too.
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None], *, json_mode: bool) -> None:
        self._emit = emit
        self._json = json_mode
        self._held: list[tuple[ev.ErrorEvent, dict[str, Any]]] = []

    def hold(self, event: ev.Event, record: dict[str, Any]) -> bool:
        """Keep ``record`` back when ``event`` is a permanent error (it ends the session); True if kept."""
        if isinstance(event, ev.ErrorEvent) and event.permanent:
            self._held.append((event, record))
            return True
        return False

    def words(self, error: DecartError | None) -> tuple[str | None, str | None]:
        """Release the held records and return ``(message, hint)`` for the run's one error line.

        ``(None, None)`` when the run ended without an error.
        """
        final: tuple[str, str | None] | None = None
        for event, record in self._held:
            same = error is not None and (error.message == event.message or error.message in event.message)
            if same and final is None:
                final = (event.message, event.hint or (error.hint if error is not None else None))
                if self._json:
                    self._emit(record)
            else:
                self._emit(record)
        self._held.clear()
        if error is None:
            return None, None
        return final or (error.message, error.hint)
