"""The seam between the session driver and the media: one small interface, two implementations.

The driver (:mod:`.session`) owns the control socket, the protocol core, acks, the desired state,
the watchdog and reconnects. A :class:`MediaTransport` owns only "how media is connected" for one
connection attempt, as websockets keeps one protocol object under several I/O drivers:

* :mod:`.direct` — SDP offer/answer on the control socket, aiortc (decart-protocol.md §2.3);
* :mod:`.livekit` — ``livekit_join`` → ``livekit_room_info`` → a LiveKit room with the official SDK
  (decart-protocol-2026-11.md §3).

Life of a transport (one per attempt, never reused)::

    transport = create(kind, video, options)   # nothing connected yet
    await transport.connect(control)           # until media is connected (control.media_connected())
    await transport.run(control)               # frames in and out until media ends; cancelled at teardown
    await transport.aclose()                   # idempotent, never raises

What a transport reports goes through :class:`Control`: frames sent and received, media connected
or lost. ``stats()`` is polled once a second. Nothing above the driver knows which one runs, and
the driver imports neither aiortc nor livekit: :func:`create` imports the chosen module lazily.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from decart_cli.core import messages as msg
    from decart_cli.core.catalog import Resolved
    from decart_cli.core.session import AddCandidate, ApplyAnswer, TransportKind

__all__ = [
    "TRANSPORTS",
    "Control",
    "MediaStats",
    "MediaTransport",
    "TrackInput",
    "TransportOptions",
    "VideoInput",
    "create",
    "preload",
]

TRANSPORTS: tuple[str, ...] = ("livekit", "webrtc")


@dataclass(frozen=True)
class MediaStats:
    """Cumulative transport figures (``None`` where the stack does not report them).

    Attributes:
        bytes_sent: RTP payload bytes sent upstream.
        bytes_received: RTP payload bytes received downstream.
        rtt_ms: round-trip time in milliseconds.
        loss: fraction of upstream packets lost, 0..1.
    """

    bytes_sent: int = 0
    bytes_received: int = 0
    rtt_ms: float | None = None
    loss: float | None = None


@dataclass(frozen=True)
class TransportOptions:
    """How the media is sent; the same for every attempt of a session.

    Attributes:
        codec: ``vp8``/``h264`` (direct) or ``h264``/``vp8``/``vp9`` (LiveKit).
        ice_servers: STUN/TURN URLs for the direct transport (empty on loopback).
        loopback: the realtime URL is on this machine (aiortc then offers 127.0.0.1 only).
        frame_timing: LiveKit: stamp each outgoing frame's capture time (µs since the epoch) in
            its frame metadata and hand the echoed stamp back with each output frame, as
            ``frame.opaque`` (an ``int``; ``None`` when the frame carried none).
    """

    codec: str
    ice_servers: tuple[str, ...] = ()
    loopback: bool = False
    frame_timing: bool = False


class VideoInput(Protocol):
    """The outgoing video, readable by both transports.

    :class:`~decart_cli.media.frame_source.FrameSource` implements it: the direct transport takes the
    aiortc track (``track``), the LiveKit transport the paced frames themselves (``frames()``, each
    with an ``i420`` array at the model size, so nothing is converted twice).
    """

    @property
    def track(self) -> Any:
        """An aiortc ``MediaStreamTrack`` over the frames (direct transport)."""

    def frames(self) -> AsyncIterator[Any]:
        """The newest frames paced at the model's fps (``.i420``, ``.captured``); ends with the source."""


class TrackInput:
    """A :class:`VideoInput` over a bare aiortc track: enough for the direct transport (tests, soak)."""

    def __init__(self, track: Any) -> None:
        self._track = track

    @property
    def track(self) -> Any:
        """The wrapped aiortc track."""
        return self._track

    def frames(self) -> AsyncIterator[Any]:
        """Not available: the LiveKit transport needs a frame source (``media.source.open_source``)."""
        raise TypeError("a bare aiortc track cannot feed the LiveKit transport; open a frame source instead")


class Control(Protocol):
    """What a transport may ask of the session driver during one attempt."""

    @property
    def model(self) -> Resolved:
        """The model of this attempt (its size and fps)."""

    async def initial_ack(self) -> None:
        """Wait for the initial state's ack (already sent by the driver).

        Raises:
            DecartError: rejected, timed out, or the link failed.
        """

    async def send_offer(self, sdp: str) -> None:
        """Send the SDP offer on the control socket (direct era)."""

    async def room_info(self) -> msg.LivekitRoomInfo:
        """Wait for ``livekit_room_info`` (LiveKit era); the deadline pauses while queued.

        Raises:
            DecartError: refused, timed out, or the link failed.
        """

    def media_connected(self) -> None:
        """Media is up (peer connected / room joined and the track published)."""

    def media_lost(self, reason: str) -> None:
        """Media failed or closed on its own (a loss: the driver reconnects)."""

    def frame_sent(self) -> None:
        """One local frame was handed to the encoder."""

    def frame_received(self, frame: Any) -> None:
        """One decoded remote frame (an ``av.VideoFrame`` on both transports)."""


class MediaTransport(Protocol):
    """How media is connected for one attempt (see the module docstring for the life cycle)."""

    kind: TransportKind

    async def connect(self, control: Control) -> None:
        """Connect the media; return once :meth:`Control.media_connected` was called.

        Raises:
            DecartError: the media could not be connected.
        """

    async def run(self, control: Control) -> None:
        """Move frames until the media ends (then report :meth:`Control.media_lost`); cancellable."""

    async def apply(self, action: ApplyAnswer | AddCandidate) -> None:
        """Apply an answer or a remote candidate from the control socket (direct era only)."""

    async def stats(self) -> MediaStats | None:
        """Cumulative figures now, or ``None`` when not available."""

    async def aclose(self) -> None:
        """Release everything of this attempt (idempotent, never raises, bounded)."""


def create(kind: TransportKind, video: VideoInput, options: TransportOptions) -> MediaTransport:
    """A new transport of ``kind`` for one attempt (imports aiortc or livekit only now).

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind == "webrtc":
        from decart_cli.realtime.direct import DirectTransport

        return DirectTransport(video, options)
    if kind == "livekit":
        from decart_cli.realtime.livekit import LiveKitTransport

        return LiveKitTransport(video, options)
    raise ValueError(f"unknown transport {kind!r}: expected one of {', '.join(TRANSPORTS)}")


def preload(kind: TransportKind) -> None:
    """Import the media stack of ``kind`` now (blocking; run it off the loop).

    aiortc or the livekit SDK takes ~0.35 s to import; done while the camera opens, it no longer
    sits between "connect" and the first frame. Unknown kinds are ignored (``create`` reports them).
    """
    if kind == "webrtc":
        from decart_cli.realtime.direct import preload as load_direct

        load_direct()
    elif kind == "livekit":
        from decart_cli.realtime.livekit import preload as load_livekit

        load_livekit()
