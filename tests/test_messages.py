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
        '{"type":"generation_tick","seconds":1.5}',
        '{"type":"generation_tick","seconds":true}',
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
    ]:
        assert m.decode_client(m.encode(msg)) == msg


def test_client_set_image_requires_image_data_key() -> None:
    """A set_image without the image_data key is rejected (the SDKs always send it)."""
    with pytest.raises(ProtocolError):
        m.decode_client('{"type":"set_image","prompt":"x"}')
