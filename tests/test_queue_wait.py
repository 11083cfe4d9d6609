"""The wait for capacity is bounded: Timeouts.queue_wait caps a LiveKit-era queue in total (the SDK's fixed 15 s
room-info deadline is paused while queued, not removed). Control socket only: no media, no namespace."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import pytest
from aiortc import VideoStreamTrack
from test_realtime import FAST, KEY

from decart_cli.config import Secret
from decart_cli.core import catalog
from decart_cli.emulator.server import EmulatorThread
from decart_cli.errors import ConnectionFailed
from decart_cli.realtime import RealtimeSession, SessionConfig
from decart_cli.realtime.transport import TrackInput


async def test_a_queue_longer_than_queue_wait_gives_up_naming_the_position(
    make_emulator: Callable[..., EmulatorThread],
) -> None:
    """Queue updates outlast room_info (0.5 s) without failing it; after queue_wait (1.5 s) in total the
    connect fails once, saying how long it waited and where in the queue it was, and never joins a room."""
    emu = make_emulator(queue=50, queue_interval=0.2)
    timeouts = dataclasses.replace(FAST, room_info=0.5, queue_wait=1.5)
    config = SessionConfig(emu.ws_url, Secret(KEY), catalog.resolve("lucy-2.1"), timeouts=timeouts, reconnect=False)
    session = RealtimeSession(config, TrackInput(VideoStreamTrack()))
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match=r"still waiting for capacity after 1\.5 s \(position \d+ of 50\)"):
        async with asyncio.timeout(10):  # an unbounded wait fails here instead of hanging the suite
            await session.connect()
    took = time.monotonic() - started
    await session.disconnect()
    assert 1.5 <= took < 6.0, f"gave up after {took:.2f} s"
    assert emu.connections == 1
