"""Native libraries' writes to file descriptor 2 become log records while a LiveKit stream runs.

libwebrtc and the codecs inside the ``livekit`` SDK print straight to fd 2 (OpenH264: "Warning:
Actual input framerate 0.000000 is different from framerate in setting 30.000000 …"): lines that
land in the middle of the live panel or of the plain log, and that no ``logging`` setting reaches.
:class:`NativeStderr` points fd 2 at a pipe and gives Python's own ``sys.stderr`` (and the log
handlers that wrote to it) a duplicate of the terminal, so everything of ours is unchanged; a
thread turns each native line into an INFO record of the ``decart_cli.native`` logger (shown with
``-v``, kept by ``--log-file``). Lines that look fatal (an abort, a failed check, a panic) are also
copied to the terminal at once, so a crash still says why.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
from typing import Any, TextIO

__all__ = ["NativeStderr"]

logger = logging.getLogger("decart_cli.native")

FATAL = re.compile(r"(?i)fatal|panic|abort|check failed|segmentation|terminate")


class NativeStderr:
    """Capture fd 2 for native code (see the module docstring). ``start()`` then ``stop()``; idempotent."""

    def __init__(self) -> None:
        self.terminal_fd: int | None = None  # the real stderr while active (for last-resort writes)
        self._old: TextIO | None = None
        self._new: TextIO | None = None
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self.terminal_fd is not None

    def start(self) -> bool:
        """Begin capturing; False (and nothing changed) when ``sys.stderr`` is not fd 2 (tests, pipes set up
        by a caller)."""
        if self.active:
            return True
        try:
            if sys.stderr.fileno() != 2:
                return False
        except (AttributeError, ValueError, io.UnsupportedOperation):
            return False
        sys.stderr.flush()
        self.terminal_fd = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._old = sys.stderr
        encoding = getattr(self._old, "encoding", None) or "utf-8"
        self._new = open(  # noqa: SIM115 - closed in stop()
            os.dup(self.terminal_fd), "w", encoding=encoding, errors="backslashreplace", buffering=1
        )
        sys.stderr = self._new
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self._old:
                self._handlers.append((handler, handler.setStream(self._new)))
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="decart-native-stderr", daemon=True)
        self._thread.start()
        return True

    def _pump(self, read_end: int) -> None:
        terminal = self.terminal_fd
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                text = raw.decode("utf-8", "backslashreplace").rstrip()
                if not text:
                    continue
                if FATAL.search(text) and terminal is not None:
                    with contextlib.suppress(OSError):
                        os.write(terminal, raw)
                logger.info("native: %s", text)

    def stop(self) -> None:
        """Give fd 2 back to the terminal and Python's stderr back to fd 2."""
        terminal = self.terminal_fd
        if terminal is None:
            return
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's write end: the pump reads the rest, then EOF
        if self._thread is not None:
            self._thread.join(1.0)
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._handlers.clear()
        if self._old is not None:
            sys.stderr = self._old
        if self._new is not None:
            with contextlib.suppress(Exception):
                self._new.close()
        os.close(terminal)
        self.terminal_fd = None
