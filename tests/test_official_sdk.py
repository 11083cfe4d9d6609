"""The official Python SDK of the direct-WebRTC era (decart==0.0.40), UNCHANGED, against the emulator.

If this fails because of the emulator, the emulator is fixed; the SDK is never patched. Note: the SDK
hard-codes Google's STUN server, so aioice tries a DNS lookup of stun.l.google.com; without internet it
fails and only host candidates (loopback-reachable) are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import cv2
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from emulator_client import PatternTrack, T, read_stamp

from decart_cli.emulator.server import EmulatorThread

KEY = "test-key-123456"
STREAM_SECONDS = 4.0


def png_bytes() -> bytes:
    """A small reference image (PNG)."""
    img = np.zeros((120, 90, 3), np.uint8)
    img[:, :, 2] = 220
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf.tobytes())


class RemoteCounter:
    """Reads the SDK's remote track and counts frames (and their sizes)."""

    def __init__(self) -> None:
        self.frames = 0
        self.sizes: set[tuple[int, int]] = set()
        self.first_at: float | None = None
        self.last: Any = None
        self.task: asyncio.Task[None] | None = None

    def on_remote_stream(self, track: MediaStreamTrack) -> None:
        self.task = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if self.first_at is None:
                    self.first_at = time.monotonic()
                self.frames += 1
                self.sizes.add((frame.width, frame.height))
                self.last = frame

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.mark.slow
async def test_official_sdk_streams_through_the_emulator(emulator: EmulatorThread) -> None:
    """SDK 0.0.40: mints a client token, connects with it, set_prompt and set(image) are acked, ≥ 90 % frames return."""
    from decart import DecartClient, models
    from decart.realtime.client import RealtimeClient, SetInput
    from decart.realtime.types import RealtimeConnectOptions
    from decart.types import ModelState, Prompt

    timings: dict[str, float] = {}
    states: list[str] = []
    errors: list[Any] = []
    ticks: list[int] = []
    client = DecartClient(api_key=KEY, base_url=emulator.http_url, realtime_base_url=emulator.ws_url)
    try:
        token = await client.tokens.create(expires_in=120, allowed_models=["lucy-2.1"])
        assert token.api_key.startswith("ek_") and token.permissions == {"models": ["lucy-2.1"]}

        model = models.realtime("lucy-2.1")
        track = PatternTrack(model.width, model.height)
        counter = RemoteCounter()
        start = time.monotonic()
        realtime = await asyncio.wait_for(
            RealtimeClient.connect(
                base_url=client.realtime_base_url,
                api_key=token.api_key,
                local_track=track,
                options=RealtimeConnectOptions(
                    model=model,
                    on_remote_stream=counter.on_remote_stream,
                    initial_state=ModelState(prompt=Prompt(text="anime hero", enhance=True)),
                ),
            ),
            6 * T,
        )
        timings["connect"] = time.monotonic() - start
        realtime.on("connection_change", states.append)
        realtime.on("error", errors.append)
        realtime.on("generation_tick", lambda msg: ticks.append(msg.seconds))
        assert realtime.session_id

        t0 = time.monotonic()
        await realtime.set_prompt("cyberpunk city")
        timings["set_prompt"] = time.monotonic() - t0
        t0 = time.monotonic()
        await realtime.set(SetInput(prompt="pencil sketch", image=png_bytes()))
        timings["set_image"] = time.monotonic() - t0

        await asyncio.sleep(STREAM_SECONDS)
        track.stop()  # the SDK's sender stops pulling frames; let the ones in flight arrive
        seen, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + T
        while time.monotonic() - quiet_since < 0.5 and time.monotonic() < deadline:
            if counter.frames != seen:
                seen, quiet_since = counter.frames, time.monotonic()
            await asyncio.sleep(0.05)
        sent_at_stop = track.sent
        received = counter.frames
        t0 = time.monotonic()
        await realtime.disconnect()
        timings["disconnect"] = time.monotonic() - t0
        await counter.stop()
    finally:
        await client.close()

    first = counter.first_at - start if counter.first_at else float("nan")
    print(
        f"\nSDK 0.0.40 vs emulator: sent {sent_at_stop} frames, received {received} "
        f"({100 * received / max(1, sent_at_stop):.1f} %), first frame after {first:.2f} s, "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items())
        + f", ticks {ticks}"
    )
    assert not errors, errors
    assert counter.sizes == {(1088, 624)}
    assert read_stamp(counter.last.to_ndarray(format="bgr24")) == track.marker  # the marker is preserved
    assert received >= 0.9 * sent_at_stop
    assert ticks and ticks == sorted(ticks)
    assert states[-1] == "disconnected"
    deadline = time.monotonic() + T
    # The emulator runs in another thread: poll its event log for the close record.
    while not any(e["event"] == "close" for e in emulator.events) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    events = emulator.events
    closes = [e for e in events if e["event"] == "close"]
    print(f"emulator side: {closes}")
    sent_types = [e["type"] for e in events if e["event"] == "sent"]
    assert sent_types.count("prompt_ack") == 2 and sent_types.count("set_image_ack") == 1
    final = [e for e in events if e["event"] == "state"][-1]
    assert final["prompt"] == "pencil sketch" and final["image"] == "90x120"
    assert any(e["event"] == "close" for e in events)


async def _connect(base: str, key: str, model_name: str, track: MediaStreamTrack | None, **state: Any) -> Any:
    from decart import models
    from decart.realtime.client import RealtimeClient
    from decart.realtime.types import RealtimeConnectOptions
    from decart.types import ModelState, Prompt

    initial = ModelState(prompt=Prompt(text=state["prompt"], enhance=True)) if "prompt" in state else None
    return await RealtimeClient.connect(
        base_url=base,
        api_key=key,
        local_track=track,
        options=RealtimeConnectOptions(
            model=models.realtime(model_name),  # type: ignore[arg-type]
            on_remote_stream=state.get("on_remote_stream", lambda _t: None),
            initial_state=initial,
        ),
    )


@pytest.mark.slow
async def test_official_sdk_survives_capacity_reject_garbage_and_slow_acks(make_emulator: Any) -> None:
    """SDK 0.0.40 retries a 1013 capacity reject, ignores interleaved garbage frames and waits for slow acks."""
    emu = make_emulator(reject_first=1, garbage=True, ack_delay_ms=150)
    counter = RemoteCounter()
    track = PatternTrack(1088, 624)
    realtime = await asyncio.wait_for(
        _connect(emu.ws_url, KEY, "lucy-2.1", track, prompt="neon city", on_remote_stream=counter.on_remote_stream),
        6 * T,
    )
    try:
        await realtime.set_prompt("film noir")
        deadline = time.monotonic() + 3 * T
        while counter.frames < 10 and time.monotonic() < deadline:  # noqa: ASYNC110 - counter fills in a task
            await asyncio.sleep(0.05)
    finally:
        await realtime.disconnect()
        await counter.stop()
    assert counter.frames >= 10
    assert emu.connections == 2
    assert any(e["event"] == "fault" and e["fault"] == "reject_first" for e in emu.events)


@pytest.mark.parametrize("case", ["expired", "model"])
async def test_official_sdk_gives_up_at_once_on_token_errors(emulator: EmulatorThread, case: str) -> None:
    """An expired token or a model outside allowedModels is permanent for SDK 0.0.40: one attempt, no retry."""
    from decart.errors import WebRTCError

    if case == "expired":
        key = emulator.issue_token(expires_in=1)["apiKey"]
        await asyncio.sleep(1.05)
    else:
        key = emulator.issue_token(allowed_models=["lucy-vton-3"])["apiKey"]
    with pytest.raises(WebRTCError) as info:
        await asyncio.wait_for(_connect(emulator.ws_url, key, "lucy-2.1", PatternTrack(64, 32)), 3 * T)
    text = str(info.value).lower()
    assert ("invalid api key" in text) if case == "expired" else ("not allowed" in text)
    assert emulator.connections == 1


@pytest.mark.slow
async def test_official_sdk_reconnects_after_a_drop(make_emulator: Any) -> None:
    """--drop-after: the SDK sees the socket die and reconnects on its own, re-sending passthrough (§4.3).

    No frames are expected after the reconnect: aiortc 1.16 ends a local track when its peer
    connection closes, and SDK 0.0.40 re-adds that ended track to the new peer connection.
    """
    emu = make_emulator(drop_after=0.8)
    counter = RemoteCounter()
    states: list[str] = []
    realtime = await asyncio.wait_for(
        _connect(
            emu.ws_url,
            KEY,
            "lucy-2.1",
            PatternTrack(1088, 624),
            prompt="anime",
            on_remote_stream=counter.on_remote_stream,
        ),
        6 * T,
    )
    realtime.on("connection_change", states.append)
    try:
        deadline = time.monotonic() + 4 * T
        while emu.connections < 2 or "reconnecting" not in states or states[-1] not in ("connected", "generating"):
            assert time.monotonic() < deadline, f"no reconnect: states {states}, connections {emu.connections}"
            await asyncio.sleep(0.05)  # noqa: ASYNC110 - the emulator thread and SDK callbacks fill these
    finally:
        await realtime.disconnect()
        await counter.stop()
    events = emu.events
    assert [e["conn"] for e in events if e["event"] == "fault" and e["fault"] == "drop"] == [1]
    assert [e["code"] for e in events if e["event"] == "close" and e["conn"] == 1] == [1006]
    second = [e for e in events if e["event"] == "state" and e["conn"] == 2]
    assert second and second[0]["passthrough"] is True  # the SDK forgets the prompt on reconnect


@pytest.mark.slow
async def test_official_sdk_viewer_watches_a_running_session(emulator: EmulatorThread) -> None:
    """SDK 0.0.40 subscribe(): a viewer with the producer's subscribe token receives its output frames."""
    from decart.realtime.client import RealtimeClient
    from decart.realtime.subscribe import SubscribeOptions

    producer = await asyncio.wait_for(
        _connect(emulator.ws_url, KEY, "lucy-2.1", PatternTrack(1088, 624), prompt="thermal"), 6 * T
    )
    watched = RemoteCounter()
    try:
        assert producer.subscribe_token
        viewer = await asyncio.wait_for(
            RealtimeClient.subscribe(
                base_url=emulator.ws_url,
                api_key=KEY,
                options=SubscribeOptions(token=producer.subscribe_token, on_remote_stream=watched.on_remote_stream),
            ),
            6 * T,
        )
        try:
            deadline = time.monotonic() + 3 * T
            while watched.frames < 10 and time.monotonic() < deadline:  # noqa: ASYNC110 - filled by a task
                await asyncio.sleep(0.05)
        finally:
            await viewer.disconnect()
    finally:
        await producer.disconnect()
        await watched.stop()
    assert watched.frames >= 10
    assert watched.sizes == {(1088, 624)}
    assert read_stamp(watched.last.to_ndarray(format="bgr24")) == PatternTrack(1088, 624).marker
