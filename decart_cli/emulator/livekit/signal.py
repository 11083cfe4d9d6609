"""LiveKit signalling without I/O: join requests in, protobuf replies and peer actions out.

A client connects to ``/rtc`` (v0: two peer connections, options in the query string) or ``/rtc/v1``
(v1: one peer connection; a ``join_request`` query parameter carries a base64url
``WrappedJoinRequest`` whose ``JoinRequest`` holds the client's first SDP offer). Frames are binary
``SignalRequest`` / ``SignalResponse`` protobufs (livekit-local.md §4.2–§4.4).

:class:`SignalProtocol` maps every ``SignalRequest`` of one participant to :data:`Action` values:
replies to send (``pong_resp``, ``track_published`` …) and work for the I/O layer (apply an SDP offer
or answer, add an ICE candidate, publish the client's track, leave). It keeps the state that belongs
to signalling (the published tracks by ``cid``) and never touches a socket or a peer connection.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import secrets
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from google.protobuf.message import DecodeError
from livekit.protocol import models, rtc

__all__ = [
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "PROTOCOL_VERSION",
    "SERVER_VERSION",
    "Action",
    "AddCandidate",
    "ApplyAnswer",
    "ApplyOffer",
    "Ignored",
    "JoinParams",
    "Leave",
    "PublishTrack",
    "Reply",
    "SignalError",
    "SignalProtocol",
    "join_response",
    "leave_response",
    "new_sid",
    "parse_join_v0",
    "parse_join_v1",
    "participant_info",
    "track_info",
]

SERVER_VERSION: Final = "1.9.0"
PROTOCOL_VERSION: Final = 16
# ping_interval must be > 0: livekit 1.2.1 builds a tokio interval from it and 0 aborts the whole
# client process (livekit-local.md §4.3). The real server uses 5 and 15 (pkg/rtc/participant.go).
PING_INTERVAL: Final = 5
PING_TIMEOUT: Final = 15
MAX_JOIN_REQUEST: Final = 256 * 1024  # base64 characters; a JoinRequest with its SDP offer is ~10 KB


class SignalError(ValueError):
    """A join request or signal frame that cannot be understood (the message says why)."""


def new_sid(prefix: str) -> str:
    """A LiveKit-style id: ``RM_``, ``PA_`` or ``TR_`` plus 12 random base62-ish characters."""
    return prefix + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


# -- join requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinParams:
    """What a join asks for, whichever path it came on.

    Attributes:
        single_pc: True for ``/rtc/v1`` (one peer connection).
        reconnect: True for a resume attempt (``reconnect=1`` / ``JoinRequest.reconnect``).
        participant_sid: the sid a resume wants back ("" otherwise).
        publisher_offer: v1 only: the SDP offer carried in the JoinRequest (``None`` otherwise).
        client: the client's self-description (sdk, version, protocol, os) for the event log.
    """

    single_pc: bool
    reconnect: bool = False
    participant_sid: str = ""
    publisher_offer: str | None = None
    client: dict[str, str] = field(default_factory=dict)


_V0_CLIENT_KEYS: Final = ("sdk", "version", "protocol", "os", "os_version", "device_model", "client_protocol")


def parse_join_v0(query: Mapping[str, str]) -> JoinParams:
    """The join of ``GET /rtc?sdk=…&protocol=…[&reconnect=1&sid=PA_…]``."""
    client = {k: query[k] for k in _V0_CLIENT_KEYS if k in query}
    return JoinParams(
        single_pc=False,
        reconnect=query.get("reconnect") in ("1", "true"),
        participant_sid=query.get("sid", ""),
        client=client,
    )


def parse_join_v1(value: str) -> JoinParams:
    """Decode ``join_request=<base64url WrappedJoinRequest>`` (padding optional, NONE or GZIP).

    Raises:
        SignalError: not base64url, not a WrappedJoinRequest, a bad GZIP body, or too long.
    """
    if not value:
        raise SignalError("no join_request parameter")
    if len(value) > MAX_JOIN_REQUEST:
        raise SignalError(f"join_request of {len(value)} characters is too long")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignalError(f"join_request is not base64url: {exc}") from exc
    wrapped = rtc.WrappedJoinRequest()
    try:
        wrapped.ParseFromString(raw)
        body = wrapped.join_request
        if wrapped.compression == rtc.WrappedJoinRequest.GZIP:
            body = gzip.decompress(body)
        join = rtc.JoinRequest()
        join.ParseFromString(body)
    except (DecodeError, OSError, EOFError, zlib.error) as exc:
        raise SignalError(f"join_request is not a WrappedJoinRequest: {exc}") from exc
    if not body:
        raise SignalError("join_request carries an empty JoinRequest")
    info = join.client_info
    client = {
        "sdk": models.ClientInfo.SDK.Name(info.sdk) if info.sdk in models.ClientInfo.SDK.values() else str(info.sdk),
        "version": info.version,
        "protocol": str(info.protocol),
        "os": info.os,
    }
    offer = join.publisher_offer.sdp if join.HasField("publisher_offer") and join.publisher_offer.sdp else None
    return JoinParams(
        single_pc=True,
        reconnect=join.reconnect,
        participant_sid=join.participant_sid,
        publisher_offer=offer,
        client={k: v for k, v in client.items() if v},
    )


# -- builders ------------------------------------------------------------------------------------


def track_info(
    sid: str, *, name: str, width: int, height: int, mime_type: str = "video/VP8", frame_timing: bool = False
) -> models.TrackInfo:
    """A camera video track as other participants see it.

    ``frame_timing`` lists ``PTF_USER_TIMESTAMP`` in ``packet_trailer_features``: a subscriber then
    reads the packet trailer of each frame (livekit ``e2ee/manager.rs``: the receive-side handler is
    attached only for tracks that advertise a feature).
    """
    features = [models.PacketTrailerFeature.PTF_USER_TIMESTAMP] if frame_timing else []
    return models.TrackInfo(
        sid=sid,
        type=models.TrackType.VIDEO,
        name=name,
        width=width,
        height=height,
        source=models.TrackSource.CAMERA,
        mime_type=mime_type,
        simulcast=False,
        packet_trailer_features=features,
    )


def participant_info(
    sid: str,
    identity: str,
    *,
    state: int = models.ParticipantInfo.ACTIVE,
    tracks: list[models.TrackInfo] | None = None,
    publisher: bool = False,
    joined_at: float | None = None,
) -> models.ParticipantInfo:
    """One participant: the client itself (``JOINED``) or ``inference-server-<n>`` (``ACTIVE``)."""
    joined = time.time() if joined_at is None else joined_at
    return models.ParticipantInfo(
        sid=sid,
        identity=identity,
        name=identity,
        state=state,  # type: ignore[arg-type]
        tracks=tracks or [],
        joined_at=int(joined),
        joined_at_ms=int(joined * 1000),
        is_publisher=publisher,
        permission=models.ParticipantPermission(can_subscribe=True, can_publish=True, can_publish_data=True),
    )


def join_response(
    *,
    room_sid: str,
    room_name: str,
    participant: models.ParticipantInfo,
    others: list[models.ParticipantInfo],
) -> rtc.SignalResponse:
    """The ``join`` reply: the room, the joiner (mandatory), the others, ping settings > 0."""
    return rtc.SignalResponse(
        join=rtc.JoinResponse(
            room=models.Room(sid=room_sid, name=room_name, creation_time=int(time.time())),
            participant=participant,
            other_participants=others,
            server_version=SERVER_VERSION,
            subscriber_primary=False,  # the client negotiates its publisher PC at once (§4.3)
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            server_info=models.ServerInfo(
                edition=models.ServerInfo.Standard,
                version=SERVER_VERSION,
                protocol=PROTOCOL_VERSION,
                node_id="decart-serve",
            ),
        )
    )


def leave_response(reason: int, *, action: int = rtc.LeaveRequest.DISCONNECT) -> rtc.SignalResponse:
    """A server ``leave``: ``DISCONNECT`` ends the client's room session with ``reason``."""
    return rtc.SignalResponse(
        leave=rtc.LeaveRequest(
            can_reconnect=action != rtc.LeaveRequest.DISCONNECT,
            reason=reason,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
        )
    )


# -- the per-participant protocol ----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Send this ``SignalResponse`` to the client."""

    response: rtc.SignalResponse


@dataclass(frozen=True)
class ApplyOffer:
    """Apply the client's SDP offer to the ``target`` peer (0 publisher / the single PC) and answer."""

    target: int
    sdp: str
    offer_id: int


@dataclass(frozen=True)
class ApplyAnswer:
    """Apply the client's SDP answer to the server's offer on the ``target`` peer (v0 subscriber)."""

    target: int
    sdp: str


@dataclass(frozen=True)
class AddCandidate:
    """Add a trickled ICE candidate to ``target`` (buffered by the peer until its remote description)."""

    target: int
    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None


@dataclass(frozen=True)
class PublishTrack:
    """The client published a track: ``info`` is what ``track_published`` announced."""

    cid: str
    info: models.TrackInfo


@dataclass(frozen=True)
class Leave:
    """The client left (``leave`` request); close its peers."""

    reason: str


@dataclass(frozen=True)
class Ignored:
    """A request the stand-in does not act on (logged only)."""

    what: str


Action: TypeAlias = Reply | ApplyOffer | ApplyAnswer | AddCandidate | PublishTrack | Leave | Ignored


class SignalProtocol:
    """The signalling state of one connected participant; feed it requests, perform its actions.

    Args:
        single_pc: the participant joined on ``/rtc/v1``.
        clock: seconds since the epoch (``time.time``; injectable for tests).
    """

    def __init__(self, *, single_pc: bool, clock: Callable[[], float] = time.time) -> None:
        self.single_pc = single_pc
        self._clock = clock
        self.tracks: dict[str, models.TrackInfo] = {}  # by the client's cid

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def receive_bytes(self, data: bytes) -> list[Action]:
        """Decode one binary frame and handle it.

        Raises:
            SignalError: the frame is not a ``SignalRequest``.
        """
        request = rtc.SignalRequest()
        try:
            request.ParseFromString(data)
        except DecodeError as exc:
            raise SignalError(f"not a SignalRequest ({len(data)} bytes): {exc}") from exc
        return self.receive(request)

    def receive(self, request: rtc.SignalRequest) -> list[Action]:
        """Handle one ``SignalRequest``: the replies to send and the work for the I/O layer."""
        kind = request.WhichOneof("message")
        if kind == "offer":
            target = rtc.SignalTarget.PUBLISHER  # a client offer is always for its publisher (or single) PC
            return [ApplyOffer(target, request.offer.sdp, request.offer.id)]
        if kind == "answer":
            return [ApplyAnswer(rtc.SignalTarget.SUBSCRIBER, request.answer.sdp)]
        if kind == "trickle":
            return [self._trickle(request.trickle)]
        if kind == "add_track":
            return self._add_track(request.add_track)
        if kind == "ping_req":
            pong = rtc.Pong(last_ping_timestamp=request.ping_req.timestamp, timestamp=self._now_ms())
            return [Reply(rtc.SignalResponse(pong_resp=pong))]
        if kind == "ping":  # the legacy int64 ping
            return [Reply(rtc.SignalResponse(pong=self._now_ms()))]
        if kind == "leave":
            reason = models.DisconnectReason.Name(request.leave.reason) if request.leave.reason else "CLIENT_INITIATED"
            return [Leave(reason)]
        return [Ignored(kind or "empty request")]

    def _trickle(self, trickle: rtc.TrickleRequest) -> Action:
        target = rtc.SignalTarget.PUBLISHER if self.single_pc else trickle.target
        try:
            init = json.loads(trickle.candidateInit)
        except ValueError:
            return Ignored(f"trickle with unreadable candidateInit {trickle.candidateInit[:60]!r}")
        if not isinstance(init, dict):
            return Ignored("trickle candidateInit is not an object")
        line = init.get("candidate")
        if not isinstance(line, str) or not line.strip():
            return Ignored("end-of-candidates trickle")
        mid = init.get("sdpMid")
        index = init.get("sdpMLineIndex")
        return AddCandidate(
            target,
            line,
            mid if isinstance(mid, str) else None,
            index if isinstance(index, int) and not isinstance(index, bool) else None,
        )

    def _add_track(self, request: rtc.AddTrackRequest) -> list[Action]:
        if request.type != models.TrackType.VIDEO:
            # the model takes video only (no SDK publishes audio to it); still confirm, like the SFU
            kind = models.TrackType.Name(request.type)
        else:
            kind = "VIDEO"
        info = models.TrackInfo(
            sid=new_sid("TR_"),
            type=request.type,
            name=request.name,
            width=request.width,
            height=request.height,
            source=request.source,
            muted=request.muted,
            simulcast=len(request.layers) > 1,
            layers=request.layers,
            mime_type="",
            packet_trailer_features=request.packet_trailer_features,
        )
        self.tracks[request.cid] = info
        reply = Reply(rtc.SignalResponse(track_published=rtc.TrackPublishedResponse(cid=request.cid, track=info)))
        if kind != "VIDEO":
            return [reply, Ignored(f"{kind} track {request.cid} (the model takes video only)")]
        return [reply, PublishTrack(request.cid, info)]
