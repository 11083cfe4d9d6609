"""SDP munging on a real aiortc 1.16 offer (captured text): codec order and VP8 bitrate hints."""

from __future__ import annotations

import pytest

from decart_cli.core.sdp import BITRATE_HINTS, add_vp8_bitrate_hints, munge_offer, prefer_codec

# An offer from aiortc 1.16 (RTCPeerConnection + one VideoStreamTrack), captured verbatim.
AIORTC_OFFER = (
    "v=0\r\no=- 4004469078 4004469078 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "a=msid-semantic:WMS *\r\nm=video 49216 UDP/TLS/RTP/SAVPF 97 98 99 100 101 102\r\nc=IN IP4 192.0.2.2\r\n"
    "a=sendrecv\r\na=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\na=mid:0\r\n"
    "a=msid:7b1b02a7-0f92-4862-955b-592c3a0da14a f13ac3a0-35c3-4004-ab00-c97a958fd0e0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\na=rtcp-mux\r\na=ssrc-group:FID 2592830414 3740965743\r\n"
    "a=ssrc:2592830414 cname:dbfe66ba-d55f-41cd-8af8-c08403b2c337\r\n"
    "a=ssrc:3740965743 cname:dbfe66ba-d55f-41cd-8af8-c08403b2c337\r\na=rtpmap:97 VP8/90000\r\n"
    "a=rtcp-fb:97 nack\r\na=rtcp-fb:97 nack pli\r\na=rtcp-fb:97 goog-remb\r\na=rtpmap:98 rtx/90000\r\n"
    "a=fmtp:98 apt=97\r\na=rtpmap:99 H264/90000\r\na=rtcp-fb:99 nack\r\na=rtcp-fb:99 nack pli\r\n"
    "a=rtcp-fb:99 goog-remb\r\na=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    "a=rtpmap:100 rtx/90000\r\na=fmtp:100 apt=99\r\na=rtpmap:101 H264/90000\r\na=rtcp-fb:101 nack\r\n"
    "a=rtcp-fb:101 nack pli\r\na=rtcp-fb:101 goog-remb\r\n"
    "a=fmtp:101 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=rtpmap:102 rtx/90000\r\na=fmtp:102 apt=101\r\n"
    "a=candidate:f957a2332b1715da3b0ef8ba684454eb 1 udp 2130706431 192.0.2.2 49216 typ host\r\n"
    "a=end-of-candidates\r\na=ice-ufrag:ZwkW\r\na=ice-pwd:Pp8t3Iq9RknkXuSGqcvYJD\r\n"
    "a=fingerprint:sha-256 04:B2:C3:3D:BA:9E:11:16:98:71:73:B0:7D:B2:57:A0:A8:78:CF:54:7A:F5:A3:C5:C3:6A:B7:59:7C:91:"
    "24:62\r\na=setup:actpass\r\n"
)


def m_line(sdp: str) -> str:
    return next(line for line in sdp.split("\r\n") if line.startswith("m=video"))


def test_h264_first_with_rtx_kept_after_each() -> None:
    """--codec h264 moves both H.264 payloads (each followed by its RTX) to the front."""
    out = prefer_codec(AIORTC_OFFER, "H264")
    assert m_line(out) == "m=video 49216 UDP/TLS/RTP/SAVPF 99 100 101 102 97 98"
    assert out.replace(m_line(out), "") == AIORTC_OFFER.replace(m_line(AIORTC_OFFER), "")  # nothing else changed


def test_vp8_already_first_is_unchanged() -> None:
    """VP8 is aiortc's first codec: preferring it keeps the order."""
    assert prefer_codec(AIORTC_OFFER, "vp8") == AIORTC_OFFER


def test_vp8_first_when_it_was_last() -> None:
    """VP8 moves to the front with its RTX."""
    h264_first = prefer_codec(AIORTC_OFFER, "H264")
    assert m_line(prefer_codec(h264_first, "VP8")) == "m=video 49216 UDP/TLS/RTP/SAVPF 97 98 99 100 101 102"


def test_vp8_fmtp_inserted_after_last_rtcp_fb() -> None:
    """Without a VP8 fmtp, one is inserted right after the last rtcp-fb of that payload type."""
    lines = add_vp8_bitrate_hints(AIORTC_OFFER).split("\r\n")
    index = lines.index("a=rtcp-fb:97 goog-remb")
    assert lines[index + 1] == f"a=fmtp:97 {BITRATE_HINTS}"
    assert lines[index + 2] == "a=rtpmap:98 rtx/90000"


def test_existing_vp8_fmtp_extended_once() -> None:
    """An existing VP8 fmtp gets the hints appended, and a second pass changes nothing."""
    sdp = AIORTC_OFFER.replace("a=rtcp-fb:97 goog-remb\r\n", "a=rtcp-fb:97 goog-remb\r\na=fmtp:97 max-fr=30\r\n")
    once = add_vp8_bitrate_hints(sdp)
    assert f"a=fmtp:97 max-fr=30;{BITRATE_HINTS}\r\n" in once
    assert add_vp8_bitrate_hints(once) == once


def test_fmtp_after_rtpmap_when_no_rtcp_fb() -> None:
    """A VP8 payload without rtcp-fb gets its fmtp right after its rtpmap; LF-only SDP works too."""
    sdp = "v=0\nm=video 9 UDP/TLS/RTP/SAVPF 96\na=rtpmap:96 VP8/90000\na=mid:0\n"
    assert (
        add_vp8_bitrate_hints(sdp)
        == f"v=0\nm=video 9 UDP/TLS/RTP/SAVPF 96\na=rtpmap:96 VP8/90000\na=fmtp:96 {BITRATE_HINTS}\na=mid:0\n"
    )


@pytest.mark.parametrize("func", [lambda s: prefer_codec(s, "VP8"), add_vp8_bitrate_hints])
def test_no_video_section_unchanged(func: object) -> None:
    """An SDP without m=video is returned as is."""
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    assert func(sdp) == sdp  # type: ignore[operator]


def test_missing_codec_unchanged() -> None:
    """Preferring a codec the offer lacks changes nothing."""
    assert prefer_codec(AIORTC_OFFER, "AV1") == AIORTC_OFFER


def test_only_first_video_section_and_next_section_bounds() -> None:
    """Edits stop at the next m= line."""
    sdp = AIORTC_OFFER + "m=audio 9 UDP/TLS/RTP/SAVPF 97\r\na=rtpmap:97 opus/48000/2\r\n"
    out = munge_offer(sdp, "h264")
    assert out.endswith("m=audio 9 UDP/TLS/RTP/SAVPF 97\r\na=rtpmap:97 opus/48000/2\r\n")


def test_munge_offer_defaults_to_vp8() -> None:
    """munge_offer: VP8 first plus hints by default; h264 first plus hints with codec='h264'."""
    assert m_line(munge_offer(AIORTC_OFFER)).endswith("97 98 99 100 101 102")
    out = munge_offer(AIORTC_OFFER, "h264")
    assert m_line(out).endswith("99 100 101 102 97 98") and BITRATE_HINTS in out
