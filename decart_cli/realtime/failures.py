"""How the session driver judges a failure: permanent, capacity, where it came from, and in which words.

Server texts are explained by :mod:`decart_cli.core.server_errors`; the exceptions built here carry
the same words as the :class:`~decart_cli.core.events.ErrorEvent` the core emitted for them, so a
failure reaches the user once, whichever way it is reported.
"""

from __future__ import annotations

from decart_cli.core.server_errors import is_capacity, is_permanent
from decart_cli.core.session import Ended, SessionCore
from decart_cli.errors import AckTimeout, AuthError, ConnectionFailed, DecartError, ServerError

__all__ = ["ended_error", "is_capacity_failure", "is_permanent_failure", "server_exception", "source_of"]


def is_permanent_failure(exc: BaseException) -> bool:
    """Retrying cannot help: a refused credential, no credits, bad input (never reconnected)."""
    if isinstance(exc, ConnectionFailed) and exc.permanent:
        return True
    return isinstance(exc, AuthError) or is_permanent(str(exc))


def is_capacity_failure(exc: BaseException) -> bool:
    """A capacity refusal however it arrived: ``error`` text, close 1013, HTTP 503/429 at the upgrade
    (:class:`~decart_cli.transport.signaling.UpgradeRefused` marks those ``capacity``)."""
    if isinstance(exc, ConnectionFailed) and exc.capacity:
        return True
    return is_capacity(str(exc), getattr(exc, "code", None))


def source_of(exc: BaseException) -> str:
    """The ``ErrorEvent.source`` of a failure: ``timeout``, ``server`` or ``connection``."""
    if isinstance(exc, AckTimeout):
        return "timeout"
    if isinstance(exc, ServerError):
        return "server"
    return "connection"


def server_exception(core: SessionCore, text: str, *, reconnecting: bool = False) -> DecartError:
    """A server text as an exception, explained in the same words as its ``ErrorEvent``.

    A client token refused for no reason the server names, during a reconnect, has most likely expired
    since the session began (a named reason, such as a model it does not allow, is said as it is).
    """
    said = core.explain(text)
    message, hint = said.message, said.hint
    if said.auth and reconnecting and core.client_token and said.reason is None:
        message = f"{message} on reconnect: it has probably expired"
    exc = AuthError(message, hint=hint) if said.auth else ServerError(message, hint=hint)
    exc.permanent = said.permanent
    exc.capacity = said.capacity
    return exc


def ended_error(ended: Ended) -> DecartError | None:
    """The error a final ``generation_ended`` ends the session with; ``None`` for a clean end (``timeout``)."""
    if ended.clean:
        return None
    error = ServerError(ended.explained.message, hint=ended.explained.hint)
    error.permanent = True
    return error
