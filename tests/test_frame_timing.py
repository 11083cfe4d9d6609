"""Frame timing without sockets: LiveKit's packet-trailer codec, the stand-in's trailer hooks on aiortc's
jitter buffer and encoders, the latency window's rules, and the join's capability."""

from __future__ import annotations

import fractions
import json

import av
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from decart_cli.core.session import DesiredState, SessionCore
from decart_cli.emulator.livekit import trailer
from decart_cli.emulator.livekit.timing import FrameStamps, TrailerEncoder, install_receiver
from decart_cli.media.latency import MAX_MS, SKIP_S, LatencyMeter, LatencyWindow

# A trailer as livekit/rust-sdks BuildTrailerPayload writes it for user_timestamp 0x0102030405060708 and
# frame_id 9: TLVs XOR 0xFF, then the length byte (21 ^ 0xFF) and "LKTS".
RUST_VECTOR = (
    bytes(
        [0x01 ^ 0xFF, 8 ^ 0xFF, *(b ^ 0xFF for b in bytes.fromhex("0102030405060708"))]
        + [0x02 ^ 0xFF, 4 ^ 0xFF, *(b ^ 0xFF for b in (9).to_bytes(4, "big"))]
        + [21 ^ 0xFF]
    )
    + b"LKTS"
)


def test_trailer_matches_the_rust_sdk_layout() -> None:
    """build() writes exactly the rust SDK's bytes (TLVs XOR 0xFF, length byte, LKTS) and parse() reads them."""
    assert trailer.build(user_timestamp=0x0102030405060708, frame_id=9) == RUST_VECTOR
    found = trailer.parse(b"\x00\x00\x01\x65frame" + RUST_VECTOR)
    assert found == trailer.Trailer(0x0102030405060708, 9, b"", len(RUST_VECTOR))


def test_strip_removes_exactly_the_trailer() -> None:
    """strip() returns the codec bytes untouched and the values; a frame without a trailer is unchanged."""
    stamp = 1_764_470_000_123_456
    data, found = trailer.strip(b"codec-bytes" + trailer.build(user_timestamp=stamp))
    assert data == b"codec-bytes" and found is not None and found.user_timestamp == stamp
    plain = b"\x9d\x01\x2a" * 50
    assert trailer.strip(plain) == (plain, None)


@pytest.mark.parametrize(
    "tail",
    [
        b"LKTS",  # shorter than the envelope
        bytes([5 ^ 0xFF]) + b"LKTX",  # wrong magic
        bytes([200 ^ 0xFF]) + b"LKTS",  # length beyond the data
        bytes([5 ^ 0xFF]) + b"LKTS",  # an envelope with no TLV
        bytes([0x07 ^ 0xFF, 1 ^ 0xFF, 0x00, 8 ^ 0xFF]) + b"LKTS",  # only an unknown tag
    ],
)
def test_broken_trailers_are_not_trailers(tail: bytes) -> None:
    """No magic, an impossible length or no known TLV: parse() says there is no trailer (nothing stripped)."""
    assert trailer.parse(b"payload" + tail) is None


def test_unknown_tags_are_skipped_and_user_data_read() -> None:
    """An unknown TLV between known ones is skipped; user data (tag 3) comes back as written."""
    body = bytes(b ^ 0xFF for b in (0x09, 2, 0xAA, 0xBB)) + trailer.build(user_timestamp=77, user_data=b"hi")[:-5]
    whole = body + bytes([(len(body) + 5) ^ 0xFF]) + b"LKTS"
    found = trailer.parse(whole)
    assert found is not None and (found.user_timestamp, found.user_data, found.size) == (77, b"hi", len(whole))


def test_build_refuses_what_cannot_be_written() -> None:
    """Nothing set gives no trailer; a trailer over 255 bytes or a value out of range is refused."""
    assert trailer.build() == b""
    with pytest.raises(ValueError):
        trailer.build(user_timestamp=1, user_data=b"x" * 250)
    with pytest.raises(ValueError):
        trailer.build(user_timestamp=1 << 64)


def _packet(seq: int, ts: int, data: bytes, marker: int = 1) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts)
    packet.marker = marker
    packet._data = data  # type: ignore[attr-defined]  # what aiortc's depayloader leaves for the buffer
    return packet


class _Receiver:
    """Just the private attribute install_receiver replaces (as aiortc's RTCRtpReceiver has it)."""

    def __init__(self) -> None:
        self._RTCRtpReceiver__jitter_buffer = JitterBuffer(capacity=128, is_video=True)


def test_receiver_strips_trailers_and_notes_stamps_under_the_decoded_pts() -> None:
    """The stand-in's jitter buffer hands the decoder frames without trailers at their last packet (RTP
    marker bit, as libwebrtc; a frame whose end is lost leaves when the next one begins, aiortc's rule),
    and notes each stamp under the pts aiortc gives the decoded frame (RTP timestamp minus the first one)."""
    receiver = _Receiver()
    stamps = FrameStamps()
    install_receiver(receiver, stamps)
    buffer = receiver._RTCRtpReceiver__jitter_buffer
    install_receiver(receiver, stamps)  # idempotent
    assert receiver._RTCRtpReceiver__jitter_buffer is buffer
    base = 4_000_000_000  # wraps past 2**32 on the third frame, as aiortc's TimestampMapper handles
    released = []
    for i in range(4):
        ts = (base + i * 3000) % (1 << 32)
        marker = 0 if i == 2 else 1  # frame 2's last packet lost its marker: released by frame 3's packet
        _, frame = buffer.add(_packet(100 + i, ts, b"f%d" % i + trailer.build(user_timestamp=1000 + i), marker))
        released.append(frame)
    assert [f.data if f else None for f in released] == [b"f0", b"f1", None, b"f2"]
    assert [stamps.pop(pts) for pts in (0, 3000, 6000)] == [1000, 1001, 1002]
    assert stamps.pop(0) is None  # each stamp is read once


def test_receiver_without_frame_timing_strips_trailers_and_keeps_nothing() -> None:
    """With no stamp store (the join did not ask for frame timing) the decoder still gets frames without trailers."""
    receiver = _Receiver()
    install_receiver(receiver, None)
    buffer = receiver._RTCRtpReceiver__jitter_buffer
    released = [
        buffer.add(_packet(7 + i, 90_000 * i, b"g%d" % i + trailer.build(user_timestamp=5 + i)))[1] for i in (0, 1)
    ]
    assert [f.data if f else None for f in released] == [b"g0", b"g1"]


def test_frame_stamps_forget_the_oldest() -> None:
    """The stamp store is bounded: the oldest pts go first."""
    stamps = FrameStamps(limit=3)
    for pts in range(5):
        stamps.put(pts, 10 + pts)
    assert [stamps.pop(p) for p in range(5)] == [None, None, 12, 13, 14]


def _frames(count: int) -> list[av.VideoFrame]:
    out = []
    rng = np.random.default_rng(1)
    for n in range(count):
        img = rng.integers(0, 255, (96 * 3 // 2, 128), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        frame.pts, frame.time_base = n * 3000, fractions.Fraction(1, 90_000)
        out.append(frame)
    return out


@pytest.mark.parametrize(("encoder", "depayload"), [(Vp8Encoder, vp8_depayload), (H264Encoder, h264_depayload)])
def test_trailer_encoder_ends_each_stamped_frame_with_its_trailer(encoder: type, depayload: object) -> None:
    """VP8 and H.264: a frame whose opaque holds a stamp is sent with a trailer at the very end of the
    depacketised frame (where libwebrtc looks); unstamped frames are sent as aiortc sends them."""
    wrapped = TrailerEncoder(encoder())
    wrapped.target_bitrate = 500_000
    assert wrapped.target_bitrate == 500_000
    for n, frame in enumerate(_frames(4)):
        frame.opaque = 1_764_470_000_000_000 + n if n % 2 == 0 else None
        payloads, _ = wrapped.encode(frame)
        data = b"".join(depayload(p) for p in payloads)  # type: ignore[operator]
        found = trailer.parse(data)
        if n % 2 == 0:
            assert found is not None and found.user_timestamp == 1_764_470_000_000_000 + n
        else:
            assert found is None


def test_latency_window_follows_the_js_sdk_rules() -> None:
    """Samples below 0 or above 60 s are dropped, the first 2 s after the first one are skipped, 300 are kept."""
    window = LatencyWindow(skip=SKIP_S)
    assert window.add(50.0, at=100.0) is None  # warm-up
    assert window.add(50.0, at=100.0 + SKIP_S - 0.01) is None
    assert window.add(-1.0, at=103.0) is None and window.add(MAX_MS + 1, at=103.0) is None
    assert window.add(40.0, at=103.0) == 40.0
    for i in range(400):
        window.add(float(i), at=104.0 + i)
    assert window.count == 401 and window.quantile(0.0) == 100.0  # only the last 300 count
    assert window.median() == 249.5


def test_meter_prefers_the_marker_and_falls_back_to_frame_timing() -> None:
    """With both measures the marker is shown; with frame timing only, "frame_timing"; with none, None."""

    class Frame:
        width, height = 8, 8  # too small for a marker
        opaque = 1_000_000_000  # µs since the epoch

    clock = iter(range(100)).__next__
    meter = LatencyMeter(None, marker=False, frame_timing=True, clock=lambda: float(clock()), wall=lambda: 1000.05)
    assert meter.source is None and meter.median_ms() is None
    for _ in range(5):
        meter.on_frame(Frame())
    assert meter.source == "frame_timing" and meter.median_ms() == pytest.approx(50.0)
    meter.marker.add(12.0, at=0.0)
    assert meter.source == "marker" and meter.median_ms() == 12.0


@pytest.mark.parametrize(("timing", "expected"), [(True, {"frame_timing": True}), (False, None)])
def test_the_join_asks_for_frame_timing_only_when_told(timing: bool, expected: object) -> None:
    """livekit_join carries client_capabilities {"frame_timing": true} exactly when the session asks for it."""
    core = SessionCore(DesiredState(prompt="anime"), transport="livekit", frame_timing=timing)
    core.begin_attempt()
    core.send_initial()
    join = json.loads(core.data_to_send()[0])
    assert join["type"] == "livekit_join" and join.get("client_capabilities") == expected
