"""The emulator's event log: every session event as a dict (for tests) and one log line (for humans).

Thread-safe: the emulator appends on its loop thread while tests read :meth:`EventLog.snapshot` from theirs.
No credential ever enters an event: the server redacts ``api_key`` before logging the query, and every
line also passes through :func:`decart_cli.config.redact`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

from decart_cli.config import redact

__all__ = ["EventLog", "shorten"]

logger = logging.getLogger("decart_cli.emulator")

MAX_EVENTS: Final = 20_000  # a long `decart serve` run must not grow without bound
_LONG_FIELDS: Final = ("image_data", "sdp")


def shorten(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a wire message with base64 images and SDPs replaced by their length."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _LONG_FIELDS and isinstance(value, str):
            out[key] = f"<{len(value)} chars>"
        else:
            out[key] = value
    return out


class EventLog:
    """Append-only list of event dicts, each also logged as one line on the ``decart_cli.emulator`` logger."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, event: str, conn: int | None = None, **fields: Any) -> dict[str, Any]:
        """Record ``{"event": event, "conn": conn, **fields}`` and log it; returns the record."""
        record: dict[str, Any] = {"event": event}
        if conn is not None:
            record["conn"] = conn
        record.update(fields)
        with self._lock:
            self._events.append(record)
            if len(self._events) > MAX_EVENTS:
                del self._events[: len(self._events) - MAX_EVENTS]
        if event in ("fault", "error"):
            level = logging.WARNING
        elif event == "sent" and fields.get("type") == "generation_tick":
            level = logging.DEBUG  # once a second per session: too chatty for the default log
        else:
            level = logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, "%s", redact(_format(record)))
        return record

    def snapshot(self) -> list[dict[str, Any]]:
        """A copy of every event so far (oldest first)."""
        with self._lock:
            return [dict(e) for e in self._events]


def _format(record: dict[str, Any]) -> str:
    head = f"conn {record['conn']} " if "conn" in record else ""
    rest = " ".join(f"{k}={v}" for k, v in record.items() if k not in ("event", "conn"))
    return f"{head}{record['event']} {rest}".rstrip()
