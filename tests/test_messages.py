"""Wire messages: exact shapes on encode, strict but non-fatal decoding."""

from __future__ import annotations

import json

import pytest

from decart_cli.core import messages as m
from decart_cli.errors import ProtocolError


def test_prompt_is_compact_with_type_first() -> None:
    """A prompt serialises like the Python SDK: compact JSON, type first, enhance_prompt always present."""
    assert m.encode(m.Prompt("Lego World")) == '{"type":"prompt","prompt":"Lego World","enhance_prompt":true}'


def test_passthrough_sends_explicit_nulls() -> None:
    """Passthrough is image_data null AND prompt null (both keys present)."""
    text = m.encode(m.SetImage(None, None))
    assert json.loads(text) == {"type": "set_image", "image_data": None, "prompt": None}
    assert m.SetImage(None, None).is_passthrough


def test_omitted_fields_are_left_out() -> None:
    """An image-only set_image omits prompt and enhance_prompt instead of sending null."""
    assert json.loads(m.encode(m.SetImage("aGk="))) == {"type": "set_image", "image_data": "aGk="}


def test_set_image_repr_hides_the_payload() -> None:
    """The repr of a set_image never dumps the base64 image into logs."""
    assert "aGk=" not in repr(m.SetImage("aGk=", "p", True))


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"type":"prompt_ack","prompt":"a","success":true,"error":null}', m.PromptAck("a", True, None)),
        ('{"type":"set_image_ack","success":false,"error":"invalid_image"}', m.SetImageAck(False, "invalid_image")),
        (
            '{"type":"session_id","session_id":"s","server_ip":"1.2.3.4","server_port":9}',
            m.SessionId("s", "1.2.3.4", 9),
        ),
        ('{"type":"generation_tick","seconds":3}', m.GenerationTick(3)),
        ('{"type":"generation_started"}', m.GenerationStarted()),
        ('{"type":"generation_ended","seconds":4,"reason":"timeout"}', m.GenerationEnded(4, "timeout")),
        ('{"type":"error","error":"Invalid API key"}', m.Error("Invalid API key")),
        ('{"type":"answer","sdp":"v=0"}', m.Answer("v=0")),
        ('{"type":"ready"}', m.Ready()),
        ('{"type":"generation_tick","seconds":2.5}', m.GenerationTick(2.5)),
        (
            '{"type":"livekit_room_info","livekit_url":"ws://h:1","token":"t","room_name":"r","session_id":"s"}',
            m.LivekitRoomInfo("ws://h:1", "t", "r", "s"),
        ),
        (
            '{"type":"livekit_room_info","livekit_url":"ws://h:1","token":"t","room_name":"r"}',
            m.LivekitRoomInfo("ws://h:1", "t", "r", "r"),
        ),
        ('{"type":"queue_position","position":3,"queue_size":12}', m.QueuePosition(3, 12)),
        ('{"type":"queue_position","queue_position":2,"queue_size":5}', m.QueuePosition(2, 5)),
        ('{"type":"status","status":"Entering queue"}', m.Status("Entering queue")),
        ('{"type":"error","message":"boom"}', m.Error("boom")),
        (
            '{"type":"ice-candidate","candidate":{"candidate":"c","sdpMLineIndex":0,"sdpMid":"0"}}',
            m.IceCandidate({"candidate": "c", "sdpMLineIndex": 0, "sdpMid": "0"}),
        ),
    ],
)
def test_server_messages_decode(frame: str, expected: m.ServerMessage) -> None:
    """Every server message of decart-protocol.md §2.2 decodes to its typed form."""
    assert m.decode_server(frame) == expected


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1,2]",
        '{"no":"type"}',
        '{"type":"mystery"}',
        '{"type":"generation_tick","seconds":-1}',
        '{"type":"generation_tick","seconds":true}',
        '{"type":"livekit_room_info","livekit_url":"ws://x","room_name":"r"}',
        '{"type":"queue_position","queue_size":3}',
        '{"type":"error"}',
        '{"type":"prompt_ack","prompt":"a"}',
        '{"type":"ice-candidate","candidate":null}',
        '{"type":"session_id","session_id":"s","server_ip":"x","server_port":"9"}',
        b'{"type":"ready"}',
    ],
)
def test_bad_server_frames_raise_protocol_error(frame: str | bytes) -> None:
    """Malformed, mistyped, unknown and binary frames raise ProtocolError (callers log and ignore)."""
    with pytest.raises(ProtocolError):
        m.decode_server(frame)


def test_client_messages_round_trip() -> None:
    """What the client encodes, the emulator decodes to the same message (absent vs null kept)."""
    for msg in [
        m.Prompt("x", False),
        m.SetImage(None, None),
        m.SetImage(None),
        m.SetImage("aGk=", "p", True),
        m.Offer("v=0"),
        m.IceCandidate(None),
        m.LivekitJoin(),
        m.LivekitJoin(passthrough=True),
        m.LivekitJoin(initial_state=None),
        m.LivekitJoin(initial_state=m.Prompt("a", True)),
        m.LivekitJoin(initial_state=m.SetImage("aGk=", "p", False), client_capabilities={"frame_timing": True}),
    ]:
        assert m.decode_client(m.encode(msg)) == msg


def test_client_set_image_requires_image_data_key() -> None:
    """A set_image without the image_data key is rejected (the SDKs always send it)."""
    with pytest.raises(ProtocolError):
        m.decode_client('{"type":"set_image","prompt":"x"}')


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (m.LivekitJoin(), {"type": "livekit_join"}),
        (m.LivekitJoin(passthrough=False), {"type": "livekit_join", "passthrough": False}),
        (m.LivekitJoin(initial_state=None), {"type": "livekit_join", "initial_state": None}),
        (
            m.LivekitJoin(initial_state=m.SetImage(None, None)),
            {"type": "livekit_join", "initial_state": {"type": "set_image", "image_data": None, "prompt": None}},
        ),
    ],
)
def test_livekit_join_variants_encode_as_the_sdks(message: m.LivekitJoin, wire: dict[str, object]) -> None:
    """The three join variants of the released SDKs: bare (Python), passthrough (JS), initial_state (C++)."""
    assert json.loads(m.encode(message)) == wire


def test_room_info_repr_hides_the_token() -> None:
    """The LiveKit access token never shows in a repr (logs, --debug tracebacks)."""
    info = m.LivekitRoomInfo("ws://h:1", "eyJ.secret.token", "room", "s")
    assert "secret" not in repr(info)


def test_livekit_join_rejects_a_bad_initial_state() -> None:
    """An initial_state that is neither a set_image nor a prompt object is a protocol error."""
    with pytest.raises(ProtocolError):
        m.decode_client('{"type":"livekit_join","initial_state":{"type":"offer","sdp":"x"}}')


@pytest.mark.parametrize("depth", [17, 1000, 100_000])
def test_deeply_nested_frames_are_refused(depth: int) -> None:
    """A frame nested past MAX_DEPTH is a ProtocolError, never a RecursionError (a 2 KB frame ended sessions)."""
    frame = '{"type":"error","error":"x","junk":' + "[" * depth + "]" * depth + "}"
    with pytest.raises(ProtocolError, match="nested"):
        m.decode_server(frame)
    with pytest.raises(ProtocolError, match="nested"):
        m.decode_client(frame)


def test_oversized_frames_are_refused_before_parsing() -> None:
    """A server frame over MAX_SERVER_FRAME is refused by its length alone."""
    frame = '{"type":"error","error":"' + "x" * m.MAX_SERVER_FRAME + '"}'
    with pytest.raises(ProtocolError, match="exceeds"):
        m.decode_server(frame)


def test_nesting_at_the_limit_still_decodes() -> None:
    """Nesting up to MAX_DEPTH is fine: the bound refuses only what no real message needs."""
    inner = "[" * (m.MAX_DEPTH - 1) + "]" * (m.MAX_DEPTH - 1)
    assert m.decode_server('{"type":"error","error":"x","junk":' + inner + "}") == m.Error("x")
