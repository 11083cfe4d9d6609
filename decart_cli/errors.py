"""One exception tree and one set of exit codes for the whole tool.

    DecartError                      base; carries ``exit_status`` and an optional ``hint``
    ├── UsageError                   bad input caught before any I/O (exit 2)
    │   ├── UnknownModelError        model name not in the catalogue (with a suggestion)
    │   └── ConfigError              missing / unsafe configuration (no key, 0644 key file)
    ├── ProtocolError                a signaling message we cannot understand (never fatal by itself)
    ├── InvalidState                 an operation called in the wrong connection state
    ├── ConnectionFailed             could not connect, or lost the connection for good (exit 1)
    │   ├── ServerError              the server sent ``{"type": "error"}`` (text kept verbatim)
    │   │   └── AuthError            key / token rejected: never retried (exit 3)
    │   └── AckTimeout               a prompt / image acknowledgement did not arrive in time
    ├── MediaError                   camera, input file, window or recorder trouble (exit 4)
    ├── ApiError                     REST call failed (status kept), see ``commands/token.py``
    │   ├── RateLimited              429 (exit 6), ``retry_after`` in seconds when given
    │   └── NetworkError             DNS, refused, timeout, TLS (exit 5)
    └── Interrupted                  SIGINT / SIGTERM / SIGHUP (exit 130 / 143 / 129)

Every transport module translates its library's exceptions into this tree in one place and
chains the original with ``raise ... from``; the CLI's single error boundary (``app.py``)
turns a ``DecartError`` into one line on stderr and ``exit_status``.
"""

from __future__ import annotations

import enum

__all__ = [
    "AckTimeout",
    "ApiError",
    "AuthError",
    "ConfigError",
    "ConnectionFailed",
    "DecartError",
    "ExitStatus",
    "Interrupted",
    "InvalidState",
    "MediaError",
    "NetworkError",
    "ProtocolError",
    "RateLimited",
    "ServerError",
    "UnknownModelError",
    "UsageError",
]


class ExitStatus(enum.IntEnum):
    """Process exit codes. Stable: scripts depend on them (documented in README.md)."""

    OK = 0
    ERROR = 1  # runtime failure: connection lost for good, server error, ack timeout
    USAGE = 2  # bad flag or value, unknown model, unreadable image; nothing was sent
    AUTH = 3  # API key or client token rejected (expired, wrong model, revoked)
    MEDIA = 4  # camera / input file / recorder failure
    NETWORK = 5  # DNS, connection refused, timeout, TLS failure on a REST call
    RATE_LIMITED = 6  # HTTP 429 from the REST API
    SERVER = 7  # HTTP 5xx from the REST API
    HANGUP = 129  # SIGHUP: the terminal was closed
    INTERRUPTED = 130  # SIGINT (Ctrl-C)
    TERMINATED = 143  # SIGTERM


class DecartError(Exception):
    """Base of every error this tool raises on purpose.

    Args:
        message: one line saying what failed and the value involved.
        hint: the next step for the user, printed after the message.
    """

    exit_status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(DecartError):
    """Bad input detected before any network or device I/O."""

    exit_status = ExitStatus.USAGE


class UnknownModelError(UsageError):
    """The model name is not in the catalogue."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = f"did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else None
        super().__init__(f"unknown model {name!r}", hint=hint or "run 'decart models' to list them")
        self.name = name
        self.suggestions = suggestions


class ConfigError(UsageError):
    """Configuration is missing or unsafe (e.g. no API key, world-readable key file)."""


class ProtocolError(DecartError):
    """A signaling message could not be parsed or is not of a known type."""


class InvalidState(DecartError):
    """An operation was called while the connection was in a state that forbids it."""


class ConnectionFailed(DecartError):
    """Could not connect, or the connection was lost and could not be recovered.

    Attributes:
        permanent: retrying cannot help (set where the failure is recognised, e.g. a server text
            explained by :mod:`decart_cli.core.server_errors`): the session never reconnects.
        capacity: a capacity refusal (``error`` text, HTTP 503/429 at the upgrade): retried with
            the reconnect backoff, on the first connect too.
    """

    permanent: bool = False
    capacity: bool = False


class ServerError(ConnectionFailed):
    """The server sent an ``error`` message; ``message`` is its text verbatim."""


class AuthError(ServerError):
    """The API key or client token was rejected. Never retried."""

    exit_status = ExitStatus.AUTH


class AckTimeout(ConnectionFailed):
    """An acknowledgement (prompt_ack / set_image_ack) did not arrive before its deadline."""


class MediaError(DecartError):
    """Camera, input file, display window or recorder failure."""

    exit_status = ExitStatus.MEDIA


class ApiError(DecartError):
    """A REST request failed; ``status`` is the HTTP status when there was a response."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
        exit_status: ExitStatus | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        if exit_status is not None:
            self.exit_status = exit_status


class RateLimited(ApiError):
    """HTTP 429. ``retry_after`` is in seconds when the server said."""

    exit_status = ExitStatus.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float | None = None, hint: str | None = None):
        super().__init__(message, status=429, hint=hint)
        self.retry_after = retry_after


class NetworkError(ApiError):
    """The request never got an HTTP answer: DNS, refused, timeout or TLS failure."""

    exit_status = ExitStatus.NETWORK


class Interrupted(DecartError):
    """The user (SIGINT) or the system (SIGTERM) asked us to stop."""

    exit_status = ExitStatus.INTERRUPTED

    def __init__(self, signal_name: str = "SIGINT") -> None:
        super().__init__(f"interrupted by {signal_name}")
        if signal_name == "SIGTERM":
            self.exit_status = ExitStatus.TERMINATED
        elif signal_name == "SIGHUP":
            self.exit_status = ExitStatus.HANGUP
