"""Events a realtime session reports to its owner (the stream UI, scripts).

Pure frozen dataclasses produced by :mod:`decart_cli.core.session` (and, for reconnect progress and
stats, by the I/O driver through the core so the order is preserved). They carry no I/O objects and
never a credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from decart_cli.core.session import ConnectionState
    from decart_cli.core.stats import StatsSnapshot

__all__ = [
    "Ack",
    "ErrorEvent",
    "Event",
    "GenerationEnded",
    "GenerationStarted",
    "Queued",
    "Reconnected",
    "Reconnecting",
    "ServiceStatus",
    "SessionStarted",
    "StateChanged",
    "StatsUpdated",
    "Tick",
]


@dataclass(frozen=True)
class StateChanged:
    """The connection state changed from ``old`` to ``new`` (emitted for every change, never twice)."""

    old: ConnectionState
    new: ConnectionState


@dataclass(frozen=True)
class SessionStarted:
    """The server assigned a session (``session_id`` message); a reconnect brings a new one."""

    session_id: str


@dataclass(frozen=True)
class GenerationStarted:
    """The server started producing output (``generation_started``)."""


@dataclass(frozen=True)
class GenerationEnded:
    """The server ended generation (``generation_ended``); ``final`` when the session ends with it.

    ``reason`` is the server's (``timeout`` = the token's session limit, ``insufficient_credits``,
    ``moderation_violation``, ``disconnect``, ``error``); ``seconds`` the billed seconds of that
    server session.
    """

    seconds: float
    reason: str
    final: bool


@dataclass(frozen=True)
class Queued:
    """Waiting for capacity (``queue_position``): ``position`` of ``size`` (1 = next)."""

    position: int
    size: int


@dataclass(frozen=True)
class ServiceStatus:
    """A free-text ``status`` from the service (``"Entering queue"``, ``"Ready"``)."""

    status: str


@dataclass(frozen=True)
class Tick:
    """Billed seconds: ``seconds`` for this server session, ``total_seconds`` across reconnects.

    Integers as the direct-era server sends them; floats when a server sends fractional ticks.
    """

    seconds: float
    total_seconds: float


@dataclass(frozen=True)
class Ack:
    """A ``prompt_ack`` (``prompt`` = echoed text) or ``set_image_ack`` (``prompt`` = None) arrived."""

    kind: Literal["prompt", "set_image"]
    prompt: str | None
    success: bool
    error: str | None


@dataclass(frozen=True)
class ErrorEvent:
    """Something failed. ``permanent`` errors are never retried; ``source`` says where it came from.

    ``source`` is one of ``"server"`` (an ``error`` message), ``"connection"`` (socket / peer
    connection lost or refused), ``"timeout"`` (a deadline passed), ``"reconnect"`` (gave up).
    ``message`` says what happened in words (a server's own text stays in brackets); ``hint`` is the
    next step, when there is one.
    """

    message: str
    permanent: bool
    source: str
    hint: str | None = None


@dataclass(frozen=True)
class Reconnecting:
    """Reconnect attempt ``attempt`` of ``max_attempts`` starts after waiting ``delay`` seconds."""

    attempt: int
    max_attempts: int
    delay: float
    reason: str


@dataclass(frozen=True)
class Reconnected:
    """The session is back after ``attempts`` attempts (the latest desired state was re-sent)."""

    attempts: int


@dataclass(frozen=True)
class StatsUpdated:
    """About once a second while connected: a fresh :class:`~decart_cli.core.stats.StatsSnapshot`."""

    stats: StatsSnapshot


Event: TypeAlias = (
    StateChanged
    | SessionStarted
    | GenerationStarted
    | GenerationEnded
    | Queued
    | ServiceStatus
    | Tick
    | Ack
    | ErrorEvent
    | Reconnecting
    | Reconnected
    | StatsUpdated
)
