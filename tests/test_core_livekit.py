"""SessionCore in the LiveKit era: join, queue, room info, generation_ended, latest state (no I/O)."""

from __future__ import annotations

import base64
import json

import pytest

from decart_cli.core import events as ev
from decart_cli.core import messages as msg
from decart_cli.core.session import (
    ConnectionState,
    DesiredState,
    Ended,
    JoinRoom,
    Resolved,
    SessionCore,
)

S = ConnectionState
PNG = b"\x89PNG\r\n\x1a\nfake"
ROOM = {
    "type": "livekit_room_info",
    "livekit_url": "ws://127.0.0.1:7880",
    "token": "lk-token-secret-0123456789",
    "room_name": "room-1",
    "session_id": "sess-1",
}


def frame(**fields: object) -> str:
    return json.dumps(fields)


def sent(core: SessionCore) -> list[dict[str, object]]:
    return [json.loads(t) for t in core.data_to_send()]


def joined(desired: DesiredState | None = None) -> SessionCore:
    """A LiveKit core through a whole connect: join, ack, room info, media connected; outputs drained."""
    core = SessionCore(desired, transport="livekit")
    core.begin_attempt()
    core.send_initial()
    if desired is not None and desired.prompt is not None and desired.image is None:
        core.receive_message(frame(type="prompt_ack", prompt=desired.prompt, success=True, error=None))
    else:
        core.receive_message(frame(type="set_image_ack", success=True, error=None))
    core.receive_message(json.dumps(ROOM))
    core.peer_connected()
    core.data_to_send(), core.events_received(), core.actions()
    return core


@pytest.mark.parametrize(
    ("desired", "state"),
    [
        (DesiredState(), {"type": "set_image", "image_data": None, "prompt": None}),
        (DesiredState(prompt="anime", enhance=False), {"type": "prompt", "prompt": "anime", "enhance_prompt": False}),
        (
            DesiredState(prompt="cat", image=PNG),
            {
                "type": "set_image",
                "image_data": base64.b64encode(PNG).decode(),
                "prompt": "cat",
                "enhance_prompt": True,
            },
        ),
    ],
)
def test_join_then_initial_state_right_behind_it(desired: DesiredState, state: dict[str, object]) -> None:
    """livekit_join {passthrough} goes first, the initial state as its own message right after; one ack awaited."""
    core = SessionCore(desired, transport="livekit")
    core.begin_attempt()
    ticket = core.send_initial()
    assert sent(core) == [{"type": "livekit_join", "passthrough": desired.passthrough}, state]
    kind = state["type"]
    if kind == "prompt":
        core.receive_message(frame(type="prompt_ack", prompt="anime", success=True, error=None))
    else:
        core.receive_message(frame(type="set_image_ack", success=True, error=None))
    assert core.actions() == [Resolved(ticket, True, None, ack=True)]


def test_webrtc_core_sends_no_join() -> None:
    """The direct era opens with the initial state alone (the wire is unchanged)."""
    core = SessionCore(DesiredState(prompt="a"))
    core.begin_attempt()
    core.send_initial()
    assert [m["type"] for m in sent(core)] == ["prompt"]


def test_room_info_is_a_join_action_and_starts_the_session() -> None:
    """livekit_room_info → JoinRoom(info) and SessionStarted(session_id); the token stays out of the repr."""
    core = SessionCore(transport="livekit")
    core.begin_attempt()
    core.send_initial()
    core.receive_message(json.dumps(ROOM))
    (action,) = core.actions()
    assert isinstance(action, JoinRoom) and action.info.token == ROOM["token"]
    assert ROOM["token"] not in repr(action)
    assert ev.SessionStarted("sess-1") in core.events_received() and core.session_id == "sess-1"


def test_queue_position_under_both_names_and_status() -> None:
    """queue_position (position or queue_position) → Queued; status → ServiceStatus; room info ends the queue."""
    core = SessionCore(transport="livekit")
    core.begin_attempt()
    core.receive_message(frame(type="status", status="Entering queue"))
    core.receive_message(frame(type="queue_position", position=3, queue_size=12))
    core.receive_message(frame(type="queue_position", queue_position=2, queue_size=12))
    assert core.events_received()[-3:] == [ev.ServiceStatus("Entering queue"), ev.Queued(3, 12), ev.Queued(2, 12)]
    assert core.queue == (2, 12) and core.state is S.CONNECTING
    core.receive_message(json.dumps(ROOM))
    assert core.queue is None


def test_the_other_eras_media_messages_are_ignored() -> None:
    """A LiveKit core ignores answer/ice-candidate; a direct core ignores room info."""
    lk = SessionCore(transport="livekit")
    lk.begin_attempt()
    lk.receive_message(frame(type="answer", sdp="v=0"))
    lk.receive_message(frame(type="ice-candidate", candidate={"candidate": "x", "sdpMid": "0", "sdpMLineIndex": 0}))
    assert lk.actions() == []
    direct = SessionCore()
    direct.begin_attempt()
    direct.receive_message(json.dumps(ROOM))
    assert direct.actions() == [] and direct.session_id is None


def test_session_limit_is_a_clean_final_end() -> None:
    """generation_ended 'timeout' (the token's session limit) → Ended(clean) and a final GenerationEnded."""
    core = joined(DesiredState(prompt="p"))
    core.receive_message(frame(type="generation_ended", seconds=30.5, reason="timeout"))
    (action,) = core.actions()
    assert isinstance(action, Ended) and action.clean and action.reason == "timeout"
    assert "time limit after 30.5 s" in action.explained.message
    assert core.events_received() == [ev.GenerationEnded(30.5, "timeout", True)]
    assert core.total_seconds == 30.5


@pytest.mark.parametrize("reason", ["insufficient_credits", "moderation_violation"])
def test_final_error_reasons_end_with_an_error(reason: str) -> None:
    """generation_ended for credits or moderation → Ended(not clean), explained and permanent."""
    core = joined()
    core.receive_message(frame(type="generation_ended", seconds=4, reason=reason))
    (action,) = core.actions()
    assert isinstance(action, Ended) and not action.clean and action.explained.permanent


def test_float_ticks_add_up_across_sessions() -> None:
    """Fractional generation_tick seconds are kept as floats and summed over reconnects."""
    core = joined()
    core.receive_message(frame(type="generation_tick", seconds=1.5))
    core.start_reconnecting("drop")
    core.begin_attempt()
    core.receive_message(frame(type="generation_tick", seconds=0.25))
    ticks = [e for e in core.events_received() if isinstance(e, ev.Tick)]
    assert ticks[-1] == ev.Tick(0.25, 1.75)


def test_reconnect_joins_with_the_latest_prompt_and_image() -> None:
    """After a drop the next join is followed by the LATEST state: the image set, then the prompt changed."""
    core = joined(DesiredState(prompt="first"))
    core.set(prompt="second", image=PNG)
    core.receive_message(frame(type="set_image_ack", success=True, error=None))
    core.set_prompt("third")  # a bare prompt: the image stays
    core.receive_message(frame(type="prompt_ack", prompt="third", success=True, error=None))
    core.data_to_send()
    core.start_reconnecting("room disconnected")
    core.begin_attempt()
    core.send_initial()
    join, state = sent(core)
    assert join == {"type": "livekit_join", "passthrough": False}
    assert state == {
        "type": "set_image",
        "image_data": base64.b64encode(PNG).decode(),
        "prompt": "third",
        "enhance_prompt": True,
    }


def test_an_error_is_reported_once() -> None:
    """A server error that ends the session is one ErrorEvent, not two (finish does not repeat it)."""
    core = joined()
    core.receive_message(frame(type="error", error="insufficient_credits"))
    said = core.explain("insufficient_credits")
    core.finish(said.message, permanent=True, source="server", hint=said.hint)
    errors = [e for e in core.events_received() if isinstance(e, ev.ErrorEvent)]
    assert len(errors) == 1 and errors[0].message == said.message


def test_join_message_shapes_are_what_the_emulator_decodes() -> None:
    """The join the core sends parses as the passthrough variant of livekit_join."""
    core = SessionCore(DesiredState(prompt="a"), transport="livekit")
    core.begin_attempt()
    core.send_initial()
    first = core.data_to_send()[0]
    assert msg.decode_client(first) == msg.LivekitJoin(passthrough=False)
