"""How the process ends: the stop signals, and ``os._exit`` after a LiveKit run or on a second Ctrl-C.

After a LiveKit run everything is said and saved, and what is left is the interpreter's shutdown,
where libwebrtc's threads abort the process about one run in two (``panic in a function that
cannot unwind``), turning exit 0 into 134; :func:`leave` skips it. A second SIGINT/SIGTERM leaves
at once through :func:`force_exit`. Both first run the exit hooks (e.g. kill the ``--local``
emulator child). Plain functions given what they need; :mod:`.runner` calls them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import NoReturn

__all__ = [
    "STOP_SIGNALS",
    "force_exit",
    "install_stop_signals",
    "leave",
    "livekit_ran",
    "remove_stop_signals",
    "run_exit_hooks",
]

# SIGHUP: the terminal was closed; it gets the same clean shutdown (client-behaviour.md I).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def install_stop_signals(handler: Callable[[str], None]) -> None:
    """Call ``handler(name)`` (e.g. ``"SIGINT"``) on the running loop for each of :data:`STOP_SIGNALS`."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, handler, sig.name)


def remove_stop_signals() -> None:
    """Undo :func:`install_stop_signals` on the running loop."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.remove_signal_handler(sig)


def livekit_ran() -> bool:
    """A LiveKit room was opened in this process (importing the SDK ahead of time does not count)."""
    module = sys.modules.get("decart_cli.realtime.livekit")
    return module is not None and bool(module.native_started())


def run_exit_hooks(hooks: Iterable[Callable[[], None]]) -> None:
    """Run each hook (e.g. kill the --local emulator child) before an ``os._exit``; a failing one is skipped."""
    for hook in hooks:
        with contextlib.suppress(Exception):
            hook()


def leave(status: int, hooks: Iterable[Callable[[], None]], logger: logging.Logger) -> NoReturn:
    """End the process now with ``status``, skipping the native SDK's teardown.

    The caller has finalised the recording, written the summary and restored the terminal. Before
    leaving, the hooks run and stdout, stderr and the log file are flushed (the log's last record,
    written to ``logger``, says so: tests/test_stream_livekit.py checks that it got out).

    Args:
        status: the exit code.
        hooks: run first (see :func:`run_exit_hooks`).
        logger: where the last record goes (the runner's, so the log line names it).
    """
    run_exit_hooks(hooks)
    logger.debug("leaving with exit %d, skipping the native SDK's teardown (all output flushed)", status)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(status)


def force_exit(status: int, hooks: Iterable[Callable[[], None]], *, fd: int, show_cursor: bool, note: str) -> NoReturn:
    """Second Ctrl-C: restore the terminal and leave now (the recording may be cut short).

    Args:
        status: the exit code (the signal's).
        hooks: run after the terminal is restored (see :func:`run_exit_hooks`).
        fd: where ``forced exit`` is written (the real terminal's stderr).
        show_cursor: whether a live panel hid the cursor (shown again, on a new line).
        note: appended to ``forced exit`` (what was cut short), or ``""``.
    """
    from decart_cli.ui.keys import restore_all

    restore_all()
    run_exit_hooks(hooks)
    with contextlib.suppress(OSError):
        os.write(fd, ("\x1b[?25h\n" if show_cursor else "").encode() + f"forced exit{note}\n".encode())
    os._exit(status)
