"""``/rtc``, ``/rtc/v1`` and their ``/validate``: the stand-in's signal endpoints (aiohttp).

A thin pump: binary frames in → :class:`~decart_cli.emulator.livekit.signal.SignalProtocol` → its
actions performed on the peers and the room; replies go out through one ordered queue. Sequences
as in livekit-local.md §4.4:

* v0 (``/rtc``): join → (client) publisher offer → answer; the model's output goes out on the
  subscriber peer in a server offer, which the client answers.
* v1 (``/rtc/v1``): join → answer to the ``publisher_offer`` of the JoinRequest; server tracks
  ride on the client's recvonly sections, named by ``mid_to_track_id``; when no section is free the
  server asks for one with ``media_sections_requirement`` and attaches at the next offer.
* ``/rtc/v1`` answers 404 when single-PC is switched off (``--lk-single-pc off``): livekit 1.2.1
  then falls back to ``/rtc`` (only a 404 does that, §5.2).
* A resume (``reconnect=1``) is answered with ``leave{RECONNECT}``: the stand-in keeps no state to
  resume from, so the client does a full reconnect (a new join) instead.
* Token problems answer 401 before the upgrade; a missing, failed or closed room 403, which the
  client (through ``/rtc/validate``) takes as final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMsgType, web
from livekit.protocol import models, rtc

from decart_cli.emulator.events import EventLog
from decart_cli.emulator.livekit.peer import Peer
from decart_cli.emulator.livekit.room import Room, RoomHub
from decart_cli.emulator.livekit.signal import (
    AddCandidate,
    ApplyAnswer,
    ApplyOffer,
    Ignored,
    JoinParams,
    Leave,
    PublishTrack,
    Reply,
    SignalError,
    SignalProtocol,
    join_response,
    leave_response,
    new_sid,
    parse_join_v0,
    parse_join_v1,
    participant_info,
)
from decart_cli.emulator.livekit.tokens import AccessError
from decart_cli.emulator.media import drain

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack

__all__ = ["RtcEndpoints"]

logger = logging.getLogger("decart_cli.emulator")

MAX_SIGNAL_FRAME: Final = 4 * 1024 * 1024
ANSWER_TIMEOUT: Final = 10.0  # seconds the client has to answer a subscriber offer (v0)
CLOSE_TIMEOUT: Final = 3.0


class RtcEndpoints:
    """The aiohttp handlers of the stand-in; register with :meth:`add_routes`.

    Args:
        hub: the emulator's rooms and LiveKit keys.
        events: the event log.
        single_pc: serve ``/rtc/v1``; ``False`` answers it 404 (dual-PC clients only).
    """

    def __init__(self, hub: RoomHub, events: EventLog, *, single_pc: bool = True) -> None:
        self.hub = hub
        self.events = events
        self.single_pc = single_pc
        self.connections: set[ParticipantConnection] = set()

    def add_routes(self, app: web.Application) -> None:
        """``GET /rtc``, ``/rtc/v1``, ``/rtc/validate``, ``/rtc/v1/validate``."""
        app.router.add_get("/rtc", self.handle_v0)
        app.router.add_get("/rtc/v1", self.handle_v1)
        app.router.add_get("/rtc/validate", self.handle_validate)
        app.router.add_get("/rtc/v1/validate", self.handle_validate_v1)

    # -- handlers -------------------------------------------------------------------------------

    async def handle_v0(self, request: web.Request) -> web.StreamResponse:
        """Dual peer connection signalling (options in the query string)."""
        return await self._serve(request, parse_join_v0(request.query))

    async def handle_v1(self, request: web.Request) -> web.StreamResponse:
        """Single peer connection signalling (``join_request`` carries the JoinRequest)."""
        if not self.single_pc:
            return web.Response(status=404, text="single peer connection disabled (--lk-single-pc off)")
        try:
            params = parse_join_v1(request.query.get("join_request", ""))
        except SignalError as exc:
            self.events.add("lk_rejected", status=400, error=str(exc))
            return web.Response(status=400, text=str(exc))
        return await self._serve(request, params)

    async def handle_validate(self, request: web.Request) -> web.Response:
        """What a failed client asks to learn why: 200 ``success``, or the 401/403 a join would get."""
        try:
            access = self.hub.keys.verify(request.headers.get("Authorization"), request.query.get("access_token"))
            self.hub.get(access.room)
        except AccessError as exc:
            return web.Response(status=exc.status, text=exc.message)
        return web.Response(text="success")

    async def handle_validate_v1(self, request: web.Request) -> web.Response:
        """``/rtc/v1/validate``: as ``/rtc/validate``, or 404 when single-PC is off."""
        if not self.single_pc:
            return web.Response(status=404, text="single peer connection disabled (--lk-single-pc off)")
        return await self.handle_validate(request)

    async def _serve(self, request: web.Request, params: JoinParams) -> web.StreamResponse:
        mode = "v1" if params.single_pc else "v0"
        try:
            access = self.hub.keys.verify(request.headers.get("Authorization"), request.query.get("access_token"))
            room = self.hub.get(access.room)
        except AccessError as exc:
            self.events.add("lk_rejected", mode=mode, status=exc.status, error=exc.message)
            return web.Response(status=exc.status, text=exc.message)
        ws = web.WebSocketResponse(max_msg_size=MAX_SIGNAL_FRAME, heartbeat=None)
        await ws.prepare(request)
        if params.reconnect:
            # No resume here: ask for a full reconnect (a fresh join on the same token).
            self.events.add("lk_resume_refused", room.conn, mode=mode, participant=params.participant_sid)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(
                    leave_response(
                        models.DisconnectReason.STATE_MISMATCH, action=rtc.LeaveRequest.RECONNECT
                    ).SerializeToString()
                )
                await ws.close()
            return ws
        connection = ParticipantConnection(ws, request, room, params, access.identity, self.events)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
        return ws


class ParticipantConnection:
    """One client signal connection: its protocol state, its peers, its ordered outgoing queue."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        room: Room,
        params: JoinParams,
        identity: str,
        events: EventLog,
    ) -> None:
        self.ws = ws
        self.request = request
        self.room = room
        self.params = params
        self.identity = identity
        self.events = events
        self.conn = room.conn
        self.participant_sid = new_sid("PA_")
        self.protocol = SignalProtocol(single_pc=params.single_pc)
        self._out: asyncio.Queue[rtc.SignalResponse | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_outputs: list[tuple[str, MediaStreamTrack]] = []
        self._answering = False
        self._dirty = asyncio.Event()  # v0: the subscriber peer needs a new offer
        self._answered = asyncio.Event()
        self._closing = False
        self.single: Peer | None = None
        self.publisher: Peer | None = None
        self.subscriber: Peer | None = None
        if params.single_pc:
            self.single = self._peer("single")
        else:
            self.publisher = self._peer("publisher")
            self.subscriber = self._peer("subscriber")

    def _peer(self, label: str) -> Peer:
        room = self.room
        return Peer(
            label,
            participant_sid=room.inference_sid,
            on_track=self._on_track,
            on_state=self._on_state(label),
            stamps=room.stamps,
        )

    # -- ClientLink -----------------------------------------------------------------------------

    def send(self, response: rtc.SignalResponse) -> None:
        """Queue ``response``; the writer sends queued responses in order."""
        if not self._closing:
            self._out.put_nowait(response)

    def deliver_output(self, track_sid: str, track: MediaStreamTrack) -> None:
        """Send the model's output: v1 at the next answer, v0 in a new subscriber offer."""
        if self.subscriber is not None:
            self.subscriber.add_output(track_sid, track)
            self._dirty.set()
            return
        self._pending_outputs.append((track_sid, track))
        if not self._answering:  # no offer in hand: ask the client for one with a free section
            self._request_sections()

    def remove_output(self, track_sid: str) -> None:
        """Stop the output ``track_sid``; its section goes inactive at the next exchange."""
        self._pending_outputs = [(sid, t) for sid, t in self._pending_outputs if sid != track_sid]
        for peer in (self.single, self.subscriber):
            if peer is not None:
                peer.remove_output(track_sid)
        if self.subscriber is not None:
            self._dirty.set()

    async def abort(self) -> None:
        """Cut the socket without a close frame and close the peers (``--lk-drop-after``)."""
        self._closing = True
        self.events.add("lk_abort", self.conn, participant=self.participant_sid)
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        await self._close_peers()

    async def leave(self, reason: int) -> None:
        """Say ``leave{DISCONNECT, reason}``, close the socket and the peers."""
        if not self._closing:
            self.send(leave_response(reason))
            self._out.put_nowait(None)  # the writer closes the socket after the leave
            self._closing = True
        await self._close_peers()

    # -- the pump -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Join, then serve the socket until it closes; peers are always closed at the end."""
        self._spawn(self._writer())
        if self.subscriber is not None:
            self._spawn(self._negotiator())
        try:
            try:
                self.room.join(self)
            except Exception as exc:  # the room closed between the check and the join
                self.events.add("lk_rejected", self.conn, error=str(exc))
                return
            others = [self.room.inference_info()]
            me = participant_info(self.participant_sid, self.identity, state=models.ParticipantInfo.JOINED)
            self.send(join_response(room_sid=self.room.sid, room_name=self.room.name, participant=me, others=others))
            self.events.add(
                "lk_signal", self.conn, mode="v1" if self.params.single_pc else "v0", client=self.params.client
            )
            if self.params.publisher_offer is not None:
                await self._perform([ApplyOffer(rtc.SignalTarget.PUBLISHER, self.params.publisher_offer, 0)])
            async for msg in self.ws:
                if msg.type == WSMsgType.BINARY:
                    try:
                        actions = self.protocol.receive_bytes(msg.data)
                    except SignalError as exc:
                        self.events.add("ignored", self.conn, reason=str(exc))
                        continue
                    if not await self._perform(actions):
                        break
                elif msg.type == WSMsgType.TEXT:
                    self.events.add("ignored", self.conn, reason="text signal frame (JSON signalling is not served)")
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._closing = True
            self.room.detach(self, "signal closed")
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._close_peers()
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def _perform(self, actions: list[Any]) -> bool:
        """Carry out ``actions``; ``False`` when the client left."""
        for action in actions:
            if isinstance(action, Reply):
                self.send(action.response)
            elif isinstance(action, ApplyOffer):
                await self._answer(action)
            elif isinstance(action, ApplyAnswer):
                if self.subscriber is not None:
                    await self.subscriber.accept_answer(action.sdp)
                    self._answered.set()
            elif isinstance(action, AddCandidate):
                peer = self._peer_for(action.target)
                problem = await peer.add_candidate(action.candidate, action.sdp_mid, action.sdp_mline_index)
                if problem is not None:
                    self.events.add("ignored", self.conn, reason=problem)
            elif isinstance(action, PublishTrack):
                self.room.client_published(action.info)
            elif isinstance(action, Leave):
                self.events.add("lk_client_leave", self.conn, participant=self.participant_sid, reason=action.reason)
                return False
            elif isinstance(action, Ignored):
                logger.debug("conn %d: lk: ignored %s", self.conn, action.what)
        return True

    def _peer_for(self, target: int) -> Peer:
        if self.single is not None:
            return self.single
        assert self.publisher is not None and self.subscriber is not None
        return self.subscriber if target == rtc.SignalTarget.SUBSCRIBER else self.publisher

    async def _answer(self, action: ApplyOffer) -> None:
        peer = self.single or self.publisher
        assert peer is not None
        self._answering = True
        try:
            sdp, mids = await peer.answer(action.sdp, attach=self._attach if self.single is not None else None)
        except Exception as exc:  # aiortc raises ValueError/KeyError/... on an SDP it cannot take
            self.events.add("error", self.conn, reason=f"lk: bad offer: {exc!r}")
            return
        finally:
            self._answering = False
        answer = rtc.SessionDescription(type="answer", sdp=sdp, id=action.offer_id, mid_to_track_id=mids)
        self.send(rtc.SignalResponse(answer=answer))
        self.events.add("lk_answer", self.conn, offer_id=action.offer_id, mid_to_track_id=dict(mids))
        if self._pending_outputs:  # no free recvonly section in this offer: ask for one
            self._request_sections()

    def _attach(self, peer: Peer) -> None:
        pending, self._pending_outputs = self._pending_outputs, []
        for track_sid, track in pending:
            if peer.attach_output(track_sid, track) is None:
                self._pending_outputs.append((track_sid, track))

    def _request_sections(self) -> None:
        count = len(self._pending_outputs)
        self.events.add("lk_sections_requested", self.conn, videos=count)
        self.send(rtc.SignalResponse(media_sections_requirement=rtc.MediaSectionsRequirement(num_videos=count)))

    async def _negotiator(self) -> None:
        """v0: one subscriber offer at a time, re-offered whenever the outputs changed."""
        assert self.subscriber is not None
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self._answered.clear()
            sdp = await self.subscriber.offer()
            offer = rtc.SessionDescription(type="offer", sdp=sdp, id=self.subscriber.offer_id)
            self.send(rtc.SignalResponse(offer=offer))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._answered.wait(), ANSWER_TIMEOUT)

    async def _writer(self) -> None:
        while True:
            response = await self._out.get()
            if response is None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(), CLOSE_TIMEOUT)
                return
            if self.ws.closed:
                continue
            try:
                await self.ws.send_bytes(response.SerializeToString())
            except (ConnectionError, RuntimeError):
                return

    # -- peers ----------------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.events.add("lk_track", self.conn, kind=track.kind, participant=self.participant_sid)
        if track.kind == "video":
            self.room.client_track(track)
        else:  # the model takes no audio: drain it so aiortc's queue stays empty
            self._spawn(drain(track))

    def _on_state(self, label: str) -> Callable[[str], None]:
        def report(state: str) -> None:
            self.events.add("lk_peer", self.conn, peer=label, state=state)

        return report

    async def _close_peers(self) -> None:
        for peer in (self.single, self.publisher, self.subscriber):
            if peer is not None:
                await peer.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
