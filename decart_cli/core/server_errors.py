"""Server error texts in words a user can act on: what happened, and the next step.

The service answers with short free texts (``{"type": "error", "error": "insufficient_credits"}``, a
close reason, a ``generation_ended`` reason); the strings below are the ones seen in the SDKs, their
examples and tests (client-behaviour.md §E, decart-protocol.md §2.2). :func:`explain` maps one to an
:class:`Explained`: a one-line ``message`` that keeps the server's own text in brackets (so it can
still be searched for), a ``hint`` with the next step, and how the session should treat it
(``permanent``: never retried; ``capacity``: retried with the reconnect backoff; ``auth``: the key or
token was refused, exit 3). Unknown texts pass through, clipped to one line: a server never gets to
print a page into the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_DETAIL", "Explained", "clip", "explain", "explain_end"]

MAX_DETAIL: Final = 160  # characters of server text kept in a message
PLATFORM: Final = "https://platform.decart.ai"
TOKEN_HINT: Final = "mint a new one with 'decart token' and pass it with --token (or DECART_TOKEN)"
KEY_HINT: Final = f"check DECART_API_KEY or --api-key-file (keys are on {PLATFORM})"


@dataclass(frozen=True)
class Explained:
    """One server error, explained.

    Attributes:
        message: what happened, in words, ending with the server's text in brackets.
        hint: the next step for the user, or ``None``.
        permanent: retrying cannot help (bad credential, no credits, bad input, moderation).
        capacity: a capacity or rate refusal: retried with the reconnect backoff.
        auth: the credential was refused (maps to exit status 3).
    """

    message: str
    hint: str | None = None
    permanent: bool = False
    capacity: bool = False
    auth: bool = False


def clip(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks the cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _model_of(low: str, raw: str) -> str | None:
    """The model named in "Model X not allowed for this token" (as the server wrote it)."""
    if low.startswith("model ") and " not allowed" in low:
        return raw.split()[1]
    return None


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
    if "expired" in low and ("token" in low or client_token):
        return Explained(f"the client token has expired {said}", TOKEN_HINT, permanent=True, auth=True)
    if "not allowed for this token" in low or (client_token and "model" in low and "not allowed" in low):
        name = _model_of(low, raw) or model or "this model"
        return Explained(
            f"the client token does not allow model {name} {said}",
            f"mint a token for it: decart token --model {name}",
            permanent=True,
            auth=True,
        )
    if "origin not allowed" in low:
        return Explained(
            f"the client token does not allow this origin {said}",
            "mint a token without --origin, or with this origin",
            permanent=True,
            auth=True,
        )
    if any(m in low for m in ("invalid api key", "unauthorized", "401", "permission denied", "invalid session")):
        if client_token:
            return Explained(f"the client token was refused {said}", TOKEN_HINT, permanent=True, auth=True)
        return Explained(f"the API key was refused {said}", KEY_HINT, permanent=True, auth=True)
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
    if "not allowed" in low:
        return Explained(f"the service refused the request {said}", KEY_HINT, permanent=True, auth=True)
    return Explained(f"the server reported an error {said}")


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
