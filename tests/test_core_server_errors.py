"""Server error texts in words (pure): the session's explanations, a refused key or token for `decart token`
and `netcheck --auth`, and the retry decision on a bare text — all from core/server_errors.py."""

from __future__ import annotations

import pytest

from decart_cli.core.server_errors import (
    MAX_DETAIL,
    Refusal,
    classify_refusal,
    clip,
    explain,
    explain_end,
    explain_refusal,
    is_capacity,
    is_permanent,
)

# -- the session's words ---------------------------------------------------------------------------


def test_credits_say_so_and_where_to_add_them() -> None:
    """insufficient_credits: words, the raw code in brackets, a next step; permanent."""
    said = explain("insufficient_credits")
    assert said.message == "the account is out of credits (server: insufficient_credits)"
    assert said.hint is not None and "platform.decart.ai" in said.hint
    assert said.permanent and not said.capacity and not said.auth


def test_expired_client_token_names_the_token_and_decart_token() -> None:
    """An expired client token is called a token (not 'check the API key') and points at 'decart token'."""
    said = explain("Invalid API key: token expired", client_token=True)
    assert said.message.startswith("the client token has expired")
    assert said.hint is not None and "decart token" in said.hint and "DECART_API_KEY" not in said.hint
    assert said.auth and said.permanent


def test_model_restricted_token_names_the_model_and_how_to_mint_one() -> None:
    """'Model X not allowed for this token' → the token does not allow X; mint one with --model X."""
    said = explain("Model lucy-2.5 not allowed for this token", client_token=True, model="lucy-2.5")
    assert "does not allow model lucy-2.5" in said.message
    assert said.hint == "mint a token for it: decart token --model lucy-2.5" and said.auth


def test_refused_credential_depends_on_its_kind() -> None:
    """'Invalid API key' names the API key for a key and the client token for a token."""
    key = explain("Invalid API key")
    token = explain("Invalid API key", client_token=True)
    assert key.message.startswith("the API key was refused") and "DECART_API_KEY" in (key.hint or "")
    assert token.message.startswith("the client token was refused") and "decart token" in (token.hint or "")


@pytest.mark.parametrize(
    "text", ["Server at capacity. Please try again later.", "Concurrent session limit reached.", "rate_limited"]
)
def test_capacity_refusals_are_retried(text: str) -> None:
    """Capacity, concurrency and rate refusals are retried with backoff, never permanent."""
    said = explain(text)
    assert said.capacity and not said.permanent


def test_unknown_text_passes_through_clipped_to_one_line() -> None:
    """A long multi-line body (an HTML page) becomes one clipped line in brackets, never a page."""
    page = "<html>\n<body>\n" + "x" * 5000 + "\n</body></html>"
    said = explain(page)
    assert "\n" not in said.message and len(said.message) < MAX_DETAIL + 60
    assert said.message.startswith("the server reported an error (server: <html> <body>")
    assert not said.permanent and not said.auth
    assert clip("a\n  b") == "a b"


def test_clip_turns_control_characters_and_escapes_into_spaces() -> None:
    """A server text cannot move the cursor or recolour the terminal: ESC, BEL and other controls become spaces."""
    said = explain("\x1b[2J\x1b[31mbad\x07thing\x00")
    assert said.message == "the server reported an error (server: [2J [31mbad thing)"
    assert clip("é\tok\x7f", 4) == "é ok"


@pytest.mark.parametrize(
    "text",
    [
        "Invalid API key",
        "Origin not allowed",
        "HTTP 401",
        "Unauthorized",
        "Permission denied",
        "insufficient_credits",
        "Insufficient credits",
        "invalid session",
    ],
)
def test_permanent_errors(text: str) -> None:
    """Auth, origin and credit errors are never retried: by the bare text and in the session's words."""
    assert is_permanent(text)
    assert explain(text).permanent and explain(text, client_token=True).permanent


@pytest.mark.parametrize("text", ["Server at capacity. Please try again later.", "rate_limited", "timeout"])
def test_transient_errors(text: str) -> None:
    """Capacity, rate limits and timeouts are retried."""
    assert not is_permanent(text) and not explain(text).permanent


def test_capacity_however_it_arrives() -> None:
    """Text (any wording the SDKs know), close code 1013 and HTTP 503/429 at the upgrade are all capacity."""
    assert is_capacity("Server at capacity. Please try again later.")
    assert is_capacity("Concurrent session limit reached.") and is_capacity("Session Limit Reached")
    assert is_capacity("closed", 1013) and not is_capacity("closed", 1000)
    assert is_capacity("", close_code=1013)
    assert is_capacity("", http_status=503) and is_capacity("", http_status=429)
    assert not is_capacity("", http_status=500) and not is_capacity("Invalid API key")


def test_generation_ended_reasons() -> None:
    """timeout is a clean final end; credits/moderation final errors; disconnect/error not final."""
    timeout = explain_end("timeout", 60)
    assert timeout is not None and not timeout.permanent and "time limit after 60 s" in timeout.message
    credits = explain_end("insufficient_credits", 3)
    assert credits is not None and credits.permanent
    assert explain_end("disconnect", 3) is None and explain_end("error", 3) is None


# -- a refused credential (REST 401/403 in `decart token`, a rejected upgrade in `netcheck --auth`) --


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Invalid API key: token expired", Refusal.EXPIRED),
        ("Cannot create token from client token", Refusal.MINT_FROM_TOKEN),
        ("Model lucy-2.1 not allowed for this token", Refusal.MODEL),
        ("model is restricted", Refusal.MODEL),
        ("Origin not allowed", Refusal.ORIGIN),
        ("Invalid API key", Refusal.INVALID),
        ("", Refusal.INVALID),
    ],
)
def test_refusal_kinds(text: str, kind: Refusal) -> None:
    """Each server wording of a refusal is classified (expired, model, origin, minting from a token, other)."""
    assert classify_refusal(text) is kind


@pytest.mark.parametrize(
    ("text", "client_token", "subject", "reason", "hint_start"),
    [
        (
            "Invalid API key: token expired",
            True,
            "client token",
            "it has expired",
            "mint a new one with 'decart token'",
        ),
        ("Invalid API key: token expired", False, "API key", "it has expired", "check DECART_API_KEY"),
        ("Invalid API key", True, "client token", None, "it may be mistyped or revoked: mint a new one"),
        ("Invalid API key", False, "API key", None, "check DECART_API_KEY"),
        (
            "Cannot create token from client token",
            False,
            "client token",
            "a client token cannot mint another token",
            "'decart token' needs the permanent API key",
        ),
        ("Origin not allowed", True, "client token", "it does not allow this web origin", "mint one without --origin"),
        ("Origin not allowed", False, "API key", None, "check DECART_API_KEY"),
    ],
)
def test_refusal_is_worded_for_what_was_sent(
    text: str, client_token: bool, subject: str, reason: str | None, hint_start: str
) -> None:
    """A refusal names the credential that was sent (client token or API key), says why in words when the text
    tells (None: the caller quotes the server), and its hint points at the right fix; always auth, permanent."""
    said = explain_refusal(text, client_token=client_token)
    assert (said.subject, said.reason) == (subject, reason)
    assert said.hint is not None and said.hint.startswith(hint_start), said.hint
    assert said.auth and said.permanent
    if subject == "client token":
        assert "DECART_API_KEY" not in said.hint or "permanent API key" in said.hint


def test_model_refusal_names_the_model_from_the_text_or_the_request() -> None:
    """A model restriction names the model (from the server's text, else the request) and how to mint for it;
    for an API key it points at the key's permissions."""
    named = explain_refusal("Model lucy-2.5 not allowed for this token", client_token=True, model="lucy-2.1")
    assert named.reason == "it does not allow model lucy-2.5"
    assert named.hint == "mint a token for it: decart token --model lucy-2.5"
    asked = explain_refusal("model not permitted", client_token=True, model="lucy-2.1")
    assert asked.reason == "it does not allow model lucy-2.1" and asked.hint is not None
    unknown = explain_refusal("model not permitted", client_token=True)
    assert unknown.reason == "it does not allow this model" and "decart token --model NAME" in (unknown.hint or "")
    key = explain_refusal("model not permitted", client_token=False, model="lucy-2.1")
    assert key.subject == "API key" and key.hint == "check the key's permissions on the platform"


def test_session_and_rest_say_the_same_for_the_same_refusal() -> None:
    """The session's explanation of a refusal is the REST/netcheck one: same subject, reason and hint."""
    for text in ("Invalid API key: token expired", "Model lucy-2.1 not allowed for this token", "Invalid API key"):
        for client_token in (True, False):
            session = explain(text, client_token=client_token, model="lucy-2.1")
            rest = explain_refusal(text, client_token=client_token or "for this token" in text, model="lucy-2.1")
            assert session == rest, text
