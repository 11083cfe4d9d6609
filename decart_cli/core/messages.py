"""Typed signaling messages of the direct-WebRTC protocol, parsed and serialised by pure functions.

Shapes follow decart-protocol.md §2.1–§2.2 exactly. One JSON object per text frame; every message
has a string ``type``. Serialisation is compact (``{"a":1}``), like pydantic's ``model_dump_json``
in the official Python SDK, and omits fields that are *unset* (``OMIT``) while sending fields set
to ``None`` as ``null`` — the SDK's "exclude unset" rule, which the server relies on to tell
``{"image_data": null, "prompt": null}`` (passthrough) from ``{"image_data": null}`` (clear image).

Unknown ``type`` values and malformed frames raise :class:`~decart_cli.errors.ProtocolError`; the
caller logs and ignores them (all official clients ignore unknown types).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from decart_cli.errors import ProtocolError

__all__ = [
    "OMIT",
    "Answer",
    "ClientMessage",
    "Error",
    "GenerationEnded",
    "GenerationStarted",
    "GenerationTick",
    "IceCandidate",
    "Offer",
    "Omit",
    "Prompt",
    "PromptAck",
    "Ready",
    "ServerMessage",
    "SessionId",
    "SetImage",
    "SetImageAck",
    "decode_client",
    "decode_server",
    "encode",
]


class Omit(enum.Enum):
    """Marker for a field that is left out of the JSON object (as opposed to sent as ``null``)."""

    OMIT = "omit"

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = Omit.OMIT


# --- client → server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SetImage:
    """``set_image``: reference image and/or prompt, replacing the state atomically.

    ``image_data`` is bare base64 (no ``data:`` prefix) or ``None``; ``image_data=None,
    prompt=None`` is passthrough (the output echoes the input).
    """

    image_data: str | None
    prompt: str | None | Omit = OMIT
    enhance_prompt: bool | Omit = OMIT
    type: str = "set_image"

    def __repr__(self) -> str:  # never dump megabytes of base64 into a log line
        size = "None" if self.image_data is None else f"<{len(self.image_data)} b64 chars>"
        return f"SetImage(image_data={size}, prompt={self.prompt!r}, enhance_prompt={self.enhance_prompt!r})"

    @property
    def is_passthrough(self) -> bool:
        """True for ``{"image_data": null, "prompt": null}``."""
        return self.image_data is None and self.prompt is None


@dataclass(frozen=True)
class Prompt:
    """``prompt``: change the text prompt; acknowledged by a ``prompt_ack`` echoing the text."""

    prompt: str
    enhance_prompt: bool = True
    type: str = "prompt"


@dataclass(frozen=True)
class Offer:
    """``offer``: the client's SDP offer (aiortc embeds all candidates; no trickle)."""

    sdp: str
    type: str = "offer"


# --- both directions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IceCandidate:
    """``ice-candidate``: ``{candidate, sdpMid, sdpMLineIndex}`` or ``None`` (end of candidates)."""

    candidate: dict[str, Any] | None
    type: str = "ice-candidate"


@dataclass(frozen=True)
class Answer:
    """``answer``: the server's SDP answer."""

    sdp: str
    type: str = "answer"


# --- server → client ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionId:
    """``session_id``: the server session; ``server_ip``/``server_port`` build a subscribe token."""

    session_id: str
    server_ip: str
    server_port: int
    type: str = "session_id"


@dataclass(frozen=True)
class PromptAck:
    """``prompt_ack``: ``prompt`` echoes the exact text sent (that is how acks are matched)."""

    prompt: str
    success: bool
    error: str | None = None
    type: str = "prompt_ack"


@dataclass(frozen=True)
class SetImageAck:
    """``set_image_ack``: carries no correlation id; acks arrive in request order."""

    success: bool
    error: str | None = None
    type: str = "set_image_ack"


@dataclass(frozen=True)
class GenerationStarted:
    """``generation_started``: the first output frame was produced; state becomes generating."""

    type: str = "generation_started"


@dataclass(frozen=True)
class GenerationTick:
    """``generation_tick``: cumulative billed seconds of this server session (an integer)."""

    seconds: int
    type: str = "generation_tick"


@dataclass(frozen=True)
class GenerationEnded:
    """``generation_ended``: unreliable (never sent on client-side drops)."""

    seconds: int
    reason: str
    type: str = "generation_ended"


@dataclass(frozen=True)
class Error:
    """``error``: free text; fails every pending wait with this message."""

    error: str
    type: str = "error"


@dataclass(frozen=True)
class Ready:
    """``ready``: legacy; logged and ignored."""

    type: str = "ready"


ClientMessage: TypeAlias = SetImage | Prompt | Offer | IceCandidate | Answer
ServerMessage: TypeAlias = (
    SessionId
    | Answer
    | IceCandidate
    | PromptAck
    | SetImageAck
    | GenerationStarted
    | GenerationTick
    | GenerationEnded
    | Error
    | Ready
)
Message: TypeAlias = ClientMessage | ServerMessage


def encode(message: Message) -> str:
    """Serialise ``message`` to one compact JSON text frame, ``type`` first, ``OMIT`` fields left out."""
    out: dict[str, Any] = {"type": message.type}
    for key, value in vars(message).items():
        if key != "type" and value is not OMIT:
            out[key] = value
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


# --- decoding ----------------------------------------------------------------------------------


def _load(text: str | bytes) -> tuple[str, dict[str, Any]]:
    if isinstance(text, bytes):
        raise ProtocolError("binary frame ignored (the protocol uses text frames)")
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"malformed JSON frame: {_clip(text)}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"frame is not a JSON object: {_clip(text)}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"frame has no string 'type': {_clip(text)}")
    return kind, obj


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _field(obj: dict[str, Any], name: str, kinds: type | tuple[type, ...], *, optional: bool = False) -> Any:
    if name not in obj:
        if optional:
            return None
        raise ProtocolError(f"{obj.get('type')!r} message lacks field {name!r}")
    value = obj[name]
    if value is None and optional:
        return None
    # bool is an int subclass: an int field must not accept True, and vice versa.
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ProtocolError(f"{obj.get('type')!r} field {name!r} has the wrong type")
    if not isinstance(value, kinds):
        raise ProtocolError(f"{obj.get('type')!r} field {name!r} has the wrong type")
    return value


def _candidate(obj: dict[str, Any], *, require_fields: bool) -> IceCandidate:
    cand = obj.get("candidate")
    if cand is None:
        if require_fields:
            raise ProtocolError("'ice-candidate' without a candidate")
        return IceCandidate(None)
    if not isinstance(cand, dict):
        raise ProtocolError("'ice-candidate' candidate is not an object")
    if require_fields:
        _field(cand, "candidate", str)
        _field(cand, "sdpMLineIndex", int)
        _field(cand, "sdpMid", str)
    return IceCandidate(cand)


def decode_server(text: str | bytes) -> ServerMessage:
    """Parse one server → client frame.

    Raises:
        ProtocolError: malformed JSON, missing/mistyped fields, or an unknown ``type``.
    """
    kind, obj = _load(text)
    match kind:
        case "session_id":
            return SessionId(
                _field(obj, "session_id", str), _field(obj, "server_ip", str), _field(obj, "server_port", int)
            )
        case "answer":
            return Answer(_field(obj, "sdp", str))
        case "ice-candidate":
            return _candidate(obj, require_fields=True)
        case "prompt_ack":
            return PromptAck(
                _field(obj, "prompt", str), _field(obj, "success", bool), _field(obj, "error", str, optional=True)
            )
        case "set_image_ack":
            return SetImageAck(_field(obj, "success", bool), _field(obj, "error", str, optional=True))
        case "generation_started":
            return GenerationStarted()
        case "generation_tick":
            return GenerationTick(_field(obj, "seconds", int))
        case "generation_ended":
            return GenerationEnded(_field(obj, "seconds", int), _field(obj, "reason", str))
        case "error":
            return Error(_field(obj, "error", str))
        case "ready":
            return Ready()
    raise ProtocolError(f"unknown message type {kind!r}")


def decode_client(text: str | bytes) -> ClientMessage:
    """Parse one client → server frame (used by the emulator).

    Accepts exactly what the official SDKs send: ``set_image`` with ``image_data`` always present
    (possibly ``null``), ``prompt`` with a non-empty string, ``offer``, ``ice-candidate`` (``null``
    or an empty candidate string means end of candidates), and the legacy ``answer``.

    Raises:
        ProtocolError: malformed JSON, missing/mistyped fields, or an unknown ``type``.
    """
    kind, obj = _load(text)
    match kind:
        case "set_image":
            if "image_data" not in obj:
                raise ProtocolError("'set_image' lacks field 'image_data'")
            image = _field(obj, "image_data", str, optional=True)
            prompt: str | None | Omit = _field(obj, "prompt", str, optional=True) if "prompt" in obj else OMIT
            enhance: bool | Omit = _field(obj, "enhance_prompt", bool) if "enhance_prompt" in obj else OMIT
            return SetImage(image, prompt, enhance)
        case "prompt":
            text_ = _field(obj, "prompt", str)
            enhance_ = _field(obj, "enhance_prompt", bool, optional=True)
            return Prompt(text_, True if enhance_ is None else enhance_)
        case "offer":
            return Offer(_field(obj, "sdp", str))
        case "answer":
            return Answer(_field(obj, "sdp", str))
        case "ice-candidate":
            return _candidate(obj, require_fields=False)
    raise ProtocolError(f"unknown message type {kind!r}")
