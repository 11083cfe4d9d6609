"""Typed signaling messages of both protocol eras, parsed and serialised by pure functions.

Direct era (SDP on the socket): decart-protocol.md §2.1–§2.2. LiveKit era (media in a LiveKit room):
decart-protocol-2026-11.md §3.1 — ``livekit_join`` (bare, ``passthrough``, ``initial_state``,
``client_capabilities``) out; ``livekit_room_info``, ``queue_position`` (``position`` or the older
``queue_position`` field) and ``status`` in; ``generation_tick``/``generation_ended`` seconds may be
floats (Android, iOS and C++ parse doubles). Shapes follow the references exactly. One JSON object per text frame; every message
has a string ``type``. Serialisation is compact (``{"a":1}``), like pydantic's ``model_dump_json``
in the official Python SDK, and omits fields that are *unset* (``OMIT``) while sending fields set
to ``None`` as ``null`` — the SDK's "exclude unset" rule, which the server relies on to tell
``{"image_data": null, "prompt": null}`` (passthrough) from ``{"image_data": null}`` (clear image).

Unknown ``type`` values and malformed frames raise :class:`~decart_cli.errors.ProtocolError`; the
caller logs and ignores them (all official clients ignore unknown types). The decoders are bounded:
a frame longer than ``max_size`` characters or nested deeper than :data:`MAX_DEPTH` is refused before
or while parsing, so a hostile peer cannot exhaust the stack or memory (a 2 KB frame nested 1,000 deep
raised ``RecursionError`` before these bounds).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from decart_cli.errors import ProtocolError

__all__ = [
    "MAX_CLIENT_FRAME",
    "MAX_DEPTH",
    "MAX_SERVER_FRAME",
    "OMIT",
    "Answer",
    "ClientMessage",
    "Error",
    "GenerationEnded",
    "GenerationStarted",
    "GenerationTick",
    "IceCandidate",
    "LivekitJoin",
    "LivekitRoomInfo",
    "Offer",
    "Omit",
    "Prompt",
    "PromptAck",
    "QueuePosition",
    "Ready",
    "ServerMessage",
    "SessionId",
    "SetImage",
    "SetImageAck",
    "Status",
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

MAX_DEPTH: Final = 16  # the deepest real message (livekit_join.initial_state) is 2 levels deep
MAX_SERVER_FRAME: Final = 1024 * 1024  # server frames are small: SDP answers, room info, acks
MAX_CLIENT_FRAME: Final = 32 * 1024 * 1024  # set_image carries multi-MB base64 (decart-protocol.md §1.5)


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
class LivekitJoin:
    """``livekit_join``: ask for a LiveKit room (decart-protocol-2026-11.md §3.1).

    The released SDKs send three variants: bare (Python 0.2.4), ``passthrough: bool`` (JS) and
    ``initial_state: {set_image|prompt} | null`` (Android, iOS, C++). JS adds
    ``client_capabilities: {"frame_timing": true}`` to ask for capture timestamps echoed on output
    frames (§6).
    """

    passthrough: bool | Omit = OMIT
    initial_state: SetImage | Prompt | None | Omit = OMIT
    client_capabilities: dict[str, Any] | Omit = OMIT
    type: str = "livekit_join"


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
class LivekitRoomInfo:
    """``livekit_room_info``: where the media goes. ``token`` is a LiveKit access token (a secret).

    ``session_id`` falls back to ``room_name`` when absent (as the C++ SDK does).
    """

    livekit_url: str
    token: str
    room_name: str
    session_id: str
    type: str = "livekit_room_info"

    def __repr__(self) -> str:  # the access token never reaches a log line
        return (
            f"LivekitRoomInfo(livekit_url={self.livekit_url!r}, token='***', room_name={self.room_name!r}, "
            f"session_id={self.session_id!r})"
        )


@dataclass(frozen=True)
class QueuePosition:
    """``queue_position``: waiting for capacity; ``position`` of ``queue_size`` (1 = next)."""

    position: int
    queue_size: int
    type: str = "queue_position"


@dataclass(frozen=True)
class Status:
    """``status``: free text such as ``"Entering queue"`` or ``"Ready"`` (Android and iOS show it)."""

    status: str
    type: str = "status"


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
    """``generation_tick``: cumulative billed seconds of this server session (an int or a float)."""

    seconds: float
    type: str = "generation_tick"


@dataclass(frozen=True)
class GenerationEnded:
    """``generation_ended``: the server ended generation; ``reason`` ``timeout`` is the token's session limit.

    Never sent on client-side drops, so its absence proves nothing.
    """

    seconds: float
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


ClientMessage: TypeAlias = SetImage | Prompt | LivekitJoin | Offer | IceCandidate | Answer
ServerMessage: TypeAlias = (
    SessionId
    | LivekitRoomInfo
    | QueuePosition
    | Status
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


def _to_obj(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"type": message.type}
    for key, value in vars(message).items():
        if key != "type" and value is not OMIT:
            out[key] = _to_obj(value) if isinstance(value, SetImage | Prompt) else value
    return out


def encode(message: Message) -> str:
    """Serialise ``message`` to one compact JSON text frame, ``type`` first, ``OMIT`` fields left out."""
    return json.dumps(_to_obj(message), separators=(",", ":"), ensure_ascii=False)


# --- decoding ----------------------------------------------------------------------------------


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, counting stops once past ``limit``."""
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return 0
    if limit <= 0:
        return 1
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def _load(text: str | bytes, max_size: int) -> tuple[str, dict[str, Any]]:
    if isinstance(text, bytes):
        raise ProtocolError("binary frame ignored (the protocol uses text frames)")
    if len(text) > max_size:
        raise ProtocolError(f"frame of {len(text)} characters exceeds the {max_size}-character limit")
    try:
        obj = json.loads(text)
    except RecursionError as exc:  # the C scanner's own stack guard: nested far too deep
        raise ProtocolError(f"frame nested deeper than {MAX_DEPTH} levels: {_clip(text)}") from exc
    except ValueError as exc:
        raise ProtocolError(f"malformed JSON frame: {_clip(text)}") from exc
    if _depth(obj, MAX_DEPTH) > MAX_DEPTH:
        raise ProtocolError(f"frame nested deeper than {MAX_DEPTH} levels: {_clip(text)}")
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


def _seconds(obj: dict[str, Any], name: str) -> float:
    value = _field(obj, name, (int, float))
    if value < 0 or value != value or value == float("inf"):  # negative, NaN or infinite
        raise ProtocolError(f"{obj.get('type')!r} field {name!r} is not a count of seconds")
    return value  # type: ignore[no-any-return]


def _room_info(obj: dict[str, Any]) -> LivekitRoomInfo:
    room = _field(obj, "room_name", str)
    session = _field(obj, "session_id", str, optional=True)
    return LivekitRoomInfo(_field(obj, "livekit_url", str), _field(obj, "token", str), room, session or room)


def _queue_position(obj: dict[str, Any]) -> QueuePosition:
    # "position" today (JS, Python, C++); "queue_position" in iOS and as Android's legacy name.
    name = "position" if "position" in obj else "queue_position"
    return QueuePosition(_field(obj, name, int), _field(obj, "queue_size", int))


def decode_server(text: str | bytes, *, max_size: int = MAX_SERVER_FRAME) -> ServerMessage:
    """Parse one server → client frame.

    Raises:
        ProtocolError: malformed JSON, too long or too deeply nested, missing/mistyped fields, or an
            unknown ``type``.
    """
    kind, obj = _load(text, max_size)
    match kind:
        case "livekit_room_info":
            return _room_info(obj)
        case "queue_position":
            return _queue_position(obj)
        case "status":
            return Status(_field(obj, "status", str))
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
            return GenerationTick(_seconds(obj, "seconds"))
        case "generation_ended":
            reason = _field(obj, "reason", str, optional=True)
            return GenerationEnded(_seconds(obj, "seconds"), reason or "unknown")
        case "error":
            # iOS also reads an optional "message" (decart-protocol-2026-11.md §3.1)
            text_ = _field(obj, "error", str, optional=True) or _field(obj, "message", str, optional=True)
            if text_ is None:
                raise ProtocolError("'error' message carries no 'error' text")
            return Error(text_)
        case "ready":
            return Ready()
    raise ProtocolError(f"unknown message type {kind!r}")


def _set_image(obj: dict[str, Any]) -> SetImage:
    if "image_data" not in obj:
        raise ProtocolError("'set_image' lacks field 'image_data'")
    image = _field(obj, "image_data", str, optional=True)
    prompt: str | None | Omit = _field(obj, "prompt", str, optional=True) if "prompt" in obj else OMIT
    enhance: bool | Omit = _field(obj, "enhance_prompt", bool) if "enhance_prompt" in obj else OMIT
    return SetImage(image, prompt, enhance)


def _prompt(obj: dict[str, Any]) -> Prompt:
    text_ = _field(obj, "prompt", str)
    enhance_ = _field(obj, "enhance_prompt", bool, optional=True)
    return Prompt(text_, True if enhance_ is None else enhance_)


def _livekit_join(obj: dict[str, Any]) -> LivekitJoin:
    passthrough: bool | Omit = _field(obj, "passthrough", bool) if "passthrough" in obj else OMIT
    initial: SetImage | Prompt | None | Omit = OMIT
    if "initial_state" in obj:
        state = obj["initial_state"]
        if state is None:
            initial = None
        elif isinstance(state, dict) and state.get("type") == "set_image":
            initial = _set_image(state)
        elif isinstance(state, dict) and state.get("type") == "prompt":
            initial = _prompt(state)
        else:
            raise ProtocolError("'livekit_join' initial_state is not a set_image or prompt object")
    caps: dict[str, Any] | Omit = OMIT
    if "client_capabilities" in obj:
        caps = _field(obj, "client_capabilities", dict)
    return LivekitJoin(passthrough, initial, caps)


def decode_client(text: str | bytes, *, max_size: int = MAX_CLIENT_FRAME) -> ClientMessage:
    """Parse one client → server frame (used by the emulator).

    Accepts exactly what the official SDKs send: ``set_image`` with ``image_data`` always present
    (possibly ``null``), ``prompt`` with a non-empty string, ``livekit_join`` in its three released
    variants, ``offer``, ``ice-candidate`` (``null`` or an empty candidate string means end of
    candidates), and the legacy ``answer``.

    Raises:
        ProtocolError: malformed JSON, too long or too deeply nested, missing/mistyped fields, or an
            unknown ``type``.
    """
    kind, obj = _load(text, max_size)
    match kind:
        case "set_image":
            return _set_image(obj)
        case "prompt":
            return _prompt(obj)
        case "livekit_join":
            return _livekit_join(obj)
        case "offer":
            return Offer(_field(obj, "sdp", str))
        case "answer":
            return Answer(_field(obj, "sdp", str))
        case "ice-candidate":
            return _candidate(obj, require_fields=False)
    raise ProtocolError(f"unknown message type {kind!r}")
