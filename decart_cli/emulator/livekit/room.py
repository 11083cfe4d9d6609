"""Rooms of the stand-in: one per LiveKit-era session, with the client and ``inference-server-<n>``.

A :class:`Room` is created by the control session when it answers ``livekit_join`` and lives until
that session ends. Its model participant ``inference-server-<n>`` is in the room from the start
(``other_participants`` of the client's JoinResponse). When the client's video arrives the model
subscribes to it (through an :func:`~decart_cli.emulator.media.input_relay`) and publishes its
output track; the client learns of it by a ``ParticipantUpdate`` and then receives it (v0: a new
subscriber offer; v1: in the answer to its offer, or after ``media_sections_requirement``).

When the join asked for frame timing (``client_capabilities.frame_timing``), the output track
advertises ``PTF_USER_TIMESTAMP`` and each output frame carries the capture timestamp of the input
frame it was made from, in a packet trailer (:mod:`.timing`).

Generation restarts (:meth:`Room.restart`: a ``set`` after passthrough, ``--republish-after``)
unpublish the output track and publish a new one with a new sid, as the real server does: a client
must attach to every ``track_subscribed``. ``--lk-drop-after`` makes the room fail
(:meth:`Room.fail`): the client's signal socket is cut without a ``leave``, its peers close, and
any later join or resume of this room is refused with 403 while the control WebSocket lives on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, Protocol

from livekit.protocol import models, rtc

from decart_cli.emulator.events import EventLog
from decart_cli.emulator.livekit.signal import new_sid, participant_info, track_info
from decart_cli.emulator.livekit.timing import FrameStamps
from decart_cli.emulator.livekit.tokens import AccessError, LiveKitKeys
from decart_cli.emulator.media import FrameHost, input_relay, output_track

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack

__all__ = ["INFERENCE_PREFIX", "ClientLink", "Room", "RoomFaults", "RoomHub"]

logger = logging.getLogger("decart_cli.emulator")

INFERENCE_PREFIX: Final = "inference-server-"  # the SDKs attach output only from this identity prefix


class ClientLink(Protocol):
    """What a room needs from the client's signal connection (``rtc.ParticipantConnection``)."""

    participant_sid: str
    identity: str

    def send(self, response: rtc.SignalResponse) -> None:
        """Queue a ``SignalResponse`` (sent in order)."""

    def deliver_output(self, track_sid: str, track: MediaStreamTrack) -> None:
        """Start sending the model's output ``track`` to the client under ``track_sid``."""

    def remove_output(self, track_sid: str) -> None:
        """Stop sending the output track ``track_sid``."""

    async def abort(self) -> None:
        """Cut the signal socket without a goodbye and close the peers (a failed media server)."""

    async def leave(self, reason: int) -> None:
        """Send ``leave{DISCONNECT, reason}``, close the socket and the peers."""


class RoomFaults:
    """Scripted room faults: ``republish_after`` (s after the first publish), ``drop_after`` (s after the join)."""

    def __init__(self, republish_after: float | None = None, drop_after: float | None = None) -> None:
        self.republish_after = republish_after
        self.drop_after = drop_after


class Room:
    """One room; see the module docstring. Create through :meth:`RoomHub.create`."""

    def __init__(
        self,
        *,
        name: str,
        conn: int,
        host: FrameHost,
        events: EventLog,
        keys: LiveKitKeys,
        inference_identity: str,
        faults: RoomFaults,
        frame_timing: bool = False,
    ) -> None:
        self.name = name
        self.frame_timing = frame_timing  # the join asked for capture timestamps on output frames
        # capture timestamps of the client's frames (packet trailers), kept only to be echoed
        self.stamps = FrameStamps() if frame_timing else None
        self.sid = new_sid("RM_")
        self.conn = conn
        self.host = host
        self.events = events
        self.keys = keys
        self.inference_identity = inference_identity
        self.inference_sid = new_sid("PA_")
        self.client_identity = f"decart-client-{conn}"
        self.faults = faults
        self.relay = input_relay()
        self.client: ClientLink | None = None
        self.output: models.TrackInfo | None = None
        self.publications = 0
        self.joins = 0
        self.failed = False
        self.closed = False
        self._version = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- tokens and participants ----------------------------------------------------------------

    def client_token(self) -> str:
        """A LiveKit access token for the client to join this room (a secret: never logged)."""
        return self.keys.mint(self.client_identity, self.name)

    def inference_info(self) -> models.ParticipantInfo:
        """``inference-server-<n>`` as the client sees it: active, publishing the output when it exists."""
        info = participant_info(
            self.inference_sid,
            self.inference_identity,
            tracks=[self.output] if self.output is not None else [],
            publisher=self.output is not None,
        )
        info.version = next(self._version)
        return info

    def check_open(self) -> None:
        """Raise ``AccessError(403)`` when the room may not be joined any more."""
        if self.failed:
            raise AccessError(403, f"room {self.name} failed (media server fault); start a new session")
        if self.closed:
            raise AccessError(403, f"room {self.name} is closed")

    def join(self, link: ClientLink) -> None:
        """Make ``link`` the room's client (a previous connection of the client is sent away).

        Raises:
            AccessError: 403 when the room failed or is closed.
        """
        self.check_open()
        previous, self.client = self.client, link
        if previous is not None and previous is not link:
            self.events.add("lk_leave", self.conn, participant=previous.participant_sid, reason="replaced")
            self._spawn(previous.leave(models.DisconnectReason.DUPLICATE_IDENTITY))
        self.events.add("lk_join", self.conn, room=self.name, participant=link.participant_sid)
        self.joins += 1
        if self.joins == 1 and self.faults.drop_after is not None:  # counted from the first join
            self._spawn(self._fail_later(self.faults.drop_after))
        if self.output is not None:  # the client came back (full reconnect): send it the current output
            link.deliver_output(self.output.sid, self._output_track())

    def detach(self, link: ClientLink, reason: str) -> None:
        """``link`` went away (left, closed, dropped); the room keeps its model and output."""
        if self.client is link:
            self.client = None
            self.events.add("lk_leave", self.conn, participant=link.participant_sid, reason=reason)

    # -- media ----------------------------------------------------------------------------------

    def client_published(self, info: models.TrackInfo) -> None:
        """The client announced a video track (``add_track``): remember the size it publishes at."""
        if info.width and info.height:
            self.host.source_size = (info.width, info.height)
        self.events.add(
            "lk_track_published",
            self.conn,
            track=info.sid,
            width=info.width,
            height=info.height,
            simulcast=info.simulcast,
        )

    def client_track(self, track: MediaStreamTrack) -> None:
        """The client's video arrived on a peer: the model subscribes to it, and publishes output if not yet."""
        self.relay.attach(track)
        self.events.add("lk_subscribed", self.conn, identity=self.inference_identity)
        if self.output is None and not self.closed and not self.failed:
            self._publish()

    def _publish(self) -> None:
        width, height = self.host.model.width, self.host.model.height
        self.output = track_info(
            new_sid("TR_"), name="output", width=width, height=height, frame_timing=self.frame_timing
        )
        self.publications += 1
        self.events.add("lk_output", self.conn, action="published", track=self.output.sid, count=self.publications)
        if self.publications == 1 and self.faults.republish_after is not None:
            self._spawn(self._republish_later(self.faults.republish_after))
        link = self.client
        if link is not None:
            link.send(rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=[self.inference_info()])))
            link.deliver_output(self.output.sid, self._output_track())

    def _output_track(self) -> MediaStreamTrack:
        """The model's output; with frame timing, each frame carries its input's capture timestamp."""
        return output_track(self.relay, self.host, stamps=self.stamps)

    def _unpublish(self) -> None:
        if self.output is None:
            return
        old, self.output = self.output, None
        self.events.add("lk_output", self.conn, action="unpublished", track=old.sid)
        link = self.client
        if link is not None:
            link.remove_output(old.sid)
            link.send(rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=[self.inference_info()])))

    def restart(self, reason: str) -> None:
        """Generation restarts: unpublish the output and publish a new track (no-op before the first publish)."""
        if self.output is None or self.closed or self.failed:
            return
        self.events.add("lk_restart", self.conn, reason=reason)
        self._unpublish()
        self._publish()

    # -- faults and teardown --------------------------------------------------------------------

    async def _republish_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.events.add("fault", self.conn, fault="republish_after", after=delay)
        self.restart("republish_after")

    async def _fail_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.fail()

    async def fail(self) -> None:
        """The media room fails (``--lk-drop-after``): cut the client, refuse it from now on."""
        if self.failed or self.closed:
            return
        self.failed = True
        self.events.add("fault", self.conn, fault="lk_drop", room=self.name)
        self.relay.detach()
        link, self.client = self.client, None
        if link is not None:
            await link.abort()

    async def close(self, reason: int = models.DisconnectReason.ROOM_DELETED) -> None:
        """End the room with its session: ``leave{DISCONNECT, reason}`` to the client, peers closed. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        link, self.client = self.client, None
        if link is not None:
            with contextlib.suppress(Exception):
                await link.leave(reason)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.relay.detach()
        self.events.add("lk_room_closed", self.conn, room=self.name, reason=models.DisconnectReason.Name(reason))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class RoomHub:
    """The rooms of one emulator, by name, and the LiveKit keys their tokens are minted with."""

    def __init__(self, events: EventLog) -> None:
        self.events = events
        self.keys = LiveKitKeys()
        self.rooms: dict[str, Room] = {}
        self._inference = itertools.count(1)

    def create(
        self, *, session_id: str, conn: int, host: FrameHost, faults: RoomFaults, frame_timing: bool = False
    ) -> Room:
        """A new room for the session ``session_id`` with a fresh ``inference-server-<n>``.

        ``frame_timing``: the join asked for capture timestamps echoed on output frames (§6).
        """
        room = Room(
            name=f"decart-{session_id}",
            conn=conn,
            host=host,
            events=self.events,
            keys=self.keys,
            inference_identity=f"{INFERENCE_PREFIX}{next(self._inference)}",
            faults=faults,
            frame_timing=frame_timing,
        )
        self.rooms[room.name] = room
        self.events.add("lk_room", conn, room=room.name, inference=room.inference_identity, frame_timing=frame_timing)
        return room

    def get(self, name: str) -> Room:
        """The open room ``name``.

        Raises:
            AccessError: 403 when there is no such room, or it failed or closed.
        """
        room = self.rooms.get(name)
        if room is None:
            raise AccessError(403, f"no room {name} (rooms are made by livekit_join on /v1/stream)")
        room.check_open()
        return room

    async def close(self, room: Room, reason: int = models.DisconnectReason.ROOM_DELETED) -> None:
        """Close ``room`` and forget it (a closed room's name is refused from then on)."""
        await room.close(reason)
        self.rooms.pop(room.name, None)
