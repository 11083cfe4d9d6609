"""The debounced, coalescing prompt updater (pure; explicit clocks)."""

from __future__ import annotations

import pytest

from decart_cli.core.prompt_queue import PromptQueue, PromptState


def test_typed_prompt_waits_for_the_pause() -> None:
    """A typed prompt is not due before the debounce delay has passed since the last edit."""
    q = PromptQueue(debounce=0.5)
    q.type_prompt("a", 0.0)
    q.type_prompt("an", 0.2)
    q.type_prompt("anime", 0.4)
    assert q.next_due(0.8) is None
    assert q.wake_at() == pytest.approx(0.9)
    update = q.next_due(0.9)
    assert update is not None and update.prompt == "anime"
    assert q.sent == 1


def test_burst_of_typing_sends_exactly_one_update() -> None:
    """Many edits within the pause coalesce into one update carrying the full text."""
    q = PromptQueue(debounce=0.5)
    text = ""
    for i, ch in enumerate("cyberpunk city"):
        text += ch
        q.type_prompt(text, i * 0.05)
        assert q.next_due(i * 0.05) is None
    update = q.next_due(10.0)
    assert update == PromptState(prompt="cyberpunk city")
    q.finish(success=True)
    assert q.next_due(20.0) is None
    assert q.sent == 1


def test_submit_is_due_at_once_and_replaces_a_typed_update() -> None:
    """Enter sends immediately and the pending typed text is not sent separately."""
    q = PromptQueue(debounce=0.5)
    q.type_prompt("anim", 0.0)
    assert q.submit_prompt("anime", 0.1)
    update = q.next_due(0.1)
    assert update is not None and update.prompt == "anime"
    q.finish(success=True)
    assert q.next_due(5.0) is None


def test_never_more_than_one_in_flight_and_latest_wins() -> None:
    """While an update awaits its ack, newer ones coalesce into one slot: only the latest is sent."""
    q = PromptQueue(debounce=0.5)
    q.submit_prompt("one", 0.0)
    first = q.next_due(0.0)
    assert first is not None and first.prompt == "one"
    q.submit_prompt("two", 0.1)
    q.submit_prompt("three", 0.2)
    assert q.next_due(0.3) is None  # "one" still in flight
    assert q.wake_at() is None
    assert q.in_flight == first
    q.finish(success=True)
    assert q.wake_at() == pytest.approx(0.2)
    latest = q.next_due(0.3)
    assert latest is not None and latest.prompt == "three"
    q.finish(success=True)
    assert q.applied.prompt == "three"
    assert q.sent == 2


def test_update_equal_to_the_server_state_is_dropped() -> None:
    """Typing back the prompt the server already has sends nothing."""
    q = PromptQueue(PromptState(prompt="anime"), debounce=0.5)
    q.type_prompt("anim", 0.0)
    q.type_prompt("anime", 0.1)
    assert q.pending is None
    assert q.next_due(5.0) is None


def test_blank_prompts_are_never_sent() -> None:
    """An empty or whitespace prompt is rejected and clearing the line cancels a typed update."""
    q = PromptQueue(debounce=0.5)
    assert not q.submit_prompt("   ", 0.0)
    q.type_prompt("abc", 0.0)
    q.type_prompt("", 0.1)
    assert q.pending is None
    assert q.desired.prompt is None
    assert q.next_due(5.0) is None


def test_image_update_carries_the_current_prompt_atomically() -> None:
    """Setting an image sends one update with both the image and the current prompt."""
    q = PromptQueue(PromptState(prompt="anime"), debounce=0.5)
    q.submit_image(b"\x89PNG...", 1.0, name="face.png")
    update = q.next_due(1.0)
    assert update is not None
    assert (update.prompt, update.image, update.image_name) == ("anime", b"\x89PNG...", "face.png")
    q.finish(success=True)
    q.type_prompt("anime with hat", 2.0)
    later = q.next_due(3.0)
    assert later is not None and later.image == b"\x89PNG..." and later.prompt == "anime with hat"


def test_enhance_change_resends_the_state() -> None:
    """Toggling enhancement queues the same prompt with the new flag; toggling back cancels it."""
    q = PromptQueue(PromptState(prompt="anime"), debounce=0.5)
    q.submit_enhance(False, 0.0)
    assert q.pending == PromptState(prompt="anime", enhance=False)
    q.submit_enhance(True, 0.1)
    assert q.pending is None


def test_failed_update_restores_the_applied_state() -> None:
    """A rejected update is counted and the desired state falls back to what the server holds."""
    q = PromptQueue(PromptState(prompt="anime"), debounce=0.5)
    q.submit_prompt("bad words", 0.0)
    q.next_due(0.0)
    q.finish(success=False)
    assert q.failed == 1
    assert q.desired.prompt == "anime"
    assert q.next_due(1.0) is None


def test_failed_update_keeps_a_newer_pending_one() -> None:
    """If a newer update is queued when the in-flight one fails, the newer one is still sent."""
    q = PromptQueue(debounce=0.0)
    q.submit_prompt("one", 0.0)
    q.next_due(0.0)
    q.submit_prompt("two", 0.1)
    q.finish(success=False)
    assert q.next_due(0.2) == PromptState(prompt="two")


def test_typing_after_enter_does_not_replace_the_submission() -> None:
    """Keys typed right after Enter leave the submitted prompt due at once; the typed text follows."""
    q = PromptQueue(debounce=0.5)
    q.submit_prompt("anime", 0.0)
    q.type_prompt("z", 0.01)
    assert q.next_due(0.02) == PromptState(prompt="anime")
    q.finish(success=True)
    assert q.next_due(0.1) is None
    assert q.wake_at() == pytest.approx(0.51)
    assert q.next_due(0.6) == PromptState(prompt="z")
    q.finish(success=True)
    q.type_prompt("zz", 1.0)
    q.type_prompt("", 1.1)
    assert q.pending is None and q.desired.prompt == "z"


def test_typed_text_equal_to_the_submission_is_not_sent_twice() -> None:
    """Typing the text just submitted adds nothing to send."""
    q = PromptQueue(debounce=0.5)
    q.submit_prompt("anime", 0.0)
    q.type_prompt("anime", 0.1)
    assert q.next_due(0.1) == PromptState(prompt="anime")
    q.finish(success=True)
    assert q.next_due(5.0) is None


def test_finish_without_flight_is_a_bug() -> None:
    """finish() with nothing in flight raises instead of corrupting the state."""
    with pytest.raises(RuntimeError):
        PromptQueue().finish(success=True)
    with pytest.raises(ValueError):
        PromptQueue(debounce=-1)


def test_repr_hides_image_bytes() -> None:
    """The state's repr never dumps the image."""
    assert "bytes>" in repr(PromptState(prompt="x", image=b"a" * 100))
