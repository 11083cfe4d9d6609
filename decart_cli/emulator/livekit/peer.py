"""The stand-in's aiortc peer connections (livekit-local.md §4.1, §4.5, §5).

One :class:`Peer` per peer connection of a participant: the v0 publisher (the client offers) and
subscriber (the server offers), or the single v1 connection. What each one does beyond plain aiortc:

* ICE candidates trickled before the matching offer are buffered until the remote description exists;
  aiortc embeds its own candidates in the SDP and never trickles. No ICE servers (no STUN).
* ``max-bundle``: with aiortc's default (balanced) policy, the second and later video sections of
  a BUNDLE offer keep the first video section's transport, which aiortc then discards; a server
  track put on such a section (v1 ``mid`` 4 of libwebrtc's three recvonly videos) never sends.
* Answers carry the offer's RID header extensions (:func:`~decart_cli.emulator.livekit.sdp.copy_rid_extmaps`).
* Video receivers report a fixed REMB of :data:`REMB_BITRATE` every 200 ms instead of aiortc's
  conservative estimate, which held OpenH264 at 292 kbps and 14–19 fps at 1088×624 (§5.5).
* Packet trailers (frame timing, :mod:`.timing`): every video receiver strips them before decoding
  and, with frame timing, notes their capture timestamps in ``stamps``; every output sender can
  append them.
* Outgoing tracks get the msid stream id ``"<participant sid>|<track sid>"`` the client routes by
  (aiortc has no public API for it: ``sender._stream_id``).
* v1: the server's track goes on a transceiver the client offered as ``recvonly`` (aiortc stores the
  offer's direction reversed, so ``_offerDirection == "sendonly"``), never on the client's own
  sendonly section (§5.2); :meth:`Peer.answer` reports ``mid → track sid`` for the answer.

aiortc private attributes used (pinned ``aiortc>=1.16,<1.17``): ``sender._stream_id``,
``transceiver._offerDirection``, ``receiver._RTCRtpReceiver__remote_bitrate_estimator`` (and
those :mod:`.timing` lists).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from decart_cli.emulator.livekit.sdp import copy_rid_extmaps
from decart_cli.emulator.livekit.timing import FrameStamps, install_receiver, install_sender

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver

__all__ = ["REMB_BITRATE", "FixedRemb", "OutputSlot", "Peer"]

logger = logging.getLogger("decart_cli.emulator")

REMB_BITRATE: Final = 4_000_000  # bits/s: lets OpenH264 hold 30 fps at 1088×624 on loopback
REMB_INTERVAL_MS: Final = 200
CLOSE_TIMEOUT: Final = 5.0
_ESTIMATOR_ATTR: Final = "_RTCRtpReceiver__remote_bitrate_estimator"


class FixedRemb:
    """Stands in for aiortc's ``RemoteBitrateEstimator``: always ``bitrate``, every 200 ms per receiver."""

    def __init__(self, bitrate: int = REMB_BITRATE) -> None:
        self.bitrate = bitrate
        self._last_ms: int | None = None

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        """aiortc's estimator interface: ``(bitrate, [ssrc])`` when a REMB is due, else ``None``."""
        if self._last_ms is None or arrival_time_ms - self._last_ms >= REMB_INTERVAL_MS:
            self._last_ms = arrival_time_ms
            return self.bitrate, [ssrc]
        return None


@dataclass
class OutputSlot:
    """A server track on a peer: which transceiver carries it and under which track sid."""

    track_sid: str
    transceiver: RTCRtpTransceiver
    track: MediaStreamTrack


class Peer:
    """One aiortc peer connection of the stand-in.

    Args:
        label: ``publisher``, ``subscriber`` or ``single`` (for logs).
        participant_sid: the sid of the participant whose tracks this peer sends (the model's).
        on_track: called synchronously with each remote track the client sends.
        on_state: called with each new ``connectionState``.
        stamps: where the capture timestamps of the client's packet trailers go (the room's), or
            ``None`` when nothing echoes them (trailers are still stripped).
    """

    def __init__(
        self,
        label: str,
        *,
        participant_sid: str,
        on_track: Callable[[MediaStreamTrack], None],
        on_state: Callable[[str], None],
        stamps: FrameStamps | None = None,
    ) -> None:
        from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

        self.label = label
        self.stamps = stamps
        self.participant_sid = participant_sid
        config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        self.pc: RTCPeerConnection = RTCPeerConnection(config)
        self.outputs: dict[str, OutputSlot] = {}  # by track sid
        self._pending: list[Any] = []
        self._lock = asyncio.Lock()
        self._closed = False
        self.offer_id = 0
        self.pc.on("track", on_track)

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            on_state(self.pc.connectionState)

    # -- negotiation ------------------------------------------------------------------------------

    async def answer(self, offer: str, *, attach: Callable[[Peer], None] | None = None) -> tuple[str, dict[str, str]]:
        """Apply the client's offer and answer it.

        Args:
            offer: the SDP offer.
            attach: called after the remote description is set and before the answer is made, so
                the caller can put server tracks on free transceivers (:meth:`attach_output`).

        Returns:
            ``(answer sdp, mid → track sid)`` for every server track this peer carries.
        """
        from aiortc import RTCSessionDescription

        async with self._lock:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            self._fix_remb()
            await self._flush_candidates()
            if attach is not None:
                attach(self)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            sdp = copy_rid_extmaps(offer, self.pc.localDescription.sdp)
            return sdp, self.mid_map()

    async def offer(self) -> str:
        """Make a server offer (v0 subscriber) carrying the current outputs."""
        async with self._lock:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            self.offer_id += 1
            return str(self.pc.localDescription.sdp)

    async def accept_answer(self, answer: str) -> None:
        """Apply the client's answer to :meth:`offer`. Ignored when no offer is outstanding."""
        from aiortc import RTCSessionDescription

        async with self._lock:
            if self.pc.signalingState != "have-local-offer":
                logger.debug("%s: answer without an outstanding offer ignored", self.label)
                return
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            self._fix_remb()
            await self._flush_candidates()

    async def add_candidate(self, line: str, sdp_mid: str | None, sdp_mline_index: int | None) -> str | None:
        """Add a trickled candidate (buffered until the remote description). Returns a problem, or ``None``."""
        from aiortc.sdp import candidate_from_sdp

        try:
            candidate = candidate_from_sdp(line.removeprefix("candidate:"))
        except (ValueError, IndexError, AssertionError) as exc:  # aiortc asserts on short lines
            return f"unreadable candidate: {exc!r}"
        candidate.sdpMid = sdp_mid
        candidate.sdpMLineIndex = sdp_mline_index
        if self.pc.remoteDescription is None:  # the client trickles before its offer (§4.1)
            self._pending.append(candidate)
            return None
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:  # a candidate for an unknown m-line must not end the session
            return f"candidate rejected: {exc!r}"
        return None

    async def _flush_candidates(self) -> None:
        pending, self._pending = self._pending, []
        for candidate in pending:
            with contextlib.suppress(Exception):
                await self.pc.addIceCandidate(candidate)

    def _fix_remb(self) -> None:
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            if transceiver.kind != "video":
                continue
            if not isinstance(getattr(receiver, _ESTIMATOR_ATTR, None), FixedRemb):
                setattr(receiver, _ESTIMATOR_ATTR, FixedRemb())
            install_receiver(receiver, self.stamps)

    # -- server tracks ----------------------------------------------------------------------------

    def stream_id(self, track_sid: str) -> str:
        """The msid stream id the client routes a track by: ``"PA_x|TR_y"`` (§4.5)."""
        return f"{self.participant_sid}|{track_sid}"

    def add_output(self, track_sid: str, track: MediaStreamTrack) -> OutputSlot:
        """v0 subscriber: send ``track`` on a new sendonly transceiver (the next :meth:`offer` carries it)."""
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        transceiver.sender._stream_id = self.stream_id(track_sid)
        install_sender(transceiver.sender)
        slot = OutputSlot(track_sid, transceiver, track)
        self.outputs[track_sid] = slot
        return slot

    def attach_output(self, track_sid: str, track: MediaStreamTrack) -> OutputSlot | None:
        """v1: put ``track`` on a video transceiver the client offered ``recvonly``; ``None`` when none is free.

        Call it from the ``attach`` hook of :meth:`answer` (the remote offer is applied, the answer not made).
        """
        used = {id(slot.transceiver) for slot in self.outputs.values()}
        for transceiver in self.pc.getTransceivers():
            if (
                transceiver.kind == "video"
                and transceiver._offerDirection == "sendonly"  # the client's recvonly, reversed by aiortc
                and transceiver.sender.track is None
                and not transceiver.stopped
                and id(transceiver) not in used
                and transceiver.direction != "inactive"
            ):
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
                transceiver.sender._stream_id = self.stream_id(track_sid)
                install_sender(transceiver.sender)
                slot = OutputSlot(track_sid, transceiver, track)
                self.outputs[track_sid] = slot
                return slot
        return None

    def remove_output(self, track_sid: str) -> None:
        """Stop sending a server track: its sender goes idle now, its section becomes inactive at the next exchange."""
        slot = self.outputs.pop(track_sid, None)
        if slot is None:
            return
        slot.transceiver.sender.replaceTrack(None)
        slot.transceiver.direction = "inactive"
        slot.track.stop()

    def mid_map(self) -> dict[str, str]:
        """``mid → track sid`` of every server track with a negotiated mid (for v1 answers)."""
        return {slot.transceiver.mid: sid for sid, slot in self.outputs.items() if slot.transceiver.mid is not None}

    # -- teardown ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the peer connection (shielded, bounded). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for slot in self.outputs.values():
            slot.track.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self.pc.close()), CLOSE_TIMEOUT)
