"""Scripted faults of the emulator (``decart serve --drop-after ... --garbage``), decided per connection.

Pure decisions only; the session module performs them. The server-side counters live here so the
"first N connections" rules are evaluated in one place.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from decart_cli.core.server_errors import CAPACITY_CLOSE_CODE

__all__ = ["CAPACITY_CLOSE_CODE", "CAPACITY_ERROR", "GARBAGE", "FaultPlan", "Faults", "parse_error_after"]

CAPACITY_ERROR: Final = "Server at capacity. Please try again later."

# What --garbage interleaves between real messages: every kind of frame a client must survive.
GARBAGE: Final[tuple[str | bytes, ...]] = (
    "{not json",
    "[1, 2, 3]",
    b"\x00\x01binary frame\xff",
    '{"type": "emulator_noise", "detail": "unknown message types must be ignored"}',
    '"just a string"',
    '{"no_type": true}',
    '{"type": 42}',
)


def parse_error_after(text: str) -> tuple[float, str]:
    """Parse ``--error-after "S MESSAGE"`` into ``(seconds, message)``.

    Raises:
        ValueError: no seconds, negative seconds, or an empty message.
    """
    head, _, message = text.strip().partition(" ")
    seconds = float(head)
    if seconds < 0 or not message.strip():
        raise ValueError(f"expected 'SECONDS MESSAGE', got {text!r}")
    return seconds, message.strip()


@dataclass(frozen=True)
class Faults:
    """The faults that apply to one connection (``None``/``False`` = not this one)."""

    reject: bool = False
    drop_after: float | None = None  # seconds after the answer is sent
    ack_delay: float = 0.0  # seconds
    no_ack: bool = False
    error_after: tuple[float, str] | None = None
    garbage: bool = False


class FaultPlan:
    """Hands out :class:`Faults` per connection according to the emulator configuration.

    ``reject_first`` counts accepted WebSocket connections; ``drop_connections`` counts sessions
    that were answered (a rejected connection is never dropped, so ``--reject-first 1 --drop-after 2``
    drops the first session that actually streams).
    """

    def __init__(
        self,
        *,
        reject_first: int = 0,
        drop_after: float | None = None,
        drop_connections: int = 1,
        ack_delay_ms: int = 0,
        no_ack: bool = False,
        error_after: tuple[float, str] | None = None,
        garbage: bool = False,
    ) -> None:
        self._reject_first = reject_first
        self._drop_after = drop_after
        self._drop_connections = drop_connections
        self._ack_delay = max(0, ack_delay_ms) / 1000.0
        self._no_ack = no_ack
        self._error_after = error_after
        self._garbage = garbage
        self._drops = 0
        self._lock = threading.Lock()

    def for_connection(self, conn: int) -> Faults:
        """The faults of connection number ``conn`` (1-based, in accept order)."""
        return Faults(
            reject=conn <= self._reject_first,
            drop_after=None,  # decided when the session is answered: see claim_drop()
            ack_delay=self._ack_delay,
            no_ack=self._no_ack,
            error_after=self._error_after,
            garbage=self._garbage,
        )

    def claim_drop(self) -> float | None:
        """Called once per answered session: the drop delay if this session is one to drop."""
        if self._drop_after is None:
            return None
        with self._lock:
            if self._drops >= self._drop_connections:
                return None
            self._drops += 1
        return self._drop_after


def garbage_frames() -> Iterator[str | bytes]:
    """An endless cycle over :data:`GARBAGE`."""
    return itertools.cycle(GARBAGE)
