"""aiortc wrapper for the client side of the direct protocol (§2.3 steps 5–8).

One local video track goes up and the server's processed video comes back on the same
``sendrecv`` m-line (as the SDK's ``addTrack``). aiortc never
trickles: the offer returned by :meth:`PeerConnection.create_offer` already lists every local
candidate. Remote ``ice-candidate`` messages are queued until the answer is applied and parsed
with ``candidate_from_sdp`` (aiortc's ``RTCIceCandidate`` has no ``candidate=`` field, which broke
the Python SDK, client-behaviour.md J.20). aiortc exceptions become :class:`ConnectionFailed` in
:func:`_translate`.

Received video is handed to the decoder as soon as a frame's last packet is in
(:func:`frame_end_jitter_buffer`): aiortc's own jitter buffer releases a frame only when the
first packet of the NEXT frame arrives, one frame interval (33 ms at 30 fps) on every received
frame for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from decart_cli.core.sdp import munge_offer
from decart_cli.errors import ConnectionFailed, DecartError

if TYPE_CHECKING:
    import av
    from aiortc import MediaStreamTrack, RTCPeerConnection

__all__ = [
    "DEFAULT_ICE_SERVERS",
    "JITTER_ATTR",
    "PeerConnection",
    "TransportStats",
    "frame_end_jitter_buffer",
    "frame_end_jitter_buffer_type",
    "install_frame_end_jitter_buffer",
]

logger = logging.getLogger(__name__)

DEFAULT_ICE_SERVERS = ("stun:stun.l.google.com:19302",)  # as the SDKs; no TURN since 2026-02-25


class TransportStats:
    """Cumulative figures read from ``getStats()`` (``None`` where aiortc does not report them)."""

    __slots__ = ("bytes_received", "bytes_sent", "loss", "rtt_ms")

    def __init__(self, bytes_sent: int, bytes_received: int, rtt_ms: float | None, loss: float | None) -> None:
        self.bytes_sent = bytes_sent
        self.bytes_received = bytes_received
        self.rtt_ms = rtt_ms
        self.loss = loss


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except DecartError:
        raise
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:  # aiortc raises ValueError, InvalidStateError, InvalidAccessError, OSError…
        raise ConnectionFailed(f"WebRTC {what} failed: {type(exc).__name__}: {exc}") from exc


VIDEO_JITTER_CAPACITY = 512  # packets, as aiortc's own video jitter buffer
JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"  # a receiver's jitter buffer (aiortc 1.16, pinned <1.17)


@functools.cache
def frame_end_jitter_buffer_type() -> type[Any]:
    """aiortc's ``JitterBuffer`` with one rule changed: a frame is released once its last packet arrived.

    aiortc's ``JitterBuffer`` completes a frame only when a packet of the *next* frame (another RTP
    timestamp) arrives, so every frame waits one frame interval before decoding. The RTP marker bit
    ends a video frame (RFC 7741 §4.1 for VP8, RFC 6184 §5.1 for H.264): this subclass releases the
    frame at the packet that carries it, provided every packet from the frame's first is there. A
    frame whose end is lost is still released by aiortc's rule (the next frame's first packet).
    libwebrtc's receivers (browsers, the SDKs, a real media server) release at frame completion too.
    """
    from aiortc.jitterbuffer import JitterBuffer, JitterFrame

    class FrameEndJitterBuffer(JitterBuffer):
        def _remove_frame(self, sequence_number: int) -> Any:
            packets: list[Any] = []
            timestamp = None
            origin = self._origin
            if origin is None:
                return None
            # Padding-only packets (libwebrtc's bandwidth probes: no payload, the previous frame's
            # timestamp, sent after its marker) are dropped where a frame would begin: they end no frame.
            while (first := self._packets[origin % self._capacity]) is not None and not getattr(first, "_data", b""):
                self.remove(1)
                origin = self._origin
                if origin is None:  # pragma: no cover - remove() always leaves an origin
                    return None
            for count in range(self._capacity):
                packet = self._packets[(origin + count) % self._capacity]
                if packet is None:
                    return None  # a gap: wait for it (or for aiortc's overflow handling)
                if timestamp is None:
                    timestamp = packet.timestamp
                elif packet.timestamp != timestamp:  # the next frame began: this one is complete
                    self.remove(count)
                    return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
                packets.append(packet)
                if packet.marker:  # the frame's last packet
                    self.remove(count + 1)
                    return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
            return None

    return FrameEndJitterBuffer


def frame_end_jitter_buffer(capacity: int = VIDEO_JITTER_CAPACITY) -> Any:
    """A video jitter buffer that releases a frame once its last packet arrived (:func:`frame_end_jitter_buffer_type`)."""
    return frame_end_jitter_buffer_type()(capacity=capacity, is_video=True)


def install_frame_end_jitter_buffer(receiver: Any) -> None:
    """Give an aiortc video receiver a :func:`frame_end_jitter_buffer` (before its first packet)."""
    setattr(receiver, JITTER_ATTR, frame_end_jitter_buffer())


def _counting_track(inner: MediaStreamTrack, on_frame: Callable[[], None]) -> MediaStreamTrack:
    """A proxy track that counts frames handed to the encoder; stopping it leaves ``inner`` running.

    The caller's camera track outlives each peer connection (it is re-added on reconnect), so the
    peer connection must never stop it.
    """
    from aiortc import MediaStreamTrack

    class CountingTrack(MediaStreamTrack):
        kind = "video"

        async def recv(self) -> Any:
            frame = await inner.recv()
            on_frame()
            return frame

    return CountingTrack()


class PeerConnection:
    """The client's ``RTCPeerConnection``.

    Args:
        ice_servers: STUN/TURN URLs; empty for loopback (nothing to discover, and no packet may
            leave the machine).
        codec: ``"vp8"`` (default, as the SDKs) or ``"h264"``: put first in the offer.
        on_state: called with aiortc's ``connectionState`` on every change.
        on_frame_sent: called for every local frame handed to the encoder.
        loopback: the server is on this machine: offer 127.0.0.1 candidates only.

    Usage: :meth:`create_offer` → send it → :meth:`apply_answer`; remote candidates at any time
    through :meth:`add_candidate`; the remote track arrives in :attr:`remote_track`. Always
    :meth:`aclose` (idempotent).
    """

    def __init__(
        self,
        *,
        ice_servers: Sequence[str] = DEFAULT_ICE_SERVERS,
        codec: str = "vp8",
        on_state: Callable[[str], None] | None = None,
        on_frame_sent: Callable[[], None] | None = None,
        loopback: bool = False,
    ) -> None:
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

        if loopback:
            # aioice drops 127.0.0.1 from its host addresses and would offer this machine's
            # interface address instead: the server is on loopback, so offer loopback only.
            from decart_cli.transport.ice import offer_loopback_only

            offer_loopback_only()
        config = RTCConfiguration(iceServers=[RTCIceServer(urls=[u]) for u in ice_servers])
        self._pc: RTCPeerConnection = RTCPeerConnection(configuration=config)
        self._codec = codec
        self._loopback = loopback
        self._on_state = on_state
        self._on_frame_sent = on_frame_sent or (lambda: None)
        self._queued: list[dict[str, Any]] = []
        self._answered = False
        self._closed = False
        self.remote_track: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

        @self._pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            logger.debug("remote %s track", track.kind)
            if track.kind == "video" and not self.remote_track.done():
                self.remote_track.set_result(track)

        @self._pc.on("connectionstatechange")
        def _on_state_change() -> None:
            state = self._pc.connectionState
            logger.debug("peer connection %s", state)
            if self._on_state is not None and not self._closed:
                self._on_state(state)

    @property
    def state(self) -> str:
        """aiortc's ``connectionState`` (new, connecting, connected, failed, closed)."""
        return str(self._pc.connectionState)

    async def create_offer(self, track: MediaStreamTrack) -> str:
        """Add ``track`` (sendrecv), gather, and return the offer SDP to send (codec-munged).

        Raises:
            ConnectionFailed: aiortc refused.
        """
        from aiortc import RTCRtpSender

        with _translate("offer"):
            # sendrecv, as the SDK's addTrack: one m=video line carries the camera up and the model's
            # output down (a sendonly line would forbid the answer from sending anything back).
            transceiver = self._pc.addTransceiver(_counting_track(track, self._on_frame_sent), direction="sendrecv")
            install_frame_end_jitter_buffer(transceiver.receiver)
            wanted = "video/h264" if self._codec == "h264" else "video/vp8"
            codecs = RTCRtpSender.getCapabilities("video").codecs
            ordered = sorted(codecs, key=lambda c: c.mimeType.lower() != wanted)
            transceiver.setCodecPreferences(ordered)
            offer = await self._pc.createOffer()
            await self._pc.setLocalDescription(offer)
            # aiortc regenerates localDescription from its own state, so munge what we send.
            return munge_offer(self._pc.localDescription.sdp, self._codec)

    async def apply_answer(self, sdp: str) -> None:
        """Apply the server's answer, then the remote candidates queued before it.

        Raises:
            ConnectionFailed: the answer was rejected.
        """
        from aiortc import RTCSessionDescription

        with _translate("answer"):
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        self._answered = True
        queued, self._queued = self._queued, []
        for candidate in queued:
            await self.add_candidate(candidate)

    async def add_candidate(self, candidate: dict[str, Any]) -> None:
        """Add one remote candidate ``{candidate, sdpMid, sdpMLineIndex}``; empty ones are ignored.

        Bad candidates are logged and dropped (one bad line must not end the session).
        """
        line = str(candidate.get("candidate") or "")
        if not line:
            return
        if not self._answered:
            self._queued.append(candidate)
            return
        from aiortc.sdp import candidate_from_sdp

        try:
            parsed = candidate_from_sdp(line.removeprefix("a=").removeprefix("candidate:"))
            parsed.sdpMid = candidate.get("sdpMid")
            parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
            await self._pc.addIceCandidate(parsed)
        except Exception as exc:  # malformed candidate from the server: log, keep going
            logger.warning("ignored remote ICE candidate %r: %s", line, exc)

    async def stats(self) -> TransportStats:
        """Bytes both ways, RTT (ms) and upstream loss (0..1) from RTCP where reported."""
        report = await self._pc.getStats()
        sent = received = 0
        rtt: float | None = None
        loss: float | None = None
        for item in report.values():
            kind = getattr(item, "type", "")
            if kind == "outbound-rtp":
                sent += int(getattr(item, "bytesSent", 0) or 0)
            elif kind == "transport":  # aiortc's inbound-rtp has no byte count; the transport's does
                received += int(getattr(item, "bytesReceived", 0) or 0)
            elif kind == "remote-inbound-rtp":
                if (value := getattr(item, "roundTripTime", None)) is not None:
                    rtt = float(value) * 1000.0
                if (fraction := getattr(item, "fractionLost", None)) is not None:
                    loss = float(fraction) / 256.0  # RFC 3550 §6.4.1: 8-bit fixed point
        return TransportStats(sent, received, rtt, loss)

    async def aclose(self) -> None:
        """Close the peer connection (idempotent, never raises). The caller's track keeps running."""
        if self._closed:
            return
        self._closed = True
        if not self.remote_track.done():
            self.remote_track.cancel()
        with contextlib.suppress(Exception):
            await self._pc.close()


async def next_frame(track: MediaStreamTrack) -> av.VideoFrame | None:
    """The next decoded remote frame, or ``None`` when the track ended."""
    from aiortc.mediastreams import MediaStreamError

    try:
        frame = await track.recv()
    except MediaStreamError:
        return None
    return frame  # type: ignore[return-value]
