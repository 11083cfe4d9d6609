"""Logging to stderr (and optionally a file) with every secret redacted.

Library modules log through ``logging.getLogger(__name__)``; only :func:`setup_logging` attaches
handlers. The redaction happens in a filter on the handlers, so no record, whatever its origin
(websockets, aiortc, aiohttp quoting a URL), reaches a stream with a key in it.
"""

from __future__ import annotations

import logging
import sys

from decart_cli.config import redact

__all__ = ["RedactingFilter", "setup_logging"]


class RedactingFilter(logging.Filter):
    """Render the record's message once, redact it, and freeze it into ``record.msg``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not kill logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        return True


def setup_logging(level: int = logging.WARNING, log_file: str | None = None) -> None:
    """Send log records at ``level`` and above to stderr, and all DEBUG records to ``log_file``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_decart", False):
            root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setLevel(level)
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        handlers[-1].setLevel(logging.DEBUG)
    for handler in handlers:
        handler.setFormatter(fmt)
        handler.addFilter(RedactingFilter())
        handler._decart = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(min(h.level for h in handlers))
    # aioice/aiortc are chatty at DEBUG; keep them at INFO unless asked for everything.
    if level > logging.DEBUG or not log_file:
        for noisy in ("aioice", "aiortc.rtcrtpreceiver", "aiortc.rtcrtpsender", "aiortc.rtcdtlstransport"):
            logging.getLogger(noisy).setLevel(max(level, logging.INFO))
