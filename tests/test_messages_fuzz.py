"""Property tests: no input makes the decoders raise anything but ProtocolError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from decart_cli.core import messages as m
from decart_cli.errors import ProtocolError

_TYPES = [
    "livekit_room_info",
    "queue_position",
    "status",
    "session_id",
    "answer",
    "ice-candidate",
    "prompt_ack",
    "set_image_ack",
    "generation_started",
    "generation_tick",
    "generation_ended",
    "error",
    "ready",
    "set_image",
    "prompt",
    "livekit_join",
    "offer",
]
_FIELDS = [
    "position",
    "queue_position",
    "queue_size",
    "status",
    "livekit_url",
    "token",
    "room_name",
    "session_id",
    "server_ip",
    "server_port",
    "sdp",
    "candidate",
    "prompt",
    "success",
    "error",
    "message",
    "seconds",
    "reason",
    "image_data",
    "enhance_prompt",
    "passthrough",
    "initial_state",
    "client_capabilities",
]

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(_FIELDS), children, max_size=4),
    max_leaves=30,
)


@st.composite
def _frames(draw: Any) -> str:
    obj: dict[str, Any] = draw(st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=6))
    if draw(st.booleans()):
        obj["type"] = draw(st.sampled_from(_TYPES))
    return json.dumps(obj)


def _decode_all(frame: str | bytes) -> None:
    for decode in (m.decode_server, m.decode_client):
        try:
            decode(frame)
        except ProtocolError:
            pass


@settings(max_examples=400, deadline=None)
@given(_frames())
def test_structured_frames_decode_or_raise_protocol_error(frame: str) -> None:
    """Frames shaped like protocol messages with arbitrary field values never crash a decoder."""
    _decode_all(frame)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_text_decodes_or_raises_protocol_error(frame: str | bytes) -> None:
    """Arbitrary text and bytes never crash a decoder."""
    _decode_all(frame)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=20_000), st.sampled_from(["[", '{"a":']))
def test_any_nesting_depth_decodes_or_raises_protocol_error(depth: int, opener: str) -> None:
    """However deep the nesting, the decoders answer with a message or a ProtocolError."""
    closer = "]" if opener == "[" else "}"
    _decode_all('{"type":"status","status":"x","n":' + opener * depth + "1" + closer * depth + "}")
