"""Waits that end a run, given what they watch: the runner spawns them and records why it stopped.

The runner runs until the first of its *ending* tasks finishes (:func:`first_ending`); among them
``--duration`` (:func:`duration`) and the end of an input file, after the frames still in flight
came back (:func:`drain_output`). Plain coroutines: :mod:`.runner` imports this, not the reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from decart_cli.errors import DecartError

__all__ = ["drain_output", "duration", "first_ending"]


async def first_ending(ending: set[asyncio.Task[Any]]) -> DecartError | None:
    """Wait for the first of ``ending`` to finish; the :class:`DecartError` it raised or returned, else ``None``.

    The other tasks keep running (the runner cancels every task at shutdown).
    """
    done, _ = await asyncio.wait(ending, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if not task.cancelled() and isinstance(task.exception(), DecartError):
            return task.exception()  # type: ignore[return-value]
        if not task.cancelled() and isinstance(task.result(), DecartError):
            return task.result()  # type: ignore[no-any-return]
    return None


async def duration(seconds: float, generating: asyncio.Event) -> None:
    """``--duration``: counted from the first generated output, so a recording holds about that much.

    If generation never starts (``generating`` is not set), it still ends ``seconds`` after that wait began.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await generating.wait()
    await asyncio.sleep(seconds)


async def drain_output(
    received: Callable[[], int],
    sent: Callable[[], int],
    ready: asyncio.Event,
    *,
    quiet: float = 0.5,
    limit: float = 2.0,
) -> None:
    """The input file ended: let the frames still in flight come back first (a recording of a file holds its end).

    Returns once every sent frame came back, none came for ``quiet`` s, or after ``limit`` s (at once
    if the session never got ready).

    Args:
        received: frames received so far.
        sent: frames sent so far (all sources).
        ready: set once the session reached connected/generating.
        quiet: seconds without a frame back that end the wait.
        limit: the longest wait, in seconds.
    """
    deadline = time.monotonic() + limit
    seen, since = received(), time.monotonic()
    while ready.is_set() and received() < sent():
        now = time.monotonic()
        if received() != seen:
            seen, since = received(), now
        if now >= deadline or now - since >= quiet:
            return
        await asyncio.sleep(0.05)
