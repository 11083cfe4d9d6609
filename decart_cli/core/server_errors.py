"""Server error texts in words a user can act on: what happened, and the next step. The one place.

The service answers with short free texts: an ``error`` message on the control socket
(``{"type": "error", "error": "insufficient_credits"}``), a close reason, a ``generation_ended``
reason, the JSON error of a refused REST call (``Cannot create token from client token``). The
strings below are the ones seen in the SDKs, their examples and tests (client-behaviour.md §E,
decart-protocol.md §2.2). Read literally, every refused credential says "API key", even when the
user holds a client token minted by ``decart token``: telling them to "check DECART_API_KEY" would
send them the wrong way, so a refusal is worded for what was sent (:class:`Refusal`).

Two entry points, one set of words:

* :func:`explain`: any server text (the session, ``decart stream``): an :class:`Explained` with a
  one-line ``message`` that keeps the server's own text in brackets (so it can still be searched
  for), a ``hint``, and how the session treats it (``permanent``: never retried; ``capacity``:
  retried with the reconnect backoff; ``auth``: the credential was refused, exit 3). Unknown texts
  pass through, clipped to one line: a server never gets to print a page into the terminal.
* :func:`explain_refusal`: a text already known to refuse the credential (HTTP 401/403 from the
  REST API in ``decart token``, a rejected upgrade in ``decart netcheck --auth``), worded the same
  way; its ``subject`` and ``reason`` fit "client token rejected by HOST (401): it has expired".

:func:`is_permanent` and :func:`is_capacity` are the retry decision on a bare text (an exception's
message, a close reason): the SDKs' lists. Pure: strings in, words out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CAPACITY_CLOSE_CODE",
    "CAPACITY_HTTP_STATUSES",
    "MAX_DETAIL",
    "Explained",
    "Refusal",
    "classify_refusal",
    "clip",
    "explain",
    "explain_end",
    "explain_refusal",
    "is_capacity",
    "is_permanent",
    "refusal_hint",
]

MAX_DETAIL: Final = 160  # characters of server text kept in a message
PLATFORM: Final = "https://platform.decart.ai"
TOKEN_HINT: Final = "mint a new one with 'decart token' and pass it with --token (or DECART_TOKEN)"
KEY_HINT: Final = f"check DECART_API_KEY or --api-key-file (keys are on {PLATFORM})"

# Lower-cased substrings of error texts that are never retried: the SDKs' list (§4.2) plus credits,
# which cannot recover by retrying a few seconds later.
PERMANENT_MARKERS: Final = (
    "permission denied",
    "not allowed",
    "invalid session",
    "401",
    "invalid api key",
    "unauthorized",
    "insufficient credits",
    "insufficient_credits",
)
# Capacity refusals are retried (the slot of a crashed session frees within ~45 s).
CAPACITY_MARKERS: Final = ("at capacity", "session limit", "concurrent session")
CAPACITY_CLOSE_CODE: Final = 1013  # RFC 6455 §7.4.1 "Try Again Later"
# HTTP statuses at the WebSocket upgrade that mean "not now": 503 Service Unavailable, 429 Too Many Requests.
CAPACITY_HTTP_STATUSES: Final = (503, 429)
# Texts that refuse the credential itself (checked after the more specific refusals).
_REFUSED_MARKERS: Final = ("invalid api key", "unauthorized", "401", "permission denied", "invalid session")


def is_permanent(message: str) -> bool:
    """True when retrying cannot help: bad key, forbidden origin/model, no credits."""
    text = message.lower()
    return any(marker in text for marker in PERMANENT_MARKERS)


def is_capacity(message: str, close_code: int | None = None, http_status: int | None = None) -> bool:
    """True for a capacity / concurrent-session refusal, however it arrives (retried with backoff).

    The same refusal reaches a client as an ``error`` text, a close code 1013, or an HTTP 503 (or
    429) at the WebSocket upgrade: all three get the same backoff.
    """
    text = message.lower()
    return (
        close_code == CAPACITY_CLOSE_CODE
        or http_status in CAPACITY_HTTP_STATUSES
        or any(marker in text for marker in CAPACITY_MARKERS)
    )


class Refusal(enum.Enum):
    """Why a credential was refused, as far as the server's text tells."""

    EXPIRED = "expired"
    MODEL = "model"  # a client token restricted to other models
    ORIGIN = "origin"  # a client token restricted to other web origins
    MINT_FROM_TOKEN = "mint_from_token"  # a client token used to mint another one
    INVALID = "invalid"  # unknown, revoked or mistyped


@dataclass(frozen=True)
class Explained:
    """One server error, explained.

    Attributes:
        message: what happened, in words, ending with the server's text in brackets.
        hint: the next step for the user, or ``None``.
        permanent: retrying cannot help (bad credential, no credits, bad input, moderation).
        capacity: a capacity or rate refusal: retried with the reconnect backoff.
        auth: the credential was refused (maps to exit status 3).
        subject: for a refused credential, what was refused: ``"client token"`` or ``"API key"``.
        reason: for a refused credential, our words for why (``"it has expired"``), or ``None``
            when the text says nothing we know (callers quote the server's text then).
    """

    message: str
    hint: str | None = None
    permanent: bool = False
    capacity: bool = False
    auth: bool = False
    subject: str | None = None
    reason: str | None = None


def clip(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` on one line of printable characters (control characters, terminal escapes included,
    become spaces), at most ``limit`` characters (an ellipsis marks the cut)."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def refusal_hint(client_token: bool) -> str:
    """The next step when a credential of that kind is refused for no reason we know."""
    return TOKEN_HINT if client_token else KEY_HINT


def classify_refusal(text: str) -> Refusal:
    """What a refusal text says about the credential (for a text known to be a refusal)."""
    t = text.lower()
    if "expired" in t:
        return Refusal.EXPIRED
    if "client token" in t and ("create" in t or "mint" in t):
        return Refusal.MINT_FROM_TOKEN
    if "model" in t and any(w in t for w in ("not allowed", "not permitted", "restricted", "forbidden")):
        return Refusal.MODEL
    if "origin" in t:
        return Refusal.ORIGIN
    return Refusal.INVALID


def _model_named(text: str) -> str | None:
    """The model named in "Model X not allowed for this token" (as the server wrote it)."""
    words = text.split()
    if len(words) > 1 and words[0].lower() == "model" and " not allowed" in text.lower():
        return words[1]
    return None


def explain_refusal(text: str, *, client_token: bool, model: str | None = None) -> Explained:
    """Word a refusal of the credential (the text is known to be one: HTTP 401/403, a rejected upgrade).

    Args:
        text: the server's text (may be empty).
        client_token: the credential is a client token (``ek_…`` or a signed JWT), not an API key.
        model: the model the request was for, when there was one.

    Returns:
        An :class:`Explained` with ``auth`` and ``permanent`` set and ``subject``/``reason`` filled: the REST client writes "``{subject}`` rejected by HOST (401): ``{reason}``", netcheck
        "server rejected the ``{subject}``: ``{reason}``", the session the ``message``.
    """
    kind = classify_refusal(text)
    said = f"(server: {clip(text)})" if text.strip() else "(no reason given)"
    subject = "client token" if client_token or kind is Refusal.MINT_FROM_TOKEN else "API key"
    hint = refusal_hint(subject == "client token")
    predicate: str | None = None  # what is wrong with the credential, after "it" / "the <subject>"
    if kind is Refusal.MINT_FROM_TOKEN:
        predicate = "cannot mint another token"
        hint = "'decart token' needs the permanent API key: set DECART_API_KEY or use --api-key-file"
    elif kind is Refusal.EXPIRED:
        predicate = "has expired"
    elif kind is Refusal.MODEL:
        name = _model_named(text) or model
        predicate = f"does not allow model {name}" if name else "does not allow this model"
        if subject == "API key":
            hint = "check the key's permissions on the platform"
        elif name:
            hint = f"mint a token for it: decart token --model {name}"
        else:
            hint = "mint one that does: decart token --model NAME (or without --model for any model)"
    elif kind is Refusal.ORIGIN and subject == "client token":
        predicate = "does not allow this web origin"
        hint = "mint one without --origin, or with this origin"
    elif subject == "client token":
        hint = "it may be mistyped or revoked: " + TOKEN_HINT
    if kind is Refusal.MINT_FROM_TOKEN:
        reason: str | None = "a client token cannot mint another token"
    else:
        reason = None if predicate is None else f"it {predicate}"
    message = f"the {subject} {predicate or 'was refused'} {said}"
    return Explained(message, hint, permanent=True, auth=True, subject=subject, reason=reason)


def _is_refusal(low: str, client_token: bool) -> bool:
    """Does a session's server text refuse the credential (rather than report another problem)?"""
    if "expired" in low and ("token" in low or client_token):
        return True
    if "not allowed" in low or ("client token" in low and ("create" in low or "mint" in low)):
        return True
    return any(marker in low for marker in _REFUSED_MARKERS)


def explain(text: str, *, client_token: bool = False, model: str | None = None) -> Explained:
    """Explain a server error text.

    Args:
        text: the server's text (an ``error`` message, a close reason).
        client_token: the credential is a client token (``ek_…`` or a signed JWT), not an API key:
            refusals then say "client token" and point at ``decart token``.
        model: the model the session asked for (named in model-restriction hints).
    """
    raw = clip(text)
    low = raw.lower()
    said = f"(server: {raw})"
    if "insufficient_credits" in low or "insufficient credits" in low:
        return Explained(
            f"the account is out of credits {said}", f"add credits on {PLATFORM}, then try again", permanent=True
        )
    if _is_refusal(low, client_token):
        return explain_refusal(raw, client_token=client_token or "for this token" in low, model=model)
    if "concurrent session" in low or "session limit" in low:
        return Explained(
            f"too many sessions are open for this account {said}",
            "close other sessions (a crashed one frees its slot within about 45 s); retrying",
            capacity=True,
        )
    if "at capacity" in low:
        return Explained(f"the service is at capacity {said}", "retrying; try again in a minute", capacity=True)
    if "rate_limited" in low or "rate limited" in low or "too many requests" in low:
        return Explained(f"too many requests {said}", "retrying after a pause", capacity=True)
    if "invalid_image" in low or "invalid image" in low:
        return Explained(
            f"the server could not use the reference image {said}", "use a PNG, JPEG or WebP photo", permanent=True
        )
    if low.startswith("invalid model") or "model not found" in low:
        return Explained(
            f"the service does not offer this model {said}", "run 'decart models' for the list", permanent=True
        )
    if "moderation" in low:
        return Explained(
            f"the service ended the session for a content-moderation violation {said}",
            "change the prompt or image",
            permanent=True,
        )
    return Explained(f"the server reported an error {said}", permanent=is_permanent(text))


def explain_end(reason: str, seconds: float) -> Explained | None:
    """What a ``generation_ended`` reason means for the session; ``None`` when it is not final.

    ``timeout`` (the token's session limit) is a clean, final end — never reconnected, since a new
    connection would defeat the limit. ``insufficient_credits`` and ``moderation_violation`` end the
    session with an error. ``disconnect`` and ``error`` are not final by themselves: the socket close
    that follows is handled like any other loss (reconnect).
    """
    low = reason.lower()
    if low == "timeout":
        return Explained(
            f"the session reached its time limit after {seconds:g} s (server: generation_ended timeout)",
            "the client token limits each session (maxSessionDuration); start a new session to go on",
        )
    if low in ("insufficient_credits", "moderation_violation"):
        return explain(low)
    return None
