"""Server error texts explained: words, the next step, and how the session treats them (pure)."""

from __future__ import annotations

import pytest

from decart_cli.core.server_errors import MAX_DETAIL, clip, explain, explain_end


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
    assert clip("a\n  b") == "a b"


def test_generation_ended_reasons() -> None:
    """timeout is a clean final end; credits/moderation final errors; disconnect/error not final."""
    timeout = explain_end("timeout", 60)
    assert timeout is not None and not timeout.permanent and "time limit after 60 s" in timeout.message
    credits = explain_end("insufficient_credits", 3)
    assert credits is not None and credits.permanent
    assert explain_end("disconnect", 3) is None and explain_end("error", 3) is None
