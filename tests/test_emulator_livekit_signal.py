"""The stand-in's LiveKit signalling without I/O: join requests, SignalProtocol, SDP edits, tokens, REMB."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from livekit.protocol import models, rtc

from decart_cli.emulator.livekit.peer import REMB_BITRATE, FixedRemb
from decart_cli.emulator.livekit.sdp import candidates, copy_rid_extmaps
from decart_cli.emulator.livekit.signal import (
    PING_INTERVAL,
    AddCandidate,
    ApplyAnswer,
    ApplyOffer,
    Ignored,
    Leave,
    PublishTrack,
    Reply,
    SignalError,
    SignalProtocol,
    join_response,
    leave_response,
    parse_join_v0,
    parse_join_v1,
    participant_info,
)
from decart_cli.emulator.livekit.tokens import AccessError, LiveKitKeys


def _wrapped(join: rtc.JoinRequest, *, gzip_it: bool, pad: bool = False) -> str:
    body = join.SerializeToString()
    compression = rtc.WrappedJoinRequest.NONE
    if gzip_it:
        body, compression = gzip.compress(body), rtc.WrappedJoinRequest.GZIP
    raw = rtc.WrappedJoinRequest(compression=compression, join_request=body).SerializeToString()
    text = base64.urlsafe_b64encode(raw).decode()
    return text if pad else text.rstrip("=")


@pytest.mark.parametrize("gzip_it", [True, False])
def test_v1_join_request_is_decoded_with_or_without_gzip(gzip_it: bool) -> None:
    """A v1 join_request (base64url without padding, GZIP or NONE) yields the client info and the offer."""
    join = rtc.JoinRequest(
        client_info=models.ClientInfo(sdk=models.ClientInfo.PYTHON, version="1.2.1", protocol=18, os="Debian"),
        publisher_offer=rtc.SessionDescription(type="offer", sdp="v=0\r\n"),
    )
    params = parse_join_v1(_wrapped(join, gzip_it=gzip_it))
    assert params.single_pc and not params.reconnect
    assert params.publisher_offer == "v=0\r\n"
    assert params.client == {"sdk": "PYTHON", "version": "1.2.1", "protocol": "18", "os": "Debian"}
    assert parse_join_v1(_wrapped(join, gzip_it=gzip_it, pad=True)).publisher_offer == "v=0\r\n"


def test_v1_resume_is_recognised() -> None:
    """A v1 JoinRequest with reconnect=true and a participant sid is a resume attempt."""
    params = parse_join_v1(_wrapped(rtc.JoinRequest(reconnect=True, participant_sid="PA_x"), gzip_it=False))
    assert params.reconnect and params.participant_sid == "PA_x" and params.publisher_offer is None


@pytest.mark.parametrize("value", ["", "%%%", base64.urlsafe_b64encode(b"\xff\xff\xff").decode(), "x" * 300_000])
def test_bad_v1_join_requests_raise_signal_error(value: str) -> None:
    """Missing, not base64, not a protobuf, or far too long: SignalError, never another exception."""
    with pytest.raises(SignalError):
        parse_join_v1(value)


def test_bad_gzip_body_raises_signal_error() -> None:
    """A WrappedJoinRequest that claims GZIP but carries garbage is a SignalError."""
    raw = rtc.WrappedJoinRequest(compression=rtc.WrappedJoinRequest.GZIP, join_request=b"not gzip").SerializeToString()
    with pytest.raises(SignalError):
        parse_join_v1(base64.urlsafe_b64encode(raw).decode())


def test_v0_join_reads_the_query() -> None:
    """v0: client fields from the query; reconnect=1&sid=… marks a resume."""
    params = parse_join_v0({"sdk": "python", "protocol": "18", "version": "1.2.1", "reconnect": "1", "sid": "PA_y"})
    assert not params.single_pc and params.reconnect and params.participant_sid == "PA_y"
    assert params.client == {"sdk": "python", "protocol": "18", "version": "1.2.1"}
    assert not parse_join_v0({}).reconnect


def test_join_response_has_positive_ping_settings_and_the_participants() -> None:
    """JoinResponse: ping_interval > 0 (0 aborts livekit 1.2.1), the joiner, the model participant."""
    me = participant_info("PA_me", "client", state=models.ParticipantInfo.JOINED)
    model = participant_info("PA_model", "inference-server-1")
    join = join_response(room_sid="RM_1", room_name="room", participant=me, others=[model]).join
    assert join.ping_interval == PING_INTERVAL > 0 and join.ping_timeout > join.ping_interval
    assert join.participant.identity == "client" and join.participant.state == models.ParticipantInfo.JOINED
    assert [p.identity for p in join.other_participants] == ["inference-server-1"]
    assert join.room.name == "room" and not join.subscriber_primary
    assert join.participant.permission.can_publish and join.participant.permission.can_subscribe


def test_leave_response_disconnect_cannot_reconnect() -> None:
    """A server leave with DISCONNECT says can_reconnect false; RECONNECT says true."""
    assert not leave_response(models.DisconnectReason.ROOM_DELETED).leave.can_reconnect
    assert leave_response(0, action=rtc.LeaveRequest.RECONNECT).leave.can_reconnect


def test_ping_req_gets_pong_resp_echoing_the_timestamp() -> None:
    """ping_req → pong_resp{last_ping_timestamp, timestamp=now ms}; legacy ping → pong."""
    proto = SignalProtocol(single_pc=False, clock=lambda: 12.5)
    [reply] = proto.receive(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=777, rtt=3)))
    assert isinstance(reply, Reply)
    assert reply.response.pong_resp.last_ping_timestamp == 777 and reply.response.pong_resp.timestamp == 12500
    [legacy] = proto.receive(rtc.SignalRequest(ping=1))
    assert isinstance(legacy, Reply) and legacy.response.pong == 12500


def test_add_track_video_is_published_with_a_track_sid() -> None:
    """add_track (video) → track_published{cid, TR_ sid, size} and a PublishTrack action; tracks kept by cid."""
    proto = SignalProtocol(single_pc=True)
    request = rtc.AddTrackRequest(cid="cam", name="camera", type=models.TrackType.VIDEO, width=1088, height=624)
    reply, publish = proto.receive(rtc.SignalRequest(add_track=request))
    assert isinstance(reply, Reply) and isinstance(publish, PublishTrack)
    published = reply.response.track_published
    assert published.cid == "cam" and published.track.sid.startswith("TR_")
    assert (published.track.width, published.track.height) == (1088, 624)
    assert publish.info.sid == published.track.sid and proto.tracks["cam"].sid == published.track.sid


def test_add_track_audio_is_confirmed_but_not_fed_to_the_model() -> None:
    """An audio add_track is answered (as the SFU would) but yields no PublishTrack."""
    proto = SignalProtocol(single_pc=False)
    actions = proto.receive(rtc.SignalRequest(add_track=rtc.AddTrackRequest(cid="mic", type=models.TrackType.AUDIO)))
    assert isinstance(actions[0], Reply) and actions[0].response.track_published.cid == "mic"
    assert isinstance(actions[1], Ignored)


def _trickle(init: object, target: int = rtc.SignalTarget.SUBSCRIBER) -> rtc.SignalRequest:
    text = init if isinstance(init, str) else json.dumps(init)
    return rtc.SignalRequest(trickle=rtc.TrickleRequest(candidateInit=text, target=target))  # type: ignore[arg-type]


def test_trickle_becomes_add_candidate_for_its_target() -> None:
    """v0 trickle → AddCandidate for its target; v1 always targets the single PC (publisher)."""
    cand = {"candidate": "candidate:1 1 udp 1 127.0.0.2 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    [v0] = SignalProtocol(single_pc=False).receive(_trickle(cand))
    assert isinstance(v0, AddCandidate) and v0.target == rtc.SignalTarget.SUBSCRIBER
    assert (v0.candidate, v0.sdp_mid, v0.sdp_mline_index) == (cand["candidate"], "0", 0)
    [v1] = SignalProtocol(single_pc=True).receive(_trickle(cand))
    assert isinstance(v1, AddCandidate) and v1.target == rtc.SignalTarget.PUBLISHER


@pytest.mark.parametrize("init", ["{oops", "[1]", {"candidate": ""}, {"sdpMid": "0"}])
def test_useless_trickles_are_ignored(init: object) -> None:
    """Unreadable, non-object, empty (end-of-candidates) or candidate-less trickles are ignored."""
    [action] = SignalProtocol(single_pc=False).receive(_trickle(init))
    assert isinstance(action, Ignored)


def test_offer_answer_leave_and_unknown_requests() -> None:
    """offer → ApplyOffer(publisher), answer → ApplyAnswer(subscriber), leave → Leave, others → Ignored."""
    proto = SignalProtocol(single_pc=False)
    [offer] = proto.receive(rtc.SignalRequest(offer=rtc.SessionDescription(type="offer", sdp="o", id=4)))
    assert offer == ApplyOffer(rtc.SignalTarget.PUBLISHER, "o", 4)
    [answer] = proto.receive(rtc.SignalRequest(answer=rtc.SessionDescription(type="answer", sdp="a")))
    assert answer == ApplyAnswer(rtc.SignalTarget.SUBSCRIBER, "a")
    [leave] = proto.receive(rtc.SignalRequest(leave=rtc.LeaveRequest(reason=models.DisconnectReason.CLIENT_INITIATED)))
    assert leave == Leave("CLIENT_INITIATED")
    [mute] = proto.receive(rtc.SignalRequest(mute=rtc.MuteTrackRequest(sid="TR_1", muted=True)))
    assert isinstance(mute, Ignored) and mute.what == "mute"


def test_garbage_frames_raise_signal_error() -> None:
    """Bytes that are no SignalRequest raise SignalError (the pump logs and goes on)."""
    with pytest.raises(SignalError):
        SignalProtocol(single_pc=False).receive_bytes(b"\xff\xff\xff\xff")


# -- SDP -----------------------------------------------------------------------------------------

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=sendonly",
        "m=video 9 UDP/TLS/RTP/SAVPF 109",
        "a=mid:1",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=sendonly",
        "a=rid:q send",
        "a=rid:h send",
        "a=simulcast:send q;h",
        "",
    ]
)
ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 3 4 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 5000 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 127.0.0.1",
        "a=mid:0",
        "a=recvonly",
        "m=video 5000 UDP/TLS/RTP/SAVPF 109",
        "c=IN IP4 127.0.0.1",
        "a=mid:1",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=recvonly",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
        "",
    ]
)


def test_rid_extensions_are_copied_into_the_matching_video_section() -> None:
    """The offer's RID extmaps land in the answer's video section (same mid), not in audio; CRLF kept."""
    out = copy_rid_extmaps(OFFER, ANSWER)
    video = out[out.index("m=video") :]
    audio = out[out.index("m=audio") : out.index("m=video")]
    assert "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in video
    assert "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id" in video
    assert "rtp-stream-id" not in audio
    assert video.index("a=extmap:2 ") < video.index("a=extmap:10 ") < video.index("a=recvonly")
    assert "\n" not in out.replace("\r\n", "")
    assert copy_rid_extmaps(OFFER, out) == out  # idempotent: nothing is copied twice


def test_rid_copy_skips_ids_the_answer_already_uses_and_offers_without_rid() -> None:
    """An extmap id already taken in the answer is not reused; an offer without RID leaves the answer as is."""
    taken = ANSWER.replace("a=extmap:2 http", "a=extmap:10 http")
    out = copy_rid_extmaps(OFFER, taken)
    assert "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" not in out
    assert "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id" in out
    plain = "\r\n".join(line for line in OFFER.split("\r\n") if "stream-id" not in line)
    assert copy_rid_extmaps(plain, ANSWER) == ANSWER


def test_candidates_are_listed() -> None:
    """candidates() lists (transport, address, port, type) of every a=candidate line."""
    assert candidates(ANSWER) == [("udp", "127.0.0.1", 5000, "host")]


# -- REMB and tokens -----------------------------------------------------------------------------


def test_fixed_remb_reports_the_same_bitrate_every_200_ms() -> None:
    """The stand-in's estimator reports REMB_BITRATE for the packet's SSRC at most every 200 ms."""
    remb = FixedRemb()
    assert remb.add(1000, 0, 1200, 42) == (REMB_BITRATE, [42])
    assert remb.add(1100, 0, 1200, 42) is None
    assert remb.add(1200, 0, 1200, 42) == (REMB_BITRATE, [42])


def test_livekit_tokens_are_minted_and_verified_locally() -> None:
    """A minted token verifies (bearer or query) to its identity and room; a foreign or missing one is 401."""
    keys, other = LiveKitKeys(), LiveKitKeys()
    token = keys.mint("decart-client-1", "decart-abc")
    access = keys.verify(f"Bearer {token}")
    assert (access.identity, access.room) == ("decart-client-1", "decart-abc")
    assert keys.verify(None, token) == access
    for header in (None, "Bearer ", f"Bearer {other.mint('x', 'y')}", "Basic abc", "Bearer not.a.jwt"):
        with pytest.raises(AccessError) as info:
            keys.verify(header)
        assert info.value.status == 401
    assert "***" in repr(keys) and keys._secret not in repr(keys)
