"""RealtimeSession against the loopback emulator: handshake order, updates, errors, teardown."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import traceback
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from decart_cli.config import Secret, Timeouts
from decart_cli.core import catalog
from decart_cli.core import events as ev
from decart_cli.core.session import ConnectionState, DesiredState
from decart_cli.emulator.server import EmulatorThread
from decart_cli.errors import AckTimeout, AuthError, ConnectionFailed, InvalidState, ServerError, UsageError
from decart_cli.realtime import RealtimeSession, SessionConfig
from decart_cli.realtime.transport import TrackInput
from decart_cli.transport.rtc import PeerConnection
from decart_cli.transport.signaling import build_url, is_loopback

KEY = "test-key-123456"
FAST = Timeouts(
    ws_open=5,
    initial_prompt_ack=5,
    initial_image_ack=5,
    prompt_ack=5,
    set_ack=5,
    connect=20,
    disconnect=2,
    media_stall=5,
)


def png(color: int = 0) -> bytes:
    ok, data = cv2.imencode(".png", np.full((32, 32, 3), color, np.uint8))
    assert ok
    return data.tobytes()


class Recorder:
    """Collects events and frames."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.frames: list[tuple[float, int, int]] = []

    def on_event(self, event: ev.Event) -> None:
        self.events.append(event)

    def on_frame(self, frame: Any) -> None:
        self.frames.append((time.monotonic(), frame.width, frame.height))

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def session(
    emu: EmulatorThread, rec: Recorder, *, key: str = KEY, model: str = "lucy-2.1", **fields: Any
) -> RealtimeSession:
    fields.setdefault("timeouts", FAST)
    fields.setdefault("transport", "webrtc")
    config = SessionConfig(emu.ws_url, Secret(key), catalog.resolve(model), **fields)
    return RealtimeSession(config, TrackInput(VideoStreamTrack()), on_event=rec.on_event, on_frame=rec.on_frame)


def messages(emu: EmulatorThread, conn: int = 1) -> list[dict[str, Any]]:
    """The client messages the emulator received on connection ``conn``, in order."""
    return [e for e in emu.events if e.get("event") == "message" and e.get("conn") == conn]


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``predicate`` (state lives in the emulator's thread, so there is no event to await)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


# --- URL and transports -----------------------------------------------------------------------------


def test_url_exactly_as_python_sdk() -> None:
    """api_key, model, resolution, user_agent last; quote() encoding; http(s) → ws(s)."""
    url = build_url(
        "https://api3.decart.ai/",
        Secret("ek_a b/c"),
        "lucy-2.1",
        resolution="720p",
        user_agent="decart-cli/0.1.0 lang/py",
    )
    assert url == (
        "wss://api3.decart.ai/v1/stream?api_key=ek_a%20b/c&model=lucy-2.1&resolution=720p"
        "&user_agent=decart-cli/0.1.0%20lang/py"
    )
    assert build_url("http://127.0.0.1:1", Secret("kkkk"), "m").startswith(
        "ws://127.0.0.1:1/v1/stream?api_key=kkkk&model=m&user_agent=decart-cli/"
    )
    assert build_url("ws://h", Secret("kkkk"), "m").startswith("ws://h/v1/stream?")


def test_is_loopback() -> None:
    """Loopback detection decides whether STUN servers are used."""
    assert is_loopback("ws://127.0.0.1:8787") and is_loopback("ws://localhost:1") and is_loopback("ws://[::1]:2")
    assert not is_loopback("wss://api3.decart.ai") and not is_loopback("ws://192.0.2.2:1")


async def test_h264_offer_is_accepted_and_chosen_by_aiortc() -> None:
    """--codec h264: the munged offer is valid SDP and an aiortc answerer picks H.264."""
    pc = PeerConnection(ice_servers=(), codec="h264")
    answerer = RTCPeerConnection()
    try:
        offer = await pc.create_offer(VideoStreamTrack())
        assert "x-google-min-bitrate=300" in offer
        await answerer.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        answerer.addTrack(VideoStreamTrack())
        await answerer.setLocalDescription(await answerer.createAnswer())
        answer = answerer.localDescription.sdp
        first_pt = next(line for line in answer.splitlines() if line.startswith("m=video")).split()[3]
        assert f"a=rtpmap:{first_pt} H264/90000" in answer
        await pc.apply_answer(answer)
        await pc.add_candidate({"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0})  # end-of-candidates: ignored
        await pc.add_candidate({"candidate": "candidate:bogus", "sdpMid": "0", "sdpMLineIndex": 0})  # logged only
    finally:
        await pc.aclose()
        await pc.aclose()
        await answerer.close()


async def test_stun_gathering_time_measured() -> None:
    """Gathering with the SDK's unreachable Google STUN server does not hang (time printed)."""
    for servers in ((), ("stun:stun.l.google.com:19302",)):
        pc = PeerConnection(ice_servers=servers)
        start = time.perf_counter()
        sdp = await pc.create_offer(VideoStreamTrack())
        print(f"\nICE gathering with {servers or 'no ICE servers'}: {time.perf_counter() - start:.3f} s")
        await pc.aclose()
        assert "typ host" in sdp, "the offer carries this machine's host candidates (aiortc does not trickle)"


# --- handshake ------------------------------------------------------------------------------------------


async def test_initial_prompt_acked_before_offer(emulator: EmulatorThread) -> None:
    """Prompt-only start: prompt → prompt_ack → offer; connected with a session id."""
    rec = Recorder()
    s = session(emulator, rec, initial=DesiredState(prompt="Lego World", enhance=False))
    await s.connect()
    try:
        assert s.state in (ConnectionState.CONNECTED, ConnectionState.GENERATING)
        assert s.session_id and rec.of(ev.SessionStarted) == [ev.SessionStarted(s.session_id)]
        sent = messages(emulator)
        assert [m["type"] for m in sent[:2]] == ["prompt", "offer"]
        assert sent[0]["data"] == {"prompt": "Lego World", "enhance_prompt": False}
        kinds = [(e["event"], e.get("type")) for e in emulator.events if e.get("conn") == 1]
        assert kinds.index(("sent", "prompt_ack")) < kinds.index(("message", "offer"))
        assert rec.of(ev.StateChanged)[0] == ev.StateChanged(ConnectionState.DISCONNECTED, ConnectionState.CONNECTING)
    finally:
        await s.disconnect()


async def test_passthrough_start(emulator: EmulatorThread) -> None:
    """No prompt and no image: set_image with image_data and prompt null."""
    s = session(emulator, Recorder())
    await s.connect()
    await s.disconnect()
    assert messages(emulator)[0]["data"] == {"image_data": None, "prompt": None}


async def test_initial_image_with_prompt(emulator: EmulatorThread) -> None:
    """Image start: one set_image carrying image, prompt and enhance_prompt."""
    s = session(emulator, Recorder(), initial=DesiredState(prompt="cat", image=png()))
    await s.connect()
    await s.disconnect()
    first = messages(emulator)[0]
    assert first["type"] == "set_image" and first["data"]["prompt"] == "cat"
    assert first["data"]["image_data"] and first["data"]["enhance_prompt"] is True


@pytest.mark.slow
async def test_first_remote_frame_at_model_size(emulator: EmulatorThread) -> None:
    """Remote frames arrive at the model's size; connect→first frame and fps are printed."""
    rec = Recorder()
    s = session(emulator, rec)
    start = time.monotonic()
    await s.connect()
    connected = time.monotonic() - start
    try:
        await until(lambda: len(rec.frames) >= 1)
        first = rec.frames[0][0] - start
        await asyncio.sleep(0.5)
        n0 = len(rec.frames)
        await asyncio.sleep(1.0)
        fps = (len(rec.frames) - n0) / 1.0
        assert {(w, h) for _, w, h in rec.frames} == {(1088, 624)}
        stats = s.stats()
        assert stats.frames_received == len(rec.frames) and stats.frames_sent > 0
        assert rec.of(ev.StatsUpdated) and rec.of(ev.Tick) and rec.of(ev.GenerationStarted)
        print(
            f"\nlucy-2.1 vs emulator: connect {connected:.3f} s, first remote frame {first:.3f} s, "
            f"received {fps:.1f} fps, stats {stats}"
        )
    finally:
        await s.disconnect()


# --- updates -----------------------------------------------------------------------------------------------


async def test_set_prompt_and_set_with_image(emulator: EmulatorThread) -> None:
    """set_prompt sends prompt; set(prompt, image) one set_image; acks resolve both; desired follows."""
    rec = Recorder()
    s = session(emulator, rec, initial=DesiredState(prompt="a"))
    await s.connect()
    try:
        await s.set_prompt("b", enhance=False)
        await s.set(prompt="c", image=png(200))
        await s.set(prompt="d")  # clears the image (documented)
        sent = messages(emulator)[2:]
        assert [m["type"] for m in sent] == ["prompt", "set_image", "set_image"]
        assert sent[0]["data"] == {"prompt": "b", "enhance_prompt": False}
        assert sent[1]["data"]["prompt"] == "c" and sent[1]["data"]["image_data"]
        assert sent[2]["data"] == {"image_data": None, "prompt": "d", "enhance_prompt": True}
        assert s.desired == DesiredState(prompt="d")
        assert [a.kind for a in rec.of(ev.Ack)] == ["prompt", "prompt", "set_image", "set_image"]
        with pytest.raises(UsageError):
            await s.set()
    finally:
        await s.disconnect()


async def test_concurrent_sets_are_serialised(make_emulator: Callable[..., EmulatorThread]) -> None:
    """Several set() calls at once each get their own ack (one in flight at a time)."""
    emu = make_emulator(ack_delay_ms=50)
    s = session(emu, Recorder(), initial=DesiredState(prompt="a"))
    await s.connect()
    try:
        await asyncio.gather(*(s.set(prompt=f"p{i}") for i in range(4)), s.set_prompt("x"), s.set_prompt("x"))
        assert s.desired.prompt in {"p3", "x"}
    finally:
        await s.disconnect()


async def test_rejected_image_raises_server_error(emulator: EmulatorThread) -> None:
    """An ack with success false raises ServerError with the server's text; the session goes on."""
    s = session(emulator, Recorder(), initial=DesiredState(prompt="a"))
    await s.connect()
    try:
        with pytest.raises(ServerError, match="invalid_image"):
            await s.set(image=b"not an image")
        await s.set_prompt("still fine")
    finally:
        await s.disconnect()


# --- failures ---------------------------------------------------------------------------------------------------


async def test_no_ack_times_out(make_emulator: Callable[..., EmulatorThread]) -> None:
    """No prompt_ack within the deadline → AckTimeout naming it; state disconnected."""
    emu = make_emulator(no_ack=True)
    rec = Recorder()
    s = session(emu, rec, initial=DesiredState(prompt="x"), timeouts=dataclasses.replace(FAST, initial_prompt_ack=0.3))
    with pytest.raises(AckTimeout, match="initial prompt acknowledgement did not arrive within 0.3 s"):
        await s.connect()
    assert s.state is ConnectionState.DISCONNECTED and emu.connections == 1
    assert rec.of(ev.ErrorEvent)[-1].source == "timeout"


async def test_server_error_fails_pending_wait_at_once(make_emulator: Callable[..., EmulatorThread]) -> None:
    """A server error during a pending set_prompt fails it immediately with the server's text."""
    emu = make_emulator(error_after=(1.0, "insufficient_credits"), ack_delay_ms=5000)
    rec = Recorder()
    s = session(emu, rec, timeouts=dataclasses.replace(FAST, initial_image_ack=10, prompt_ack=30))
    emu_started = time.monotonic()
    with pytest.raises(ServerError, match="insufficient_credits"):
        await s.connect()  # the initial ack is delayed 5 s; the error at 1 s ends the wait
    assert time.monotonic() - emu_started < 4
    errors = rec.of(ev.ErrorEvent)  # reported once, in words, with the next step
    assert [(e.message, e.permanent, e.source) for e in errors] == [
        ("the account is out of credits (server: insufficient_credits)", True, "server")
    ]
    assert errors[0].hint and "credits" in errors[0].hint


async def test_server_error_after_connect_ends_session(make_emulator: Callable[..., EmulatorThread]) -> None:
    """A permanent server error while streaming: no reconnect, wait_closed raises it."""
    emu = make_emulator(error_after=(1.0, "insufficient_credits"))
    rec = Recorder()
    s = session(emu, rec)
    await s.connect()
    with pytest.raises(ServerError, match="insufficient_credits"):
        async with asyncio.timeout(10):
            await s.wait_closed()
    assert s.state is ConnectionState.DISCONNECTED and emu.connections == 1
    with pytest.raises(InvalidState):
        await s.set_prompt("late")


async def test_garbage_is_tolerated(make_emulator: Callable[..., EmulatorThread]) -> None:
    """Malformed, unknown and binary frames between real ones change nothing."""
    emu = make_emulator(garbage=True)
    rec = Recorder()
    s = session(emu, rec, initial=DesiredState(prompt="a"))
    await s.connect()
    try:
        await s.set_prompt("b")
        await s.set(prompt="c", image=png())
        assert [(a.kind, a.prompt, a.success) for a in rec.of(ev.Ack)][-2:] == [
            ("prompt", "b", True),
            ("set_image", None, True),
        ]
        assert s.state in (ConnectionState.CONNECTED, ConnectionState.GENERATING)
        assert rec.of(ev.ErrorEvent) == [] and rec.of(ev.Reconnecting) == []
    finally:
        await s.disconnect()


async def test_invalid_key_is_auth_error_once(make_emulator: Callable[..., EmulatorThread]) -> None:
    """A rejected key raises AuthError after exactly one connection; the key is in no error text."""
    emu = make_emulator(api_key="right-key-000")
    s = session(emu, Recorder(), key="wrong-key-9f8e7d")
    with pytest.raises(AuthError, match="Invalid API key") as info:
        await s.connect()
    assert emu.connections == 1
    text = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert "wrong-key-9f8e7d" not in text


async def test_refused_port_names_host_without_key() -> None:
    """Nothing listening: ConnectionFailed naming the host; the key appears nowhere in the chain."""
    config = SessionConfig(
        "ws://127.0.0.1:9", Secret("sk-secret-abcdef"), catalog.resolve("lucy-2.1"), timeouts=FAST, transport="webrtc"
    )
    s = RealtimeSession(config, TrackInput(VideoStreamTrack()))
    with pytest.raises(ConnectionFailed, match="127.0.0.1:9") as info:
        await s.connect()
    text = "".join(traceback.format_exception(info.value)) + repr(info.value) + repr(info.value.__cause__)
    assert "sk-secret-abcdef" not in text
    with pytest.raises(ConnectionFailed):
        await s.wait_closed()


async def test_disconnect_is_idempotent_and_clean(emulator: EmulatorThread) -> None:
    """disconnect() twice: disconnected once, the server sees close code 1000, wait_closed returns."""
    rec = Recorder()
    s = session(emulator, rec)
    await s.connect()
    with pytest.raises(InvalidState):
        await s.connect()
    await s.disconnect()
    await s.disconnect()
    await s.wait_closed()
    assert s.state is ConnectionState.DISCONNECTED
    assert [e.new for e in rec.of(ev.StateChanged)].count(ConnectionState.DISCONNECTED) == 1
    await until(lambda: any(e.get("event") == "close" for e in emulator.events))
    assert [e["code"] for e in emulator.events if e.get("event") == "close"] == [1000]
    with pytest.raises(InvalidState):
        await s.set_prompt("x")


async def test_multi_megabyte_reference_image(emulator: EmulatorThread) -> None:
    """A reference image of several MB goes through (frames far above websockets' 1 MiB default)."""
    noise = np.random.default_rng(1).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".png", noise)
    assert ok and len(data) > 3 * 2**20
    s = session(emulator, Recorder(), initial=DesiredState(prompt="a"))
    await s.connect()
    try:
        await s.set(prompt="b", image=data.tobytes())
    finally:
        await s.disconnect()


def test_websockets_errors_translated_without_key() -> None:
    """InvalidURI / InvalidStatus / ConnectionClosed become DecartErrors; the key is scrubbed everywhere."""
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosedError, InvalidStatus, InvalidURI
    from websockets.frames import Close
    from websockets.http11 import Response

    from decart_cli.transport.signaling import ChannelClosed, translate_errors

    key = Secret("sk-very-secret-42")
    url = build_url("wss://api3.decart.ai", key, "lucy-2.1")
    cases: list[tuple[BaseException, type[BaseException], str]] = [
        (InvalidURI(url, "bad"), ConnectionFailed, "invalid realtime URL"),
        (InvalidStatus(Response(401, "Unauthorized", Headers())), AuthError, "HTTP 401"),
        (InvalidStatus(Response(502, "Bad Gateway", Headers())), ConnectionFailed, "HTTP 502"),
        (ConnectionClosedError(Close(1013, "Concurrent session limit reached."), None), ChannelClosed, "1013"),
        (ConnectionClosedError(None, None), ChannelClosed, "no close frame"),
        (TimeoutError(), ConnectionFailed, "timed out"),
    ]
    for raised, expected, text in cases:
        with pytest.raises(expected, match=text) as info:
            with translate_errors(url, 5):
                raise raised
        dump = "".join(traceback.format_exception(info.value)) + repr(info.value.__cause__)
        assert "sk-very-secret-42" not in dump
    closed = ConnectionClosedError(Close(1013, "Concurrent session limit reached."), None)
    with pytest.raises(ChannelClosed) as info2:
        with translate_errors(url):
            raise closed
    assert info2.value.code == 1013 and "Concurrent" in info2.value.reason


@pytest.mark.parametrize(
    ("client_token", "subject", "hint_start"),
    [(False, "API key", "check DECART_API_KEY"), (True, "client token", "mint a new one with 'decart token'")],
)
def test_upgrade_refusal_is_worded_for_the_credential(client_token: bool, subject: str, hint_start: str) -> None:
    """HTTP 401 at the upgrade names what was sent (API key or client token) with that credential's next step."""
    from websockets.datastructures import Headers
    from websockets.exceptions import InvalidStatus
    from websockets.http11 import Response

    from decart_cli.transport.signaling import translate_errors

    with pytest.raises(AuthError) as info:
        with translate_errors("wss://api3.decart.ai/v1/stream", 5, client_token=client_token):
            raise InvalidStatus(Response(401, "Unauthorized", Headers()))
    assert info.value.message == f"the realtime server at api3.decart.ai refused the {subject} (HTTP 401 unauthorized)"
    assert info.value.hint is not None and info.value.hint.startswith(hint_start)


async def test_send_on_closed_socket_fails_at_once(emulator: EmulatorThread) -> None:
    """A send after the socket closed raises ChannelClosed immediately, not after an ack timeout."""
    from decart_cli.transport.signaling import ChannelClosed, SignalingChannel

    channel = await SignalingChannel.open(build_url(emulator.ws_url, Secret(KEY), "lucy-2.1"), deadline=5)
    await channel.aclose()
    await channel.aclose()  # idempotent
    start = time.monotonic()
    with pytest.raises(ChannelClosed, match="closed"):
        await channel.send('{"type":"prompt","prompt":"x","enhance_prompt":true}')
    assert time.monotonic() - start < 0.5 and channel.closed


async def test_disconnect_during_connect_is_clean(make_emulator: Callable[..., EmulatorThread]) -> None:
    """disconnect() while connect() waits for its ack: connect fails, wait_closed returns, fast."""
    emu = make_emulator(ack_delay_ms=3000)
    s = session(emu, Recorder(), initial=DesiredState(prompt="slow"))
    task = asyncio.create_task(s.connect())
    await until(lambda: emu.connections == 1)
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await s.disconnect()
    with pytest.raises(ConnectionFailed):
        await task
    await s.wait_closed()
    assert s.state is ConnectionState.DISCONNECTED and time.monotonic() - start < 2.0


def test_realtime_public_names_are_pinned() -> None:
    """The realtime package and its modules export exactly these names."""
    import decart_cli.realtime as rt
    import decart_cli.realtime.config as rc
    import decart_cli.realtime.direct as rd
    import decart_cli.realtime.failures as rf
    import decart_cli.realtime.link as rl
    import decart_cli.realtime.livekit as rk
    import decart_cli.realtime.session as rs
    import decart_cli.realtime.transport as tr

    expected = {
        rt: {"RealtimeSession", "SessionConfig"},
        rc: {"DEFAULT_CODECS", "SessionConfig"},
        rd: {"DirectTransport", "preload"},
        rf: {"ended_error", "is_capacity_failure", "is_permanent_failure", "server_exception", "source_of"},
        rl: {"FIRST_FRAME_ALLOWANCE", "AckWaits", "AttemptControl", "Link", "pause"},
        rk: {"INFERENCE_PREFIX", "MAX_BITRATE", "LiveKitTransport", "native_started", "preload", "quiet_sdk_logs"},
        rs: {"RealtimeSession"},
        tr: {
            "TRANSPORTS",
            "Control",
            "MediaStats",
            "MediaTransport",
            "TrackInput",
            "TransportOptions",
            "VideoInput",
            "create",
            "preload",
        },
    }
    for module, names in expected.items():
        assert set(module.__all__) == names, module.__name__
        assert all(hasattr(module, name) for name in names), module.__name__
