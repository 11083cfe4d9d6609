"""Frame timing in the stand-in: read the client's packet trailers, echo the timestamp on the output.

Today's JS SDK measures glass-to-glass latency with LiveKit's packet trailer (decart-protocol-2026-11.md
§6): its join carries ``client_capabilities: {"frame_timing": true}``, its camera frames carry a
trailer with the capture time (µs since the epoch), and the server copies that timestamp to the
output frame it makes from each input frame; the client reads it back with the decoded frame. The
stand-in does the same with aiortc (the codec is :mod:`.trailer`):

* **in** (every video receiver of the stand-in, :func:`install_receiver`): a jitter buffer that releases
  a frame at its last packet (as libwebrtc does; aiortc's own waits for the next frame) and strips
  the trailer from each assembled frame before aiortc decodes it (H.264 and VP8 decoders are not
  meant to see it) and, when the join asked for frame timing, notes its timestamp under the frame's
  pts in the room's :class:`FrameStamps`.
  aiortc numbers decoded frames with the RTP timestamp minus the first one (its ``TimestampMapper``);
  the buffer keeps its own mapper fed with the same frames in the same order, so the keys match;
* **out** (the output track, when the join asked for frame timing): the rendered frame gets the
  timestamp of its input frame in ``frame.opaque``; each output sender's encoder
  (:func:`install_sender`) appends a trailer carrying it to the encoded frame — to the last NAL
  unit before packetisation for H.264, to the last payload for VP8 — so libwebrtc on the client finds
  it at the end of the assembled frame. The output ``TrackInfo`` lists ``PTF_USER_TIMESTAMP`` in
  ``packet_trailer_features``, which is what makes the client attach its trailer reader.

aiortc private attributes used (pinned ``aiortc>=1.16,<1.17``): ``RTCRtpReceiver.__jitter_buffer``,
``RTCRtpSender.__encoder`` and the instance method ``RTCRtpSender._next_encoded_frame``; H.264's
``_encode_frame`` / ``_packetize``.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from typing import Any, Final

from decart_cli.emulator.livekit import trailer
from decart_cli.transport.rtc import JITTER_ATTR, frame_end_jitter_buffer_type

__all__ = ["MAX_STAMPS", "FrameStamps", "TrailerEncoder", "install_receiver", "install_sender"]

MAX_STAMPS: Final = 300  # frames remembered (10 s at 30 fps), as libwebrtc's own receive map
_ENCODER_ATTR: Final = "_RTCRtpSender__encoder"
_INSTALLED: Final = "_decart_trailers"


class FrameStamps:
    """Capture timestamps of input frames by their pts (bounded; oldest forgotten first)."""

    def __init__(self, limit: int = MAX_STAMPS) -> None:
        self._limit = limit
        self._stamps: OrderedDict[int, int] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, pts: int, user_timestamp: int) -> None:
        """Remember ``user_timestamp`` (µs since the epoch) for the input frame ``pts``."""
        with self._lock:
            self._stamps[pts] = user_timestamp
            self._stamps.move_to_end(pts)
            while len(self._stamps) > self._limit:
                self._stamps.popitem(last=False)

    def pop(self, pts: int | None) -> int | None:
        """The timestamp noted for ``pts`` (forgotten now), or ``None``."""
        if pts is None:
            return None
        with self._lock:
            return self._stamps.pop(pts, None)


@functools.cache
def _trailer_jitter_buffer_type() -> type[Any]:
    """The frame-end jitter buffer (:func:`~decart_cli.transport.rtc.frame_end_jitter_buffer_type`) that
    also strips each released frame's trailer into a :class:`FrameStamps`."""
    from aiortc.rtcrtpreceiver import TimestampMapper

    class TrailerJitterBuffer(frame_end_jitter_buffer_type()):  # type: ignore[misc]
        """A frame is released at its last packet (as libwebrtc does: no frame interval of added delay),
        its trailer stripped."""

        def __init__(self, capacity: int, stamps: FrameStamps | None) -> None:
            super().__init__(capacity=capacity, is_video=True)
            self._stamps = stamps
            self._mapper = TimestampMapper()

        def _remove_frame(self, sequence_number: int) -> Any:
            frame = super()._remove_frame(sequence_number)
            if frame is None:
                return None
            data, found = trailer.strip(frame.data)
            if found is not None:
                frame.data = data
            if self._stamps is not None:
                pts = self._mapper.map(frame.timestamp)  # what aiortc will number the decoded frame
                if found is not None and found.user_timestamp:
                    self._stamps.put(pts, found.user_timestamp)
            return frame

    return TrailerJitterBuffer


def install_receiver(receiver: Any, stamps: FrameStamps | None) -> None:
    """Give a video receiver a jitter buffer that strips packet trailers into ``stamps`` (idempotent).

    With ``stamps`` ``None`` (the join did not ask for frame timing) trailers are stripped and dropped.
    """
    buffer_type = _trailer_jitter_buffer_type()
    current = getattr(receiver, JITTER_ATTR, None)
    if current is None or isinstance(current, buffer_type):
        return
    setattr(receiver, JITTER_ATTR, buffer_type(int(current.capacity), stamps))


class TrailerEncoder:
    """Wraps aiortc's encoder: frames whose ``opaque`` holds a capture timestamp get a trailer carrying it."""

    def __init__(self, inner: Any) -> None:
        from aiortc.codecs.h264 import H264Encoder

        self._inner = inner
        self._h264 = isinstance(inner, H264Encoder)

    @property
    def target_bitrate(self) -> int:
        """The inner encoder's target (aiortc's sender sets it from REMB)."""
        return int(self._inner.target_bitrate)

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self._inner.target_bitrate = bitrate

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Encode and packetise like the inner encoder, the trailer after the frame's last byte."""
        stamp = frame.opaque if isinstance(frame.opaque, int) else 0
        tail = trailer.build(user_timestamp=stamp) if stamp > 0 else b""
        if not tail:
            return self._inner.encode(frame, force_keyframe)  # type: ignore[no-any-return]
        if self._h264:
            from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

            nals = list(self._inner._encode_frame(frame, force_keyframe))
            if nals:
                nals[-1] = nals[-1] + tail  # inside the last NAL unit: the client strips it after depacketising
            timestamp = convert_timebase(frame.pts, frame.time_base, VIDEO_TIME_BASE)
            return self._inner._packetize(nals), timestamp
        payloads, timestamp = self._inner.encode(frame, force_keyframe)
        if payloads:  # VP8: payloads are slices of the frame after a descriptor; the last ends the frame
            payloads[-1] = payloads[-1] + tail
        return payloads, timestamp

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        """Pre-encoded packets pass through unchanged."""
        return self._inner.pack(packet)  # type: ignore[no-any-return]


def install_sender(sender: Any) -> None:
    """Make ``sender`` encode through a :class:`TrailerEncoder` (idempotent; before or after it started)."""
    if getattr(sender, _INSTALLED, False):
        return
    from aiortc.codecs import get_encoder

    original = sender._next_encoded_frame

    async def next_encoded_frame(codec: Any) -> Any:
        encoder = getattr(sender, _ENCODER_ATTR, None)
        if not isinstance(encoder, TrailerEncoder):
            setattr(sender, _ENCODER_ATTR, TrailerEncoder(get_encoder(codec) if encoder is None else encoder))
        return await original(codec)

    sender._next_encoded_frame = next_encoded_frame
    setattr(sender, _INSTALLED, True)
