"""Receive-only viewers of a running session: WebSocket ``/subscribe/{session_id}`` (decart-protocol.md §2.6).

A viewer connects with ``?IP=…&port=…&api_key=…`` (the values of the producer's subscribe token),
sends no initial state, offers ``recvonly`` video (+ audio), and receives the producer's output
frames. Each viewer has a two-frame queue fed by the producer's output track (newest frames win, so
a slow viewer never slows the producer). When the producer's session ends, its viewers are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final, Protocol

from aiohttp import WSMsgType, web

from decart_cli.core import messages as m
from decart_cli.emulator.events import EventLog
from decart_cli.errors import ProtocolError

if TYPE_CHECKING:
    import av
    from aiortc import MediaStreamTrack

__all__ = ["Producer", "Viewer"]

VIEWER_QUEUE: Final = 2
PC_CLOSE_TIMEOUT: Final = 5.0


class Producer(Protocol):
    """What a viewer needs from the session it watches."""

    viewers: set[asyncio.Queue[av.VideoFrame | None]]
    done: asyncio.Event


def _viewer_track(queue: asyncio.Queue[av.VideoFrame | None]) -> MediaStreamTrack:
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError

    class ViewerTrack(MediaStreamTrack):
        kind = "video"

        async def recv(self) -> av.VideoFrame:
            frame = await queue.get()
            if frame is None:  # the producer ended
                self.stop()
                raise MediaStreamError
            return frame

    return ViewerTrack()


class Viewer:
    """Drives one ``/subscribe`` WebSocket until it closes or its producer ends."""

    def __init__(self, *, conn: int, ws: web.WebSocketResponse, producer: Producer, events: EventLog) -> None:
        self.conn = conn
        self.ws = ws
        self.producer = producer
        self.events = events
        self.queue: asyncio.Queue[av.VideoFrame | None] = asyncio.Queue(VIEWER_QUEUE)
        self._pc: Any = None

    async def run(self) -> None:
        """Answer the viewer's offer and relay the producer's output; always cleans up."""
        watcher = asyncio.get_running_loop().create_task(self._close_when_producer_ends())
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    message = m.decode_client(msg.data)
                except ProtocolError as exc:
                    self.events.add("ignored", self.conn, reason=str(exc))
                    continue
                if isinstance(message, m.Offer) and self._pc is None:
                    await self._answer(message.sdp)
                else:
                    self.events.add("ignored", self.conn, reason=f"viewer sent {message.type!r}")
        finally:
            if self.producer.done.is_set() and not watcher.done():
                # the watcher is closing the socket: let it finish the close handshake
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(watcher), PC_CLOSE_TIMEOUT)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            self.producer.viewers.discard(self.queue)
            if self._pc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self._pc.close()), PC_CLOSE_TIMEOUT)
            self.events.add("close", self.conn, code=self.ws.close_code, viewer=True)

    async def _answer(self, sdp: str) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback only
        self._pc = pc
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "video" and transceiver.sender.track is None:
                    pc.addTrack(_viewer_track(self.queue))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError/KeyError/... on a bad SDP
            self.events.add("error", self.conn, reason=f"bad viewer offer: {exc!r}")
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(m.encode(m.Error(f"Invalid offer: {exc}")))
                await self.ws.close(code=1011)
            return
        self.producer.viewers.add(self.queue)
        await self.ws.send_str(m.encode(m.Answer(pc.localDescription.sdp)))
        self.events.add("sent", self.conn, type="answer", sdp=f"<{len(pc.localDescription.sdp)} chars>")

    async def _close_when_producer_ends(self) -> None:
        await self.producer.done.wait()
        while self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)
        self.events.add("viewer_end", self.conn, reason="the watched session ended")
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=1000)
