"""SessionCore: feed frames and lifecycle facts, assert on outbox, events and actions (no I/O)."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from decart_cli.core import events as ev
from decart_cli.core import messages as msg
from decart_cli.core.session import (
    AddCandidate,
    ApplyAnswer,
    ConnectionState,
    DesiredState,
    Resolved,
    SessionCore,
    full_state_message,
    initial_message,
)
from decart_cli.errors import InvalidState, UsageError

S = ConnectionState
PNG = b"\x89PNG\r\n\x1a\nfake"


def sent(core: SessionCore) -> list[dict[str, object]]:
    return [json.loads(t) for t in core.data_to_send()]


def frame(**fields: object) -> str:
    return json.dumps(fields)


def live(desired: DesiredState | None = None) -> SessionCore:
    """A core that went through a whole connect: connected, outputs drained."""
    core = SessionCore(desired)
    core.begin_attempt()
    ticket = core.send_initial()
    core.receive_message(frame(type="set_image_ack", success=True, error=None))
    if desired and desired.prompt and desired.image is None:
        core.receive_message(frame(type="prompt_ack", prompt=desired.prompt, success=True, error=None))
    core.peer_connected()
    assert any(isinstance(a, Resolved) and a.ticket == ticket for a in core.actions()) or desired
    core.data_to_send(), core.events_received(), core.actions()
    return core


# --- initial state (§2.3 step 4) ------------------------------------------------------------------


def test_initial_image_with_prompt() -> None:
    """Image → set_image with base64 data, prompt and enhance_prompt."""
    message = initial_message(DesiredState(prompt="cat", enhance=False, image=PNG))
    assert json.loads(msg.encode(message)) == {
        "type": "set_image",
        "image_data": base64.b64encode(PNG).decode(),
        "prompt": "cat",
        "enhance_prompt": False,
    }


def test_initial_image_without_prompt_omits_prompt() -> None:
    """Image only → no prompt key at all (unset, not null)."""
    data = json.loads(msg.encode(initial_message(DesiredState(image=PNG))))
    assert "prompt" not in data and data["enhance_prompt"] is True


def test_initial_prompt_only() -> None:
    """Prompt only → a prompt message."""
    data = json.loads(msg.encode(initial_message(DesiredState(prompt="Lego World"))))
    assert data == {"type": "prompt", "prompt": "Lego World", "enhance_prompt": True}


def test_initial_passthrough() -> None:
    """Neither → set_image with image_data and prompt both null."""
    data = json.loads(msg.encode(initial_message(DesiredState())))
    assert data == {"type": "set_image", "image_data": None, "prompt": None}


def test_full_state_messages() -> None:
    """full_state_message always uses set_image, clearing the image when there is none."""
    assert json.loads(msg.encode(full_state_message(DesiredState()))) == {
        "type": "set_image",
        "image_data": None,
        "prompt": None,
    }
    data = json.loads(msg.encode(full_state_message(DesiredState(prompt="x"))))
    assert data == {"type": "set_image", "image_data": None, "prompt": "x", "enhance_prompt": True}
    data = json.loads(msg.encode(full_state_message(DesiredState(image=PNG))))
    assert "prompt" not in data and data["image_data"]


def test_desired_repr_hides_image() -> None:
    """The repr shows the image size, never its bytes."""
    text = repr(DesiredState(prompt="p", image=b"x" * 5000))
    assert "<5000 bytes>" in text and "xxxx" not in text
    assert "image=None" in repr(DesiredState())


# --- state machine --------------------------------------------------------------------------------


def test_connect_sequence_states_and_ack_before_offer() -> None:
    """connecting → ack → offer → connected → generating, one StateChanged per change."""
    core = SessionCore(DesiredState(prompt="Lego World"))
    core.begin_attempt()
    ticket = core.send_initial()
    assert sent(core) == [{"type": "prompt", "prompt": "Lego World", "enhance_prompt": True}]
    core.receive_message(frame(type="session_id", session_id="s1", server_ip="1.2.3.4", server_port=1))
    core.receive_message(frame(type="prompt_ack", prompt="Lego World", success=True, error=None))
    assert core.actions() == [Resolved(ticket, True, None, ack=True)]
    core.send_offer("v=0")
    assert sent(core) == [{"type": "offer", "sdp": "v=0"}]
    core.receive_message(frame(type="answer", sdp="v=0 answer"))
    assert core.actions() == [ApplyAnswer("v=0 answer")]
    core.peer_connected()
    core.peer_connected()  # repeated signal: no second event
    core.receive_message(frame(type="generation_started"))
    events = core.events_received()
    assert [e for e in events if isinstance(e, ev.StateChanged)] == [
        ev.StateChanged(S.DISCONNECTED, S.CONNECTING),
        ev.StateChanged(S.CONNECTING, S.CONNECTED),
        ev.StateChanged(S.CONNECTED, S.GENERATING),
    ]
    assert ev.SessionStarted("s1") in events and ev.GenerationStarted() in events
    assert core.session_id == "s1" and core.state is S.GENERATING


def test_generating_is_sticky() -> None:
    """generating is only left for reconnecting or disconnected."""
    core = live()
    core.receive_message(frame(type="generation_started"))
    core.peer_connected()
    core.begin_attempt()
    assert core.state is S.GENERATING
    assert core.start_reconnecting("drop")
    assert core.state.value == "reconnecting"  # (mypy narrows ``core.state`` after the first assert)


def test_generation_started_straight_from_connecting() -> None:
    """A session may jump to generating before the peer connection reports connected."""
    core = SessionCore()
    core.begin_attempt()
    core.receive_message(frame(type="generation_started"))
    assert core.state is S.GENERATING


def test_ticks_total_across_sessions() -> None:
    """Tick.total_seconds keeps counting over reconnects."""
    core = live()
    core.receive_message(frame(type="generation_tick", seconds=1))
    core.receive_message(frame(type="generation_tick", seconds=2))
    core.start_reconnecting("drop")
    core.begin_attempt()
    core.receive_message(frame(type="generation_tick", seconds=1))
    ticks = [e for e in core.events_received() if isinstance(e, ev.Tick)]
    assert ticks == [ev.Tick(1, 1), ev.Tick(2, 2), ev.Tick(1, 3)]
    assert core.total_seconds == 3


# --- acks -----------------------------------------------------------------------------------------


def test_identical_prompts_resolve_fifo() -> None:
    """Two in-flight identical prompts get one ack each, oldest first (no collision)."""
    core = live()
    first = core.set_prompt("same")
    second = core.set_prompt("same")
    other = core.set_prompt("other", enhance=False)
    assert sent(core)[2] == {"type": "prompt", "prompt": "other", "enhance_prompt": False}
    core.receive_message(frame(type="prompt_ack", prompt="other", success=True))
    core.receive_message(frame(type="prompt_ack", prompt="same", success=True))
    core.receive_message(frame(type="prompt_ack", prompt="same", success=False, error="nsfw"))
    assert core.actions() == [
        Resolved(other, True, None, ack=True),  # type: ignore[arg-type]
        Resolved(first, True, None, ack=True),  # type: ignore[arg-type]
        Resolved(second, False, "nsfw", ack=True),  # type: ignore[arg-type]
    ]


def test_image_acks_resolve_in_request_order() -> None:
    """set_image_acks carry no id: they resolve waits in request order; null error gets a fallback."""
    core = live()
    a = core.set(prompt="a", image=PNG)
    b = core.set(image=PNG)
    core.receive_message(frame(type="set_image_ack", success=True, error=None))
    core.receive_message(frame(type="set_image_ack", success=False, error=None))
    assert core.actions() == [Resolved(a, True, None, ack=True), Resolved(b, False, "Failed to set image", ack=True)]  # type: ignore[arg-type]


def test_prompt_ack_fallback_error_text() -> None:
    """A failed prompt_ack without error text gets the SDK's fallback message."""
    core = live()
    t = core.set_prompt("x")
    core.receive_message(frame(type="prompt_ack", prompt="x", success=False, error=None))
    assert core.actions() == [Resolved(t, False, "Failed to send prompt", ack=True)]  # type: ignore[arg-type]


def test_unmatched_acks_are_reported_not_resolved() -> None:
    """Acks nobody waits for still produce an Ack event but no resolution."""
    core = live()
    core.receive_message(frame(type="prompt_ack", prompt="ghost", success=True))
    core.receive_message(frame(type="set_image_ack", success=True))
    assert core.actions() == []
    assert [type(e) for e in core.events_received()] == [ev.Ack, ev.Ack]


def test_server_error_fails_every_pending_wait() -> None:
    """A server error fails all pending waits at once with its text and emits one ErrorEvent."""
    core = live()
    a = core.set_prompt("x")
    b = core.set(image=PNG)
    core.receive_message(frame(type="error", error="Server at capacity. Please try again later."))
    core.receive_message(frame(type="error", error="second"))
    text = "Server at capacity. Please try again later."
    assert core.actions() == [Resolved(a, False, text, server=True), Resolved(b, False, text, server=True)]  # type: ignore[arg-type]
    errors = [e for e in core.events_received() if isinstance(e, ev.ErrorEvent)]
    assert errors[0] == ev.ErrorEvent(
        f"the service is at capacity (server: {text})", False, "server", "retrying; try again in a minute"
    )
    assert core.server_error == text  # the first one is kept
    assert core.pending == 0


def test_invalid_key_error_is_permanent() -> None:
    """An 'Invalid API key' error event is marked permanent and says which credential to check."""
    core = SessionCore()
    core.begin_attempt()
    core.receive_message(frame(type="error", error="Invalid API key"))
    errors = [e for e in core.events_received() if isinstance(e, ev.ErrorEvent)]
    assert [(e.message, e.permanent) for e in errors] == [("the API key was refused (server: Invalid API key)", True)]
    assert "DECART_API_KEY" in (errors[0].hint or "")


# --- set / set_prompt -----------------------------------------------------------------------------


def test_set_replaces_whole_state_in_one_message() -> None:
    """set(prompt, image) is one set_image; prompt-only set sends image_data null (clears image)."""
    core = live(DesiredState(prompt="start"))
    core.set(prompt="cat", image=PNG, enhance=False)
    core.set(prompt="dog")
    out = sent(core)
    assert out[0] == {
        "type": "set_image",
        "image_data": base64.b64encode(PNG).decode(),
        "prompt": "cat",
        "enhance_prompt": False,
    }
    assert out[1] == {"type": "set_image", "image_data": None, "prompt": "dog", "enhance_prompt": True}
    assert core.desired == DesiredState(prompt="dog", enhance=True, image=None)


def test_set_image_only_keeps_prompt_in_desired_state() -> None:
    """set(image=…) omits prompt on the wire; the desired state keeps the current prompt."""
    core = live(DesiredState(prompt="start"))
    core.set(image=PNG)
    assert "prompt" not in sent(core)[0]
    assert core.desired == DesiredState(prompt="start", image=PNG)


def test_set_prompt_keeps_image() -> None:
    """set_prompt sends a prompt message and keeps the image in the desired state."""
    core = live(DesiredState(image=PNG))
    core.set_prompt("x", enhance=False)
    assert sent(core) == [{"type": "prompt", "prompt": "x", "enhance_prompt": False}]
    assert core.desired == DesiredState(prompt="x", enhance=False, image=PNG)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [({}, "needs a prompt or an image"), ({"prompt": "  "}, "empty"), ({"image": b""}, "0 bytes")],
)
def test_set_rejects_empty_input(kwargs: dict[str, object], text: str) -> None:
    """Nothing to set, a blank prompt or an empty image is a UsageError before anything is sent."""
    core = live()
    with pytest.raises(UsageError, match=text):
        core.set(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        core.set_prompt("")
    assert core.data_to_send() == []


@pytest.mark.parametrize("state", ["disconnected", "connecting"])
def test_send_requires_connection(state: str) -> None:
    """set/set_prompt before connecting raise InvalidState naming the state."""
    core = SessionCore()
    if state == "connecting":
        core.begin_attempt()
    with pytest.raises(InvalidState, match=state):
        core.set_prompt("x")
    with pytest.raises(InvalidState, match=state):
        core.set(prompt="x")


# --- reconnect --------------------------------------------------------------------------------------


def test_reconnect_resends_latest_desired_state() -> None:
    """The new connection's initial state is the latest desired state, not the first one."""
    core = live(DesiredState(prompt="first"))
    core.set_prompt("latest", enhance=False)
    core.data_to_send()
    assert core.start_reconnecting("socket closed")
    assert not core.start_reconnecting("peer failed")  # duplicate outage signal: one loop
    core.begin_attempt()
    core.send_initial()
    assert sent(core) == [{"type": "prompt", "prompt": "latest", "enhance_prompt": False}]
    assert core.state is S.RECONNECTING


def test_pending_waits_are_deferred_on_drop() -> None:
    """Requests in flight when the link drops are resolved as deferred (the reconnect applies them)."""
    core = live()
    t = core.set_prompt("x")
    core.start_reconnecting("drop")
    assert core.actions() == [Resolved(t, True, None, deferred=True)]  # type: ignore[arg-type]


def test_updates_while_reconnecting_are_stored_and_caught_up() -> None:
    """set()/set_prompt() while reconnecting only store; if the attempt already sent its initial
    state, one set_image brings the server up to date when the connection is back."""
    core = live(DesiredState(prompt="a"))
    core.start_reconnecting("drop")
    core.begin_attempt()
    core.send_initial()
    core.data_to_send()
    assert core.set_prompt("b") is None
    assert core.set(prompt="c", image=PNG) is None
    assert core.data_to_send() == []
    core.peer_connected()
    data = sent(core)
    assert data == [
        {"type": "set_image", "image_data": base64.b64encode(PNG).decode(), "prompt": "c", "enhance_prompt": True}
    ]
    assert core.pending == 2  # the attempt's initial prompt and the catch-up set_image


def test_no_catch_up_when_initial_state_is_current() -> None:
    """No extra message when nothing changed during the reconnect."""
    core = live(DesiredState(prompt="a"))
    core.start_reconnecting("drop")
    core.begin_attempt()
    core.send_initial()
    core.data_to_send()
    core.peer_connected()
    assert core.data_to_send() == []


def test_start_reconnecting_needs_an_established_session() -> None:
    """A loss during connecting does not start a reconnect."""
    core = SessionCore()
    core.begin_attempt()
    assert not core.start_reconnecting("x")


def test_live_means_connected_or_generating() -> None:
    """SessionCore.live (the driver's "media is up") holds in connected and generating only, across a reconnect."""
    core = SessionCore()
    seen = [core.live]
    core.begin_attempt()
    seen.append(core.live)
    core.peer_connected()
    seen.append(core.live)
    core.receive_message(frame(type="generation_started"))
    seen.append(core.live)
    core.start_reconnecting("drop")
    seen.append(core.live)
    core.begin_attempt()
    core.peer_connected()
    seen.append(core.live)
    core.finish()
    seen.append(core.live)
    assert seen == [False, False, True, True, False, True, False]


def test_attempt_failed_prefers_server_error_text() -> None:
    """A failed attempt fails pending waits with the server's own text when there was one."""
    core = SessionCore()
    core.begin_attempt()
    t = core.send_initial()
    core.receive_message(frame(type="error", error="Invalid API key"))
    core.actions()
    core.begin_attempt()
    t2 = core.send_initial()
    core.receive_message(frame(type="error", error="boom"))
    core.attempt_failed("socket closed")
    assert t2 != t
    assert core.actions() == [Resolved(t2, False, "boom", server=True)]


def test_begin_attempt_supersedes_pending() -> None:
    """A new attempt fails the previous attempt's waits."""
    core = SessionCore()
    core.begin_attempt()
    t = core.send_initial()
    core.begin_attempt()
    assert core.actions() == [Resolved(t, False, "superseded by a new connection attempt")]


def test_finish_with_and_without_error() -> None:
    """finish() → disconnected, pending waits fail, ErrorEvent only with an error."""
    core = live()
    t = core.set_prompt("x")
    core.finish("gave up", permanent=True, source="reconnect")
    assert core.actions() == [Resolved(t, False, "gave up")]  # type: ignore[arg-type]
    assert core.events_received()[-1] == ev.ErrorEvent("gave up", True, "reconnect")
    core2 = live()
    core2.finish()
    assert core2.events_received() == [ev.StateChanged(S.CONNECTED, S.DISCONNECTED)]


def test_note_keeps_driver_events_in_order() -> None:
    """Driver-made events go through the same queue."""
    core = SessionCore()
    core.note(ev.Reconnected(2))
    assert core.events_received() == [ev.Reconnected(2)]


# --- robustness -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[]",
        '{"no":"type"}',
        '{"type":"bogus"}',
        '{"type":"generation_tick","seconds":"1"}',
        b"\x00bin",
        '{"type":"prompt_ack"}',
    ],
)
def test_garbage_is_ignored(data: str | bytes, caplog: pytest.LogCaptureFixture) -> None:
    """Malformed or unknown frames are logged and ignored: no state change, no crash."""
    core = live()
    with caplog.at_level(logging.WARNING):
        core.receive_message(data)
    assert core.state is S.CONNECTED and core.events_received() == [] and core.actions() == []
    assert "ignored server frame" in caplog.text


def test_candidates_null_and_empty_ignored() -> None:
    """Server ICE candidates become AddCandidate actions; empty candidate strings are ignored."""
    core = live()
    cand = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    core.receive_message(json.dumps({"type": "ice-candidate", "candidate": cand}))
    core.receive_message(json.dumps({"type": "ice-candidate", "candidate": {**cand, "candidate": ""}}))
    assert core.actions() == [AddCandidate(cand)]


def test_ready_is_ignored_and_a_non_final_generation_ended_only_reported() -> None:
    """Legacy ready changes nothing; generation_ended 'disconnect' is reported but ends nothing (the close does)."""
    core = live()
    core.receive_message(frame(type="ready"))
    core.receive_message(frame(type="generation_ended", seconds=3, reason="disconnect"))
    assert core.events_received() == [ev.GenerationEnded(3, "disconnect", False)]
    assert core.actions() == [] and core.state is S.CONNECTED


def test_frames_after_disconnect_are_ignored() -> None:
    """A late ack after disconnect resurrects nothing."""
    core = live()
    core.finish()
    core.events_received()
    core.receive_message(frame(type="generation_started"))
    assert core.state is S.DISCONNECTED and core.events_received() == []
