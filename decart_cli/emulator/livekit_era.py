"""The LiveKit era on the control socket: ``livekit_join`` → queue → ``livekit_room_info`` (2026-11 §3).

After the join the session optionally waits in a queue (``--queue N``: ``status "Entering queue"``,
then ``queue_position {position, queue_size}`` counting N … 1, then ``status "Ready"``), then gets a
room of the stand-in and its ``livekit_room_info {livekit_url, token, room_name, session_id}``.
The join's initial state (``initial_state`` or ``passthrough: true``) is applied at once, without an
ack (the join is not a state message, and an unmatched ack could be taken by a later wait); state
frames sent before or after the room info are acked as usual by the session.

Generation restarts republish the output track: a state change that leaves passthrough while the
output is published (a ``set`` after passthrough). Media frames, ``generation_started`` and the
ticks are the session's, as in the direct era.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from livekit.protocol import models

from decart_cli.core import messages as m
from decart_cli.emulator.direct import MediaSession
from decart_cli.emulator.livekit.room import Room, RoomFaults, RoomHub
from decart_cli.emulator.model import RenderState

__all__ = ["LiveKitMedia", "LiveKitSettings"]

STATUS_QUEUED: Final = "Entering queue"  # the two status texts iOS maps (2026-11 §3.1)
STATUS_READY: Final = "Ready"


@dataclass(frozen=True)
class LiveKitSettings:
    """What a LiveKit-era session is told by the emulator configuration.

    Attributes:
        livekit_url: ``ws://HOST:PORT`` of the stand-in (the emulator's own port).
        queue: queue updates before the room info (``--queue``).
        queue_interval: seconds between queue updates.
        republish_after: republish the output this long after its first publish.
        drop_after: fail the media room this long after the client joined it (``--lk-drop-after``).
    """

    livekit_url: str
    queue: int = 0
    queue_interval: float = 1.0
    republish_after: float | None = None
    drop_after: float | None = None


class LiveKitMedia:
    """The LiveKit-era media of one session: admission, its room, restarts, teardown."""

    def __init__(self, session: MediaSession, hub: RoomHub, settings: LiveKitSettings, *, session_id: str) -> None:
        self.session = session
        self.hub = hub
        self.settings = settings
        self.session_id = session_id
        self.room: Room | None = None
        self.frame_timing = False

    async def join(self, message: m.LivekitJoin) -> None:
        """Handle ``livekit_join``: admission and room info follow in a session task.

        ``client_capabilities: {"frame_timing": true}`` makes the room echo capture timestamps
        (packet trailers) on the output frames, as the real service does for today's JS SDK (§6).
        """
        caps = message.client_capabilities if isinstance(message.client_capabilities, dict) else {}
        self.frame_timing = caps.get("frame_timing") is True
        self.session.spawn(self._admit())

    async def _admit(self) -> None:
        session, settings = self.session, self.settings
        if settings.queue > 0:
            await session.send(m.Status(STATUS_QUEUED))
            for position in range(settings.queue, 0, -1):
                await session.send(m.QueuePosition(position, settings.queue))
                await asyncio.sleep(settings.queue_interval)
            await session.send(m.Status(STATUS_READY))
        faults = RoomFaults(republish_after=settings.republish_after, drop_after=settings.drop_after)
        room = self.hub.create(
            session_id=self.session_id, conn=session.conn, host=session, faults=faults, frame_timing=self.frame_timing
        )
        self.room = room
        info = m.LivekitRoomInfo(settings.livekit_url, room.client_token(), room.name, self.session_id)
        await session.send(info)
        session.schedule_drop()

    def on_state(self, old: RenderState, new: RenderState) -> None:
        """A state change: leaving passthrough restarts generation (the output is republished)."""
        if self.room is not None and old.passthrough and not new.passthrough:
            self.room.restart("set after passthrough")

    async def aclose(self, *, dropped: bool = False) -> None:
        """Close the room with the session (``ROOM_DELETED``; a dropped session fails it instead)."""
        room, self.room = self.room, None
        if room is None:
            return
        if dropped:
            await room.fail()
        await self.hub.close(room, models.DisconnectReason.ROOM_DELETED)
