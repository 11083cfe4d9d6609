"""A LiveKit room, once created, lives as long as the process (decart_cli/realtime/livekit.py ``_rooms``).

livekit 1.2.1 crashes a native worker when a ``Room`` whose engine gave up is freed. Here the real
transport and the real ``rtc.Room`` run up to the native join, which the test refuses (no native
code runs in this process); the room must outlive the transport and a full garbage collection.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from livekit import rtc

import decart_cli.realtime.livekit as rk
from decart_cli.core import messages as msg
from decart_cli.errors import ConnectionFailed
from decart_cli.realtime.transport import TransportOptions


class RoomInfoOnly:
    """The driver's side of one attempt, as far as a refused join needs it."""

    async def room_info(self) -> msg.LivekitRoomInfo:
        return msg.LivekitRoomInfo(livekit_url="ws://127.0.0.1:9", token="t0ken", room_name="r", session_id="s")

    async def initial_ack(self) -> None:
        return None

    def media_lost(self, reason: str) -> None:
        raise AssertionError(f"no media was connected: {reason}")


async def test_a_room_outlives_its_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: rtc.Room, url: str, token: str, options: Any = None) -> None:
        raise rtc.ConnectError("refused by the test")

    monkeypatch.setattr(rk, "_rooms", [])  # this process's own record stays as it was
    monkeypatch.setattr(rtc.Room, "connect", refuse)
    transport = rk.LiveKitTransport(video=None, options=TransportOptions(codec="h264"))  # type: ignore[arg-type]
    assert not rk.native_started()
    with pytest.raises(ConnectionFailed, match="could not join the LiveKit room at 127.0.0.1:9"):
        await transport.connect(RoomInfoOnly())  # type: ignore[arg-type]
    await transport.aclose()
    [room] = rk._rooms
    kept = weakref.ref(room)
    del room, transport
    gc.collect()
    assert kept() is not None and rk.native_started()
