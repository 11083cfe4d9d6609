"""Words for a rejected credential: what the server's text means for THIS credential, and the next step.

The service answers a bad credential with short texts ("Invalid API key", "Invalid API key: token
expired", "Model lucy-2.1 not allowed for this token", "Origin not allowed", "Cannot create token from
client token"). Read literally they all say "API key", even when the user holds a client token minted by
``decart token``; telling them to "check DECART_API_KEY" then sends them the wrong way.
:func:`explain_rejection` classifies the text and words it for the kind of credential that was used.

Pure: strings in, strings out. Used by the REST client (``decart token``) and ``decart netcheck --auth``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Rejection", "RejectionKind", "classify_rejection", "explain_rejection"]

MINT_HINT = "mint a new one with 'decart token' (on the machine that holds the API key)"
KEY_HINT = "check DECART_API_KEY / --api-key-file; create a key at https://platform.decart.ai"


class RejectionKind(enum.Enum):
    """Why a credential was refused, as far as the server's text tells."""

    EXPIRED = "expired"
    MODEL = "model"  # a client token restricted to other models
    ORIGIN = "origin"  # a client token restricted to other web origins
    MINT_FROM_TOKEN = "mint_from_token"  # a client token used to mint another one
    INVALID = "invalid"  # unknown, revoked or mistyped


@dataclass(frozen=True)
class Rejection:
    """How to report a rejection.

    Attributes:
        kind: what the server's text says.
        subject: ``"client token"`` or ``"API key"``: what was rejected.
        reason: our words for it (``"it has expired"``), or ``None`` when the text says nothing we
            know (the caller quotes the server's text then).
        hint: the next step.
    """

    kind: RejectionKind
    subject: str
    reason: str | None
    hint: str


def classify_rejection(text: str) -> RejectionKind:
    """The kind of rejection a server's error text describes."""
    t = text.lower()
    if "expired" in t:
        return RejectionKind.EXPIRED
    if "client token" in t and ("create" in t or "mint" in t):
        return RejectionKind.MINT_FROM_TOKEN
    if "model" in t and any(w in t for w in ("not allowed", "not permitted", "restricted", "forbidden")):
        return RejectionKind.MODEL
    if "origin" in t:
        return RejectionKind.ORIGIN
    return RejectionKind.INVALID


def explain_rejection(text: str, credential_kind: str, *, model: str | None = None) -> Rejection:
    """Word the server's rejection ``text`` for a credential of ``credential_kind``.

    Args:
        text: the server's error text.
        credential_kind: ``"client token"`` or ``"api key"`` (``config.Secret.kind``).
        model: the model the request was for, when there was one.
    """
    kind = classify_rejection(text)
    model_words = f"model {model}" if model else "this model"
    if kind is RejectionKind.MINT_FROM_TOKEN:
        return Rejection(
            kind,
            "client token",
            "a client token cannot mint another token",
            "'decart token' needs the permanent API key: set DECART_API_KEY or use --api-key-file",
        )
    if credential_kind == "client token":
        if kind is RejectionKind.EXPIRED:
            return Rejection(kind, "client token", "it has expired", MINT_HINT)
        if kind is RejectionKind.MODEL:
            return Rejection(
                kind,
                "client token",
                f"it does not allow {model_words}",
                "mint one that does: decart token --model NAME (or without --model for any model)",
            )
        if kind is RejectionKind.ORIGIN:
            return Rejection(
                kind, "client token", "it does not allow this web origin", "mint one with a matching --origin"
            )
        return Rejection(kind, "client token", None, "it may be mistyped or revoked: " + MINT_HINT)
    if kind is RejectionKind.EXPIRED:
        return Rejection(kind, "API key", "it has expired", KEY_HINT)
    if kind is RejectionKind.MODEL:
        return Rejection(
            kind, "API key", f"it does not allow {model_words}", "check the key's permissions on the platform"
        )
    return Rejection(kind, "API key", None, KEY_HINT)
