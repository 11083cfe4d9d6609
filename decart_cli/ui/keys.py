"""Keyboard input from a terminal: cbreak mode, escape-sequence decoding, guaranteed restore.

:class:`KeyDecoder` is pure (bytes in, :class:`Key` values out). :class:`KeyReader` puts the
terminal in cbreak mode (no line buffering, no echo; ISIG stays on, so Ctrl-C still raises SIGINT
and the runner's signal handler decides what it means), reads with ``loop.add_reader`` and hands
each decoded key to a callback on the event loop.

The terminal is restored on every way out: :meth:`KeyReader.close` (idempotent), an ``atexit``
hook, and :func:`restore_all` for the forced-exit path (a second Ctrl-C calls it before
``os._exit``).
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import enum
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Key", "KeyDecoder", "KeyName", "KeyReader", "restore_all"]


class KeyName(enum.Enum):
    """Keys the input line understands."""

    CHAR = "char"
    ENTER = "enter"
    BACKSPACE = "backspace"
    DELETE = "delete"
    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"
    HOME = "home"
    END = "end"
    CLEAR = "clear"  # Ctrl-U
    EOF = "eof"  # Ctrl-D
    ESCAPE = "escape"  # a lone Esc
    TAB = "tab"
    WORD_BACK = "word_back"  # Ctrl-W: delete the word before the cursor
    F1 = "f1"


@dataclass(frozen=True)
class Key:
    """One key press; ``char`` is set for :attr:`KeyName.CHAR` (one printable character)."""

    name: KeyName
    char: str = ""

    @classmethod
    def of(cls, text: str) -> Key:
        """A printable character key."""
        return cls(KeyName.CHAR, text)


# CSI / SS3 final sequences (after ESC) → key. xterm, VT220 and rxvt variants.
_SEQUENCES: dict[str, KeyName] = {
    "[A": KeyName.UP,
    "[B": KeyName.DOWN,
    "[C": KeyName.RIGHT,
    "[D": KeyName.LEFT,
    "[H": KeyName.HOME,
    "[F": KeyName.END,
    "OA": KeyName.UP,
    "OB": KeyName.DOWN,
    "OC": KeyName.RIGHT,
    "OD": KeyName.LEFT,
    "OH": KeyName.HOME,
    "OF": KeyName.END,
    "[1~": KeyName.HOME,
    "[7~": KeyName.HOME,
    "[4~": KeyName.END,
    "[8~": KeyName.END,
    "[3~": KeyName.DELETE,
    "OP": KeyName.F1,
    "[11~": KeyName.F1,
}

_CONTROL: dict[str, KeyName] = {
    "\r": KeyName.ENTER,
    "\n": KeyName.ENTER,
    "\x7f": KeyName.BACKSPACE,
    "\x08": KeyName.BACKSPACE,
    "\x01": KeyName.HOME,  # Ctrl-A
    "\x05": KeyName.END,  # Ctrl-E
    "\x02": KeyName.LEFT,  # Ctrl-B
    "\x06": KeyName.RIGHT,  # Ctrl-F
    "\x10": KeyName.UP,  # Ctrl-P
    "\x0e": KeyName.DOWN,  # Ctrl-N
    "\x15": KeyName.CLEAR,  # Ctrl-U
    "\x04": KeyName.EOF,  # Ctrl-D
    "\t": KeyName.TAB,
    "\x17": KeyName.WORD_BACK,  # Ctrl-W
}


class KeyDecoder:
    """Turns terminal bytes into keys. Incomplete UTF-8 and escape sequences wait for more bytes."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""

    def feed(self, data: bytes) -> list[Key]:
        """Decode ``data``; returns the complete keys, keeping any unfinished sequence."""
        self._buffer += self._utf8.decode(data)
        keys: list[Key] = []
        buf = self._buffer
        i = 0
        while i < len(buf):
            ch = buf[i]
            if ch == "\x1b":
                consumed, key = _escape(buf, i)
                if consumed == 0:
                    break  # incomplete: wait for the rest of the sequence
                if key is not None:
                    keys.append(key)
                i += consumed
                continue
            if ch in _CONTROL:
                # "\r\n" from some terminals is a single Enter.
                if ch == "\r" and buf[i + 1 : i + 2] == "\n":
                    i += 1
                keys.append(Key(_CONTROL[ch]))
            elif ch.isprintable():
                keys.append(Key.of(ch))
            i += 1
        self._buffer = buf[i:]
        return keys

    @property
    def pending(self) -> bool:
        """True while an unfinished escape or UTF-8 sequence is buffered."""
        return bool(self._buffer)

    def flush(self) -> list[Key]:
        """Resolve a dangling sequence (call after a short silence): a lone Esc becomes ESCAPE."""
        if not self._buffer:
            return []
        rest, self._buffer = self._buffer, ""
        keys = [Key(KeyName.ESCAPE)] if rest.startswith("\x1b") else []
        rest = rest.lstrip("\x1b")
        return keys + [Key.of(ch) for ch in rest if ch.isprintable()]


def _escape(buf: str, i: int) -> tuple[int, Key | None]:
    """Decode the escape sequence at ``buf[i]``: (chars consumed, key or None); 0 = incomplete."""
    if i + 1 >= len(buf):
        return 0, None
    intro = buf[i + 1]
    if intro not in "[O":
        return 1, Key(KeyName.ESCAPE)  # Esc followed by an ordinary key (Alt-x): drop the Esc
    j = i + 2
    # CSI: parameter bytes 0x30–0x3F, intermediates 0x20–0x2F, one final byte 0x40–0x7E.
    while j < len(buf) and "\x20" <= buf[j] <= "\x3f":
        j += 1
    if j >= len(buf):
        return 0, None
    seq = buf[i + 1 : j + 1]
    return j + 1 - i, (Key(_SEQUENCES[seq]) if seq in _SEQUENCES else None)


# --- the terminal side -----------------------------------------------------------------------------

_RESTORERS: dict[int, Callable[[], None]] = {}


def restore_all() -> None:
    """Restore every terminal put in cbreak mode by a :class:`KeyReader` (safe to call twice)."""
    for restore in list(_RESTORERS.values()):
        restore()


atexit.register(restore_all)


class KeyReader:
    """Reads keys from ``fd`` (a TTY) on the running loop; use as a context manager.

    Args:
        on_key: called on the event loop for every decoded key.
        fd: the terminal to read (default stdin).
        escape_delay: seconds of silence after which a dangling Esc counts as a key.
    """

    def __init__(self, on_key: Callable[[Key], None], fd: int | None = None, *, escape_delay: float = 0.05) -> None:
        self._on_key = on_key
        self._fd = 0 if fd is None else fd
        self._decoder = KeyDecoder()
        self._saved: list[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._escape_delay = escape_delay
        self._flush_handle: asyncio.TimerHandle | None = None
        self.closed_input = False  # the terminal hung up / EOF

    def open(self) -> None:
        """Enter cbreak mode and start reading. Must be called on the running loop."""
        import termios
        import tty

        self._loop = asyncio.get_running_loop()
        self._saved = termios.tcgetattr(self._fd)
        _RESTORERS[self._fd] = self._restore
        tty.setcbreak(self._fd, termios.TCSANOW)
        self._loop.add_reader(self._fd, self._readable)

    def close(self) -> None:
        """Stop reading and restore the terminal. Idempotent."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
            self._loop = None
        self._restore()

    def __enter__(self) -> KeyReader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _restore(self) -> None:
        saved, self._saved = self._saved, None
        _RESTORERS.pop(self._fd, None)
        if saved is not None:
            import termios

            with contextlib.suppress(OSError, termios.error):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.closed_input = True
            if self._loop is not None:
                self._loop.remove_reader(self._fd)
            self._on_key(Key(KeyName.EOF))
            return
        for key in self._decoder.feed(data):
            self._on_key(key)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._decoder.pending and self._loop is not None:
            self._flush_handle = self._loop.call_later(self._escape_delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        for key in self._decoder.flush():
            self._on_key(key)
