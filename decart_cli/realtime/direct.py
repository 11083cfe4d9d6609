"""The direct media transport: SDP offer/answer on the control socket, aiortc for the media.

On the wire exactly as the direct era (decart-protocol.md §2.3 steps 4–8): the initial state is
acknowledged before the offer is made; the offer carries every candidate (aiortc does not trickle);
the answer and any server candidates arrive on the control socket and reach :meth:`apply`. The
peer connection's ``connected`` is "media connected"; ``failed``/``closed`` or the end of the
remote track is a loss. aiortc's objects stay in :mod:`decart_cli.transport.rtc`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from decart_cli.core.session import AddCandidate, ApplyAnswer
from decart_cli.realtime.transport import Control, MediaStats, TransportOptions, VideoInput
from decart_cli.transport.rtc import PeerConnection, next_frame

if TYPE_CHECKING:
    from decart_cli.core.session import TransportKind

__all__ = ["DirectTransport", "preload"]

logger = logging.getLogger(__name__)


def preload() -> None:
    """Import aiortc and PyAV (what :class:`DirectTransport` needs) ahead of the first connect."""
    import aiortc  # noqa: F401
    import av  # noqa: F401


class DirectTransport:
    """aiortc peer connection for one attempt (see :class:`~decart_cli.realtime.transport.MediaTransport`)."""

    kind: TransportKind = "webrtc"

    def __init__(self, video: VideoInput, options: TransportOptions) -> None:
        self._video = video
        self._options = options
        self._pc: PeerConnection | None = None
        self._connected = asyncio.Event()
        self._failed: str | None = None
        self._control: Control | None = None

    async def connect(self, control: Control) -> None:
        """Initial ack, offer, then wait for the peer connection to be ``connected``.

        Raises:
            DecartError: the ack failed, aiortc refused, or the peer connection failed.
        """
        from decart_cli.errors import ConnectionFailed

        self._control = control
        await control.initial_ack()
        self._pc = PeerConnection(
            ice_servers=self._options.ice_servers,
            codec=self._options.codec,
            on_state=self._on_state,
            on_frame_sent=control.frame_sent,
            loopback=self._options.loopback,
        )
        await control.send_offer(await self._pc.create_offer(self._video.track))
        await self._connected.wait()
        if self._failed is not None:
            raise ConnectionFailed(self._failed)
        control.media_connected()

    def _on_state(self, state: str) -> None:
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            reason = f"the WebRTC connection {state}"
            if not self._connected.is_set():
                self._failed = reason
                self._connected.set()
            elif self._control is not None:
                self._control.media_lost(reason)

    async def run(self, control: Control) -> None:
        """Hand every decoded remote frame to ``control``; report a loss when the track ends."""
        assert self._pc is not None
        track = await self._pc.remote_track
        while (frame := await next_frame(track)) is not None:
            control.frame_received(frame)
        control.media_lost("the server's video track ended")

    async def apply(self, action: ApplyAnswer | AddCandidate) -> None:
        """Apply the answer, or add a remote candidate (queued by the peer until the answer)."""
        if self._pc is None:
            return
        if isinstance(action, ApplyAnswer):
            await self._pc.apply_answer(action.sdp)
        else:
            await self._pc.add_candidate(action.candidate)

    async def stats(self) -> MediaStats | None:
        """Bytes, RTT and loss from aiortc's ``getStats()``."""
        if self._pc is None:
            return None
        t = await self._pc.stats()
        return MediaStats(t.bytes_sent, t.bytes_received, t.rtt_ms, t.loss)

    async def aclose(self) -> None:
        """Close the peer connection (the caller's track keeps running)."""
        self._connected.set()
        if self._pc is not None:
            await self._pc.aclose()
