"""Staying alive: reconnects against the emulator's scripted drops, refusals and stalls."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import VideoStreamTrack
from fixtures_emulator import expire_tokens
from test_realtime import FAST, KEY, Recorder, messages, png, until

from decart_cli.config import Secret
from decart_cli.core import catalog
from decart_cli.core import events as ev
from decart_cli.core.session import ConnectionState, DesiredState
from decart_cli.emulator.server import EmulatorThread
from decart_cli.errors import AckTimeout, AuthError, ConnectionFailed
from decart_cli.realtime import RealtimeSession, SessionConfig
from decart_cli.realtime.direct import DirectTransport
from decart_cli.realtime.transport import TrackInput

S = ConnectionState
Factory = Callable[..., EmulatorThread]


class Sleeper:
    """Injected backoff sleep: records each delay, yields once, and can run a hook per call."""

    def __init__(self, hook: Callable[[int], Any] | None = None) -> None:
        self.delays: list[float] = []
        self.hook = hook

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.hook is not None:
            result = self.hook(len(self.delays))
            if asyncio.iscoroutine(result):
                await result
        await asyncio.sleep(0)


class PausableTrack(VideoStreamTrack):
    """A synthetic camera that can stop producing frames (to starve the server's output)."""

    def __init__(self) -> None:
        super().__init__()
        self.running = asyncio.Event()
        self.running.set()

    async def recv(self) -> Any:
        await self.running.wait()
        return await super().recv()


def make(
    emu: EmulatorThread, rec: Recorder, *, sleeper: Sleeper, key: str = KEY, track: Any = None, **fields: Any
) -> RealtimeSession:
    fields.setdefault("timeouts", FAST)
    fields.setdefault("transport", "webrtc")
    config = SessionConfig(emu.ws_url, Secret(key), catalog.resolve(fields.pop("model", "lucy-2.1")), **fields)
    return RealtimeSession(
        config,
        TrackInput(track or VideoStreamTrack()),
        on_event=rec.on_event,
        on_frame=rec.on_frame,
        sleep=sleeper,
        rng=lambda: 0.5,
    )


def first_message(emu: EmulatorThread, conn: int) -> dict[str, Any]:
    return messages(emu, conn)[0]


async def test_drop_reconnects_with_latest_prompt(make_emulator: Factory) -> None:
    """After a drop the new connection's initial state is the LATEST prompt, not the first one."""
    emu = make_emulator(drop_after=1.0, tick_interval=0.2)
    rec, sleeper = Recorder(), Sleeper()
    s = make(emu, rec, sleeper=sleeper, initial=DesiredState(prompt="first"))
    await s.connect()
    try:
        await s.set_prompt("latest", enhance=False)
        await until(lambda: bool(rec.of(ev.Reconnected)), 15)
        assert first_message(emu, 2) == {
            "event": "message",
            "conn": 2,
            "type": "prompt",
            "data": {"prompt": "latest", "enhance_prompt": False},
        }
        states = [e.new for e in rec.of(ev.StateChanged)]
        assert states[states.index(S.RECONNECTING) + 1] is S.CONNECTED
        assert rec.of(ev.Reconnecting)[0].attempt == 1 and sleeper.delays == [1.0]
        before = max(t.total_seconds for t in rec.of(ev.Tick))
        await until(lambda: rec.of(ev.Tick)[-1].total_seconds > before, 10)
        last = rec.of(ev.Tick)[-1]
        assert last.total_seconds > last.seconds  # the running total spans both server sessions
        await s.set_prompt("after")  # the session works normally again
    finally:
        await s.disconnect()


async def test_drop_twice(make_emulator: Factory) -> None:
    """Two drops in a row: two reconnects, a third connection streams."""
    emu = make_emulator(drop_after=0.5, drop_connections=2)
    rec = Recorder()
    s = make(emu, rec, sleeper=Sleeper(), initial=DesiredState(prompt="p"))
    await s.connect()
    try:
        await until(lambda: len(rec.of(ev.Reconnected)) == 2, 20)
        assert emu.connections == 3 and s.state in (S.CONNECTED, S.GENERATING)
        assert first_message(emu, 3)["data"]["prompt"] == "p"
    finally:
        await s.disconnect()


async def test_gives_up_after_five_retries_with_backoff(make_emulator: Factory) -> None:
    """Server gone: five attempts after 1, 2, 4, 8, 10 s, then disconnected + ErrorEvent; wait_closed raises."""
    emu = make_emulator(drop_after=0.5)

    async def stop_server(n: int) -> None:
        if n == 1:  # let the emulator finish closing the dropped session first
            await until(lambda: any(e.get("event") == "close" and e.get("conn") == 1 for e in emu.events), 5)
            await asyncio.to_thread(emu.stop)

    rec, sleeper = Recorder(), Sleeper(stop_server)
    s = make(emu, rec, sleeper=sleeper)
    await s.connect()
    with pytest.raises(ConnectionFailed, match="127.0.0.1"):
        async with asyncio.timeout(30):
            await s.wait_closed()
    assert sleeper.delays == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert [(r.attempt, r.max_attempts) for r in rec.of(ev.Reconnecting)] == [(i, 5) for i in range(1, 6)]
    assert s.state is S.DISCONNECTED
    error = rec.of(ev.ErrorEvent)[-1]
    assert error.source == "reconnect" and error.message.startswith("gave up reconnecting")
    assert rec.events[-1] == error and rec.of(ev.StateChanged)[-1].new is S.DISCONNECTED


async def test_no_reconnect_fails_fast(make_emulator: Factory) -> None:
    """reconnect=False: a drop ends the session at once with ConnectionFailed."""
    emu = make_emulator(drop_after=0.5)
    rec, sleeper = Recorder(), Sleeper()
    s = make(emu, rec, sleeper=sleeper, reconnect=False)
    await s.connect()
    with pytest.raises(ConnectionFailed):
        async with asyncio.timeout(10):
            await s.wait_closed()
    assert emu.connections == 1 and sleeper.delays == [] and not rec.of(ev.Reconnecting)


async def test_invalid_key_single_attempt(make_emulator: Factory) -> None:
    """A rejected key is permanent: exactly one connection, no backoff."""
    emu = make_emulator(api_key="the-right-key-1")
    sleeper = Sleeper()
    s = make(emu, Recorder(), sleeper=sleeper, key="not-the-key-2")
    with pytest.raises(AuthError):
        await s.connect()
    assert emu.connections == 1 and sleeper.delays == []


async def test_expired_client_token_on_reconnect(make_emulator: Factory) -> None:
    """An ek_ token that expired before the reconnect: one attempt, message says mint one with 'decart token'."""
    emu = make_emulator(drop_after=1.5)
    token = emu.issue_token(expires_in=1)["apiKey"]
    assert token.startswith("ek_")
    rec = Recorder()
    s = make(emu, rec, sleeper=Sleeper(), key=token)
    await s.connect()
    with pytest.raises(AuthError, match="expired") as info:
        async with asyncio.timeout(15):
            await s.wait_closed()
    assert "decart token" in (info.value.hint or "") and emu.connections == 2
    assert token not in str(info.value)


async def test_capacity_refusal_is_retried(make_emulator: Factory) -> None:
    """'Server at capacity' (close 1013) on connect is retried with backoff, then succeeds."""
    emu = make_emulator(reject_first=2)
    rec, sleeper = Recorder(), Sleeper()
    s = make(emu, rec, sleeper=sleeper, initial=DesiredState(prompt="p"))
    await s.connect()
    try:
        assert emu.connections == 3 and sleeper.delays == [1.0, 2.0]
        assert all(not e.permanent for e in rec.of(ev.ErrorEvent))
        assert "capacity" in rec.of(ev.ErrorEvent)[0].message
    finally:
        await s.disconnect()


async def test_no_ack_is_ack_timeout_not_retried(make_emulator: Factory) -> None:
    """A server that never acks: AckTimeout after the initial deadline, one connection."""
    emu = make_emulator(no_ack=True)
    sleeper = Sleeper()
    s = make(emu, Recorder(), sleeper=sleeper, timeouts=dataclasses.replace(FAST, initial_image_ack=0.3))
    with pytest.raises(AckTimeout):
        await s.connect()
    assert emu.connections == 1 and sleeper.delays == []


async def test_garbage_does_not_disturb_reconnect(make_emulator: Factory) -> None:
    """Garbage frames on every connection: drop, reconnect, updates still acked."""
    emu = make_emulator(garbage=True, drop_after=0.5)
    rec = Recorder()
    s = make(emu, rec, sleeper=Sleeper(), initial=DesiredState(prompt="p"))
    await s.connect()
    try:
        await until(lambda: bool(rec.of(ev.Reconnected)), 15)
        await s.set(prompt="q", image=png())
        assert [(a.kind, a.prompt, a.success) for a in rec.of(ev.Ack)][-1] == ("set_image", None, True)
        assert rec.of(ev.ErrorEvent) == [] and len(rec.of(ev.Reconnected)) == 1
    finally:
        await s.disconnect()


async def test_update_while_reconnecting_applied_by_reconnect(make_emulator: Factory) -> None:
    """set()/set_prompt() during the outage return at once and the reconnect sends them."""
    emu = make_emulator(drop_after=0.5)
    rec = Recorder()
    holder: list[RealtimeSession] = []
    image = png(90)

    async def type_prompt(n: int) -> None:
        s = holder[0]
        assert s.state is S.RECONNECTING
        await s.set_prompt("typed while down")
        await s.set(prompt="with image", image=image, enhance=False)

    s = make(emu, rec, sleeper=Sleeper(type_prompt), initial=DesiredState(prompt="before"))
    holder.append(s)
    await s.connect()
    try:
        await until(lambda: bool(rec.of(ev.Reconnected)), 15)
        first = first_message(emu, 2)
        assert first["type"] == "set_image" and first["data"]["prompt"] == "with image"
        assert first["data"]["enhance_prompt"] is False and first["data"]["image_data"]
        assert s.desired == DesiredState(prompt="with image", enhance=False, image=image)
    finally:
        await s.disconnect()


async def test_media_stall_triggers_reconnect(make_emulator: Factory) -> None:
    """No remote frame for media_stall seconds (signaling still up) → reconnect."""
    emu = make_emulator()
    track = PausableTrack()
    rec = Recorder()
    s = make(
        emu,
        rec,
        sleeper=Sleeper(lambda n: track.running.set()),
        track=track,
        timeouts=dataclasses.replace(FAST, media_stall=1.0),
    )
    await s.connect()
    try:
        await until(lambda: len(rec.frames) > 5)
        track.running.clear()
        await until(lambda: bool(rec.of(ev.Reconnected)), 15)
        assert "no video from the server" in rec.of(ev.Reconnecting)[0].reason
        assert emu.connections == 2
        n = len(rec.frames)
        await until(lambda: len(rec.frames) > n + 5)
    finally:
        await s.disconnect()


async def test_user_reconnect_switches_model_keeps_state(emulator: EmulatorThread) -> None:
    """reconnect(model=…) opens a new connection to the other model with the desired state."""
    rec = Recorder()
    s = make(emulator, rec, sleeper=Sleeper(), initial=DesiredState(prompt="a"))
    await s.connect()
    try:
        await s.set_prompt("b")
        await s.reconnect(model=catalog.resolve("lucy-2.5"))
        assert s.state in (S.CONNECTED, S.GENERATING)
        connects = [e for e in emulator.events if e.get("event") == "connect"]
        assert connects[-1]["model"] == "lucy-2.5"
        assert first_message(emulator, 2)["data"]["prompt"] == "b"
        await until(lambda: bool(rec.frames) and rec.frames[-1][1:] == (1280, 720))
    finally:
        await s.disconnect()


async def test_a_failed_switch_keeps_the_former_model_and_video(emulator: EmulatorThread) -> None:
    """reconnect(model=…, video=…) refused for good (a token for lucy-2.1 only) leaves the session on its former
    model and video: a plain reconnect() afterwards goes back to lucy-2.1 with the first track, not to the
    refused model with a video the caller has closed."""
    token = emulator.issue_token(allowed_models=["lucy-2.1"])["apiKey"]
    first, second = VideoStreamTrack(), VideoStreamTrack()
    rec = Recorder()
    s = make(emulator, rec, sleeper=Sleeper(), key=token, track=first, initial=DesiredState(prompt="a"))
    await s.connect()
    try:
        with pytest.raises(AuthError, match="does not allow model lucy-2.5") as info:
            await s.reconnect(model=catalog.resolve("lucy-2.5"), video=TrackInput(second))
        assert "expired" not in info.value.message  # the server named the reason: no guess added
        second.stop()  # what the runner does with the video of a failed switch
        await s.reconnect()
        assert s.state in (S.CONNECTED, S.GENERATING)
        connects = [e["model"] for e in emulator.events if e.get("event") == "connect"]
        assert connects == ["lucy-2.1", "lucy-2.5", "lucy-2.1"]
        n = len(rec.frames)
        await until(lambda: len(rec.frames) > n + 5)  # the first track still feeds the session
    finally:
        await s.disconnect()


def test_a_token_refused_on_reconnect_is_probably_expired_unless_the_server_says_why() -> None:
    """A client token refused with no reason during a reconnect is said to have probably expired; a named reason
    (a model it does not allow) is said as it is, and a first connect adds no guess."""
    from decart_cli.core.session import SessionCore
    from decart_cli.realtime.failures import server_exception

    core = SessionCore(client_token=True, model="lucy-2.1")
    guessed = server_exception(core, "Invalid API key", reconnecting=True)
    assert guessed.message.endswith("on reconnect: it has probably expired")
    named = server_exception(core, "Model lucy-2.1 not allowed for this token", reconnecting=True)
    assert "does not allow model lucy-2.1" in named.message and "expired" not in named.message
    assert "probably" not in server_exception(core, "Invalid API key", reconnecting=False).message


class SlowClosingTransport(DirectTransport):
    """The direct transport with a slow close that swallows its caller's cancellation, as aiortc's
    peer-connection close (and libwebrtc's room disconnect) can: the case that made a Ctrl-C during
    a reconnect wait out the whole first backoff."""

    async def aclose(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.3)
        await super().aclose()


async def test_disconnect_while_a_reconnect_is_set_up_is_immediate(
    make_emulator: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """disconnect() (Ctrl-C, SIGTERM) landing while a reconnect tears the old link down returns once the
    teardown is done, instead of also waiting out the backoff sleep (here a 5 s one)."""
    import decart_cli.realtime.session as driver

    monkeypatch.setattr(driver, "create", lambda kind, video, options: SlowClosingTransport(video, options))
    emu = make_emulator(drop_after=0.5)
    stopped: list[asyncio.Task[None]] = []
    started: list[float] = []
    holder: list[RealtimeSession] = []

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.StateChanged) and event.new is S.RECONNECTING and not started:
            started.append(time.monotonic())
            # 0.1 s in: the reconnect is inside the old link's slow close.
            asyncio.get_running_loop().call_later(
                0.1, lambda: stopped.append(asyncio.ensure_future(holder[0].disconnect()))
            )

    async def long_backoff(delay: float) -> None:
        await asyncio.sleep(5.0)

    # A generous disconnect deadline, so only the backoff (5 s) could make the stop slow, not the cap.
    timeouts = dataclasses.replace(FAST, disconnect=8)
    config = SessionConfig(emu.ws_url, Secret(KEY), catalog.resolve("lucy-2.1"), timeouts=timeouts, transport="webrtc")
    s = RealtimeSession(config, TrackInput(VideoStreamTrack()), on_event=on_event, sleep=long_backoff, rng=lambda: 0.5)
    holder.append(s)
    await s.connect()
    await until(lambda: bool(stopped), 15)
    await stopped[0]
    took = time.monotonic() - started[0]
    await s.wait_closed()
    assert s.state is S.DISCONNECTED and emu.connections == 1
    assert took < 3.0, f"disconnect took {took:.2f} s: it waited for the 5 s backoff"


class UpgradeGate:
    """A loopback TCP front for the emulator: the first ``refuse`` connections get HTTP 503 at the
    WebSocket upgrade (as a loaded gateway answers), later ones are piped to the emulator."""

    def __init__(self, target_port: int, refuse: int) -> None:
        self.target_port = target_port
        self.refuse = refuse
        self.seen = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> UpgradeGate:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.seen += 1
        if self.seen <= self.refuse:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_http_503_at_the_first_upgrade_is_retried(make_emulator: Factory) -> None:
    """HTTP 503 at the WebSocket upgrade of the FIRST connect is a capacity refusal: retried with the
    backoff (1 s, then 2 s), then the session connects."""
    emu = make_emulator()
    rec, sleeper = Recorder(), Sleeper()
    async with UpgradeGate(emu.port, refuse=2) as gate:
        config = SessionConfig(
            gate.url,
            Secret(KEY),
            catalog.resolve("lucy-2.1"),
            timeouts=FAST,
            transport="webrtc",
            initial=DesiredState(prompt="p"),
        )
        s = RealtimeSession(
            config, TrackInput(VideoStreamTrack()), on_event=rec.on_event, sleep=sleeper, rng=lambda: 0.5
        )
        await s.connect()
        try:
            assert gate.seen == 3 and emu.connections == 1 and sleeper.delays == [1.0, 2.0]
            assert all("HTTP 503" in r.reason for r in rec.of(ev.Reconnecting))
            assert s.state in (S.CONNECTED, S.GENERATING)
        finally:
            await s.disconnect()


async def test_expired_client_token_on_first_connect_names_the_token(make_emulator: Factory) -> None:
    """An expired client token at the first connect: AuthError that says it is the token and how to mint
    one ('decart token'), not "check the API key"; one connection, no retry."""
    emu = make_emulator()
    token = emu.issue_token(expires_in=1)["apiKey"]
    expire_tokens(emu)
    sleeper = Sleeper()
    s = make(emu, Recorder(), sleeper=sleeper, key=token)
    with pytest.raises(AuthError) as info:
        await s.connect()
    assert info.value.message.startswith("the client token has expired"), info.value.message
    assert "decart token" in (info.value.hint or "") and "DECART_API_KEY" not in (info.value.hint or "")
    assert emu.connections == 1 and sleeper.delays == [] and token not in str(info.value)


async def test_model_restricted_client_token_says_which_model(make_emulator: Factory) -> None:
    """A client token minted for lucy-2.5 used with lucy-2.1: the message names the model and the hint
    says how to mint a token for it."""
    emu = make_emulator()
    token = emu.issue_token(allowed_models=["lucy-2.5"])["apiKey"]
    s = make(emu, Recorder(), sleeper=Sleeper(), key=token)
    with pytest.raises(AuthError) as info:
        await s.connect()
    assert "does not allow model lucy-2.1" in info.value.message
    assert info.value.hint == "mint a token for it: decart token --model lucy-2.1"


async def test_session_limit_is_a_clean_end_never_a_reconnect(make_emulator: Factory) -> None:
    """generation_ended 'timeout' (the token's session limit) on the direct path: the session ends cleanly
    (wait_closed returns), no reconnect and one connection — a reconnect would defeat the limit."""
    emu = make_emulator(tick_interval=0.2)
    token = emu.issue_token(max_session_duration=2)["apiKey"]
    rec, sleeper = Recorder(), Sleeper()
    s = make(emu, rec, sleeper=sleeper, key=token, initial=DesiredState(prompt="p"))
    await s.connect()
    async with asyncio.timeout(15):
        await s.wait_closed()  # no error: a clean end
    assert [(e.reason, e.final) for e in rec.of(ev.GenerationEnded)] == [("timeout", True)]
    assert emu.connections == 1 and sleeper.delays == [] and not rec.of(ev.Reconnecting)
    assert rec.of(ev.ErrorEvent) == [] and s.state is S.DISCONNECTED
