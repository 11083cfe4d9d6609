"""The direct era's media: an aiortc answerer on the control socket (decart-protocol.md §2).

``offer`` → answer with the full SDP (candidates embedded; the emulator never trickles); each
client video track gets an output track rendered by the session's model; a receive-only offer gets
a synthetic processed stream. ``ice-candidate`` frames before the offer are buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final, Protocol

from decart_cli.core import messages as m
from decart_cli.emulator.events import EventLog
from decart_cli.emulator.media import FrameHost, drain, output_track, pattern_track

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from aiortc import MediaStreamTrack, RTCPeerConnection

__all__ = ["DirectMedia", "MediaSession"]

PC_CLOSE_TIMEOUT: Final = 5.0  # seconds for aiortc to stop transceivers and ICE/DTLS transports


class MediaSession(FrameHost, Protocol):
    """What an era's media needs from the control session."""

    conn: int
    events: EventLog

    async def send(self, message: m.Message) -> None:
        """Send one control message."""

    async def end(self, reason: str, *, code: int = 1000) -> None:
        """End the session (``generation_ended`` + close)."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a session task (cancelled at cleanup)."""

    def schedule_drop(self) -> None:
        """Arm ``--drop-after`` for this session if it is one of those to drop."""


class DirectMedia:
    """The direct era's peer connection of one session."""

    def __init__(self, session: MediaSession) -> None:
        self.session = session
        self._pc: RTCPeerConnection | None = None
        self._pending: list[Any] = []

    async def offer(self, sdp: str) -> None:
        """Answer the client's offer (a second offer is ignored: no renegotiation)."""
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        from decart_cli.transport.rtc import install_frame_end_jitter_buffer

        session = self.session
        if self._pc is not None:
            session.events.add("ignored", session.conn, reason="second offer (renegotiation is not supported)")
            return
        # No ICE servers: the emulator lives on loopback and must never reach the internet.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            session.events.add("track", session.conn, kind=track.kind)
            if track.kind == "video":
                pc.addTrack(output_track(track, session))
            else:  # v2v models return no audio (open question 4): drain it so aiortc's queue stays empty
                session.spawn(drain(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            session.events.add("peer", session.conn, state=pc.connectionState)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "video":  # a frame decodes at its last packet, not a frame later
                    install_frame_end_jitter_buffer(transceiver.receiver)
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "video" and transceiver.sender.track is None:
                    # receive-only offer (viewer / SDK without a local track): send a processed pattern
                    session.events.add("track", session.conn, kind="video", source="synthetic (receive-only offer)")
                    pattern = pattern_track(session.model.width, session.model.height)
                    pc.addTrack(output_track(pattern, session))
            for candidate in self._pending:
                await pc.addIceCandidate(candidate)
            self._pending.clear()
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:  # aiortc raises ValueError/KeyError/... on a bad SDP
            session.events.add("error", session.conn, reason=f"bad offer: {exc!r}")
            await session.send(m.Error(f"Invalid offer: {exc}"))
            await session.end("error", code=1011)
            return
        await session.send(m.Answer(pc.localDescription.sdp))
        session.schedule_drop()

    async def candidate(self, candidate: dict[str, Any] | None) -> None:
        """Add a trickled candidate (buffered until the offer); end-of-candidates and junk are ignored."""
        from aiortc.sdp import candidate_from_sdp

        session = self.session
        line = candidate.get("candidate") if candidate else None
        if not isinstance(line, str) or not line.strip():
            return  # null or empty candidate = end of candidates (browsers)
        try:
            parsed = candidate_from_sdp(line.removeprefix("candidate:"))
        except (ValueError, IndexError, AssertionError) as exc:  # aiortc asserts on short lines
            session.events.add("ignored", session.conn, reason=f"bad ice candidate: {exc!r}")
            return
        parsed.sdpMid = candidate.get("sdpMid") if candidate else None
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex") if candidate else None
        if self._pc is None or self._pc.remoteDescription is None:
            self._pending.append(parsed)
            return
        try:
            await self._pc.addIceCandidate(parsed)
        except Exception as exc:  # a candidate for an unknown m-line must not end the session
            session.events.add("ignored", session.conn, reason=f"ice candidate rejected: {exc!r}")

    async def aclose(self) -> None:
        """Close the peer connection; shielded, so a cancelled caller never leaves it half-closed."""
        if self._pc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._pc.close()), PC_CLOSE_TIMEOUT)
