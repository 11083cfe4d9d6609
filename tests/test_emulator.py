"""The emulator over real loopback: signaling with a raw WebSocket client, media with an aiortc peer."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import av
import cv2
import numpy as np
import pytest
import websockets
from emulator_client import Offerer, PatternTrack, T, open_ws, read_stamp, recv_json, recv_until
from serve_proc import ServeProcess

from decart_cli.core import messages as m
from decart_cli.emulator.faults import parse_error_after
from decart_cli.emulator.model import FrameModel, RenderState, look_for, planes
from decart_cli.emulator.server import Emulator, EmulatorConfig, EmulatorThread

MakeEmulator = Callable[..., EmulatorThread]


def png_b64(width: int = 64, height: int = 48) -> str:
    """A small valid PNG as bare base64, like the SDKs send."""
    img = np.full((height, width, 3), (0, 128, 255), np.uint8)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


async def closed_with(ws: Any) -> int | None:
    """Wait for the server to close ``ws``; return the close code."""
    try:
        await asyncio.wait_for(ws.wait_closed(), T)
    finally:
        await ws.close()
    return ws.close_code  # type: ignore[no-any-return]


# -- signaling -----------------------------------------------------------------------------------


async def test_session_id_is_sent_first(emulator: EmulatorThread) -> None:
    """The first frame is session_id with server_ip 127.0.0.1 and the integer port."""
    async with await open_ws(emulator.ws_url) as ws:
        msg = await recv_json(ws)
    assert msg["type"] == "session_id"
    assert msg["server_ip"] == "127.0.0.1" and msg["server_port"] == emulator.port
    assert isinstance(msg["session_id"], str) and msg["session_id"]
    m.decode_server(json.dumps(msg))  # our own client parser accepts it


async def test_initial_prompt_is_acked_before_any_offer(emulator: EmulatorThread) -> None:
    """A prompt gets a prompt_ack echoing the exact text (unicode, spaces) with success true, error null."""
    text = "  Lego World — ünïcode ✨  "
    async with await open_ws(emulator.ws_url) as ws:
        await recv_until(ws, "session_id")
        await ws.send(json.dumps({"type": "prompt", "prompt": text, "enhance_prompt": True}))
        ack = await recv_json(ws)
    assert ack == {"type": "prompt_ack", "prompt": text, "success": True, "error": None}


async def test_passthrough_set_image_is_acked(emulator: EmulatorThread) -> None:
    """set_image {null, null} is acked with success true and switches the session to passthrough."""
    async with await open_ws(emulator.ws_url) as ws:
        await recv_until(ws, "session_id")
        await ws.send(json.dumps({"type": "set_image", "image_data": None, "prompt": None}))
        ack = await recv_json(ws)
    assert ack == {"type": "set_image_ack", "success": True, "error": None}
    states = [e for e in emulator.events if e["event"] == "state"]
    assert states[-1]["passthrough"] is True


async def test_set_image_acks_arrive_one_per_request_in_order(emulator: EmulatorThread) -> None:
    """Each set_image gets exactly one set_image_ack, in order; a bad image fails with invalid_image."""
    good = png_b64()
    bad = base64.b64encode(b"this is not an image").decode()
    async with await open_ws(emulator.ws_url) as ws:
        await recv_until(ws, "session_id")
        await ws.send(json.dumps({"type": "set_image", "image_data": good}))
        await ws.send(json.dumps({"type": "set_image", "image_data": bad, "prompt": "x", "enhance_prompt": True}))
        await ws.send(json.dumps({"type": "set_image", "image_data": "%%%not base64%%%"}))
        await ws.send(json.dumps({"type": "set_image", "image_data": good, "prompt": "a cat", "enhance_prompt": False}))
        await ws.send(json.dumps({"type": "prompt", "prompt": "last", "enhance_prompt": True}))
        acks = [await recv_json(ws) for _ in range(5)]
    assert [a["type"] for a in acks] == ["set_image_ack"] * 4 + ["prompt_ack"]  # no prompt_ack for set_image
    assert [a["success"] for a in acks[:4]] == [True, False, False, True]
    assert acks[1]["error"] == acks[2]["error"] == "invalid_image"
    state = [e for e in emulator.events if e["event"] == "state"][-1]
    assert state["prompt"] == "last" and state["image"] == "64x48"  # a bare prompt keeps the image


async def test_frames_larger_than_16_mib_are_accepted(emulator: EmulatorThread) -> None:
    """A 17 MiB set_image frame is read (and answered invalid_image), not refused by a frame-size limit."""
    huge = "A" * (17 * 1024 * 1024)  # valid base64 of zero bytes: a frame, but not an image
    async with await open_ws(emulator.ws_url) as ws:
        await recv_until(ws, "session_id")
        await ws.send(json.dumps({"type": "set_image", "image_data": huge}))
        ack = await recv_json(ws, timeout=3 * T)
    assert ack == {"type": "set_image_ack", "success": False, "error": "invalid_image"}


async def test_unknown_model_is_rejected_then_closed(emulator: EmulatorThread) -> None:
    """An unknown model gets error 'Invalid model: X' and the socket closes."""
    ws = await open_ws(emulator.ws_url, model="lucy-9000")
    msg = await recv_json(ws)
    assert msg == {"type": "error", "error": "Invalid model: lucy-9000"}
    assert await closed_with(ws) == 1008


@pytest.mark.parametrize("model", ["lucy-latest", "lucy-2.1-vton-2", "mirage_v2", "lucy-2.1-vton", "lucy-vton"])
async def test_aliases_deprecated_and_sdk_names_are_accepted(emulator: EmulatorThread, model: str) -> None:
    """-latest aliases, deprecated names and the names SDK 0.0.40 sends all open a session."""
    async with await open_ws(emulator.ws_url, model=model) as ws:
        assert (await recv_json(ws))["type"] == "session_id"


async def test_bad_key_gets_invalid_api_key_then_close(make_emulator: MakeEmulator) -> None:
    """With --api-key set, a wrong or empty key gets 'Invalid API key' and a close; the right key works."""
    emu = make_emulator(api_key="right-key-123")
    for key in ("wrong-key", ""):
        ws = await open_ws(emu.ws_url, key=key)
        assert await recv_json(ws) == {"type": "error", "error": "Invalid API key"}
        assert await closed_with(ws) == 1008
    async with await open_ws(emu.ws_url, key="right-key-123") as ws:
        assert (await recv_json(ws))["type"] == "session_id"
    assert "right-key-123" not in json.dumps(emu.events)


async def test_malformed_and_unknown_client_frames_are_ignored(emulator: EmulatorThread) -> None:
    """Bad JSON, non-objects, unknown types, bad fields, binary and null candidates never end the session."""
    junk: list[str | bytes] = [
        "{oops",
        "[]",
        '"str"',
        '{"type": "nope"}',
        '{"type": "prompt"}',
        '{"type": "set_image"}',
        '{"type": "offer", "sdp": 5}',
        b"\x00\x01",
        '{"type": "ice-candidate", "candidate": null}',
        '{"type": "ice-candidate", "candidate": {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}}',
        '{"type": "ice-candidate", "candidate": {"candidate": "candidate:garbage", "sdpMid": "0", "sdpMLineIndex": 0}}',
    ]
    async with await open_ws(emulator.ws_url) as ws:
        await recv_until(ws, "session_id")
        for frame in junk:
            await ws.send(frame)
        await ws.send(json.dumps({"type": "prompt", "prompt": "still alive", "enhance_prompt": False}))
        ack = await recv_json(ws)
    assert ack["prompt"] == "still alive" and ack["success"] is True
    assert sum(1 for e in emulator.events if e["event"] == "ignored") >= 8


async def test_emulator_stop_ends_sessions_with_generation_ended(make_emulator: MakeEmulator) -> None:
    """Stopping the emulator sends generation_ended {seconds, reason} and closes with 1001."""
    emu = make_emulator()
    ws = await open_ws(emu.ws_url)
    await recv_until(ws, "session_id")
    await asyncio.get_running_loop().run_in_executor(None, emu.stop)
    ended = await recv_until(ws, "generation_ended")
    assert ended == {"type": "generation_ended", "seconds": 0, "reason": "disconnect"}
    assert await closed_with(ws) == 1001


# -- faults --------------------------------------------------------------------------------------


async def test_reject_first_sends_capacity_error_and_1013(make_emulator: MakeEmulator) -> None:
    """--reject-first 1: the first connection gets 'Server at capacity...' and close 1013; the next one works."""
    emu = make_emulator(reject_first=1)
    ws = await open_ws(emu.ws_url)
    assert await recv_json(ws) == {"type": "error", "error": "Server at capacity. Please try again later."}
    assert await closed_with(ws) == 1013
    async with await open_ws(emu.ws_url) as ws2:
        assert (await recv_json(ws2))["type"] == "session_id"
    assert emu.connections == 2


async def test_ack_delay_delays_acks_and_keeps_order(make_emulator: MakeEmulator) -> None:
    """--ack-delay 300: acks arrive no earlier than 300 ms after the request, still in order."""
    emu = make_emulator(ack_delay_ms=300)
    async with await open_ws(emu.ws_url) as ws:
        await recv_until(ws, "session_id")
        start = time.monotonic()
        await ws.send(json.dumps({"type": "prompt", "prompt": "one", "enhance_prompt": True}))
        await ws.send(json.dumps({"type": "set_image", "image_data": None, "prompt": None}))
        await ws.send(json.dumps({"type": "prompt", "prompt": "two", "enhance_prompt": True}))
        acks = [await recv_json(ws) for _ in range(3)]
        elapsed = time.monotonic() - start
    assert [a.get("prompt", a["type"]) for a in acks] == ["one", "set_image_ack", "two"]
    assert elapsed >= 0.3


async def test_no_ack_never_acknowledges(make_emulator: MakeEmulator) -> None:
    """--no-ack: prompts and set_image get no ack at all."""
    emu = make_emulator(no_ack=True)
    async with await open_ws(emu.ws_url) as ws:
        await recv_until(ws, "session_id")
        await ws.send(json.dumps({"type": "prompt", "prompt": "hello", "enhance_prompt": True}))
        await ws.send(json.dumps({"type": "set_image", "image_data": None, "prompt": None}))
        with pytest.raises(asyncio.TimeoutError):
            await recv_json(ws, timeout=0.5)
    assert [e["type"] for e in emu.events if e["event"] == "fault"] == ["prompt_ack", "set_image_ack"]


async def test_error_after_sends_error_then_ends(make_emulator: MakeEmulator) -> None:
    """--error-after '0.2 insufficient_credits': error message, generation_ended reason error, close."""
    emu = make_emulator(error_after=parse_error_after("0.2 insufficient_credits"))
    ws = await open_ws(emu.ws_url)
    await recv_until(ws, "session_id")
    assert await recv_json(ws) == {"type": "error", "error": "insufficient_credits"}
    assert (await recv_json(ws))["reason"] == "error"
    assert await closed_with(ws) == 1011


async def test_garbage_is_interleaved_between_real_messages(make_emulator: MakeEmulator) -> None:
    """--garbage: malformed JSON, non-objects, unknown types and binary frames precede real messages."""
    emu = make_emulator(garbage=True)
    raw: list[str | bytes] = []
    async with await open_ws(emu.ws_url) as ws:
        for prompt in ("a", "b", "c", "d"):
            await ws.send(json.dumps({"type": "prompt", "prompt": prompt, "enhance_prompt": True}))
        while sum(1 for r in raw if isinstance(r, str) and '"prompt_ack"' in r) < 4:
            raw.append(await asyncio.wait_for(ws.recv(), T))
    assert any(isinstance(r, bytes) for r in raw)
    kinds = set()
    for r in raw:
        if isinstance(r, bytes):
            continue
        try:
            obj = json.loads(r)
        except ValueError:
            kinds.add("malformed")
            continue
        kinds.add(obj.get("type") if isinstance(obj, dict) and isinstance(obj.get("type"), str) else "non-object")
    assert {"malformed", "non-object", "emulator_noise", "session_id", "prompt_ack"} <= kinds
    acks = [json.loads(r)["prompt"] for r in raw if isinstance(r, str) and '"prompt_ack"' in r]
    assert acks == ["a", "b", "c", "d"]


def test_parse_error_after_rejects_bad_values() -> None:
    """--error-after needs 'SECONDS MESSAGE' with non-negative seconds and a message."""
    assert parse_error_after(" 1.5  Server at capacity ") == (1.5, "Server at capacity")
    for bad in ("", "5", "x msg", "-1 msg"):
        with pytest.raises(ValueError):
            parse_error_after(bad)


# -- the frame model -----------------------------------------------------------------------------


def _i420(width: int, height: int, seed: int = 0) -> av.VideoFrame:
    src = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(src, format="bgr24").reformat(format="yuv420p")


def _marker_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    y, u, v = planes(frame.to_ndarray(), frame.width, frame.height)
    return [y[:16, :64], u[:8, :32], v[:8, :32]]


def test_frame_model_keeps_marker_and_size_for_every_look() -> None:
    """Every look outputs model-size I420 frames whose marker region (Y 64×16, U/V 32×8) equals the input's."""
    frame = _i420(1088, 624)
    model = FrameModel(1088, 624)
    image = np.zeros((100, 80, 3), np.uint8)
    assert model.render(frame, RenderState()) is frame  # passthrough at model size: no pixel work
    for prompt in ("anime", "pencil sketch", "neon city", "film noir", "thermal", "a lake"):
        out = model.render(frame, RenderState(prompt, image))
        assert (out.width, out.height, out.format.name) == (1088, 624, "yuv420p")
        for a, b in zip(_marker_planes(out), _marker_planes(frame), strict=True):
            assert np.array_equal(a, b)
        assert not np.array_equal(out.to_ndarray(), frame.to_ndarray())
    assert {look_for(p) for p in ("anime", "pencil", "cyberpunk", "noir", "thermal", "x")} == {
        "cartoon",
        "sketch",
        "neon",
        "noir",
        "thermal",
        "tint",
    }


def test_frame_model_resizes_other_sizes_and_copies_marker_unscaled() -> None:
    """A 640×360 input becomes 1088×624 (passthrough or not); the marker is copied from the input unscaled."""
    frame = _i420(640, 360, seed=1)
    model = FrameModel(1088, 624)
    for state in (RenderState(), RenderState("anime")):
        out = model.render(frame, state)
        assert (out.width, out.height) == (1088, 624)
        for a, b in zip(_marker_planes(out), _marker_planes(frame), strict=True):
            assert np.array_equal(a, b)


# -- media over real aiortc peers ------------------------------------------------------------------


async def _stream(
    emu: EmulatorThread,
    initial: dict[str, Any],
    *,
    frames: int,
    width: int = 1088,
    height: int = 624,
    model: str = "lucy-2.1",
    query: str = "",
) -> tuple[Offerer, PatternTrack, list[dict[str, Any]]]:
    track = PatternTrack(width, height)
    peer = Offerer(track)
    messages: list[dict[str, Any]] = []
    ws = await open_ws(emu.ws_url, model=model, query=query)
    try:
        await ws.send(json.dumps(initial))
        while not (msg := await recv_json(ws))["type"].endswith("_ack"):
            messages.append(msg)
        messages.append(msg)
        await peer.offer(ws)
        # browsers trickle candidates and end with null / empty ones: accepted, never fatal
        host = {"candidate": "candidate:1 1 udp 2122252543 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
        for candidate in (host, {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}, None):
            await ws.send(json.dumps({"type": "ice-candidate", "candidate": candidate}))
        answer = await recv_until(ws, "answer")
        await peer.accept(answer)
        await peer.wait_frames(frames, timeout=3 * T)
        with_ticks = emu.config.tick_interval < 1
        while with_ticks and sum(1 for x in messages if x["type"] == "generation_tick") < 2:
            messages.append(await recv_json(ws))
    finally:
        await peer.close()
        await ws.close()
    return peer, track, messages


@pytest.mark.slow
async def test_passthrough_echoes_input_at_model_size_with_marker(make_emulator: MakeEmulator) -> None:
    """Passthrough: frames come back at 1088×624, look like the input, and carry the input's marker."""
    emu = make_emulator(tick_interval=0.2)
    peer, track, messages = await _stream(emu, {"type": "set_image", "image_data": None, "prompt": None}, frames=20)
    types = [x["type"] for x in messages]
    assert "generation_started" in types
    ticks = [x["seconds"] for x in messages if x["type"] == "generation_tick"]
    assert ticks[:2] == [1, 2]
    last = peer.frames[-1].to_ndarray(format="bgr24")
    assert (peer.frames[-1].width, peer.frames[-1].height) == (1088, 624)
    assert read_stamp(last) == track.marker
    inputs = emu.input_frames(1)
    assert inputs and inputs[-1].shape == (624, 1088, 3)
    # The echo is the input, up to VP8 loss: compare with the input frame whose gradient matches best.
    diffs = [float(np.abs(last.astype(int) - i.astype(int)).mean()) for i in inputs]
    assert min(diffs) < 12


@pytest.mark.slow
async def test_prompt_changes_the_output_and_keeps_marker(make_emulator: MakeEmulator) -> None:
    """A prompt makes the output differ visibly from the input while the marker region is preserved."""
    emu = make_emulator()
    peer, track, _ = await _stream(
        emu, {"type": "prompt", "prompt": "pencil sketch", "enhance_prompt": True}, frames=15
    )
    out = peer.frames[-1].to_ndarray(format="bgr24")
    assert out.shape == (624, 1088, 3)
    assert read_stamp(out) == track.marker
    # sketch is grayscale: the output's chroma is neutral, the gradient input's is not
    _, u_out, v_out = planes(peer.frames[-1].to_ndarray(), 1088, 624)
    _, u_in, v_in = planes(track.base, 1088, 624)
    assert float(np.abs(np.concatenate([u_out[60:], v_out[60:]]).astype(int) - 128).mean()) < 6
    assert float(np.abs(np.concatenate([u_in[60:], v_in[60:]]).astype(int) - 128).mean()) > 15


@pytest.mark.slow
async def test_other_input_size_is_resized_to_model_size(make_emulator: MakeEmulator) -> None:
    """lucy-2.5 with 640×360 input: output is 1280×720 and the unscaled marker survives."""
    emu = make_emulator()
    peer, track, _ = await _stream(
        emu,
        {"type": "set_image", "image_data": None, "prompt": None},
        frames=10,
        width=640,
        height=360,
        model="lucy-2.5",
    )
    out = peer.frames[-1]
    assert (out.width, out.height) == (1280, 720)
    assert read_stamp(out.to_ndarray(format="bgr24")) == track.marker


@pytest.mark.slow
async def test_resolution_1080p_upscales_the_output(emulator: EmulatorThread) -> None:
    """resolution=1080p on lucy-2.1: 1088×624 input comes back as 1884×1080, marker still readable."""
    peer, track, _ = await _stream(
        emulator, {"type": "prompt", "prompt": "noir", "enhance_prompt": True}, frames=3, query="&resolution=1080p"
    )
    out = peer.frames[-1]
    assert (out.width, out.height) == (1884, 1080)
    assert read_stamp(out.to_ndarray(format="bgr24")) == track.marker


async def test_invalid_resolution_is_rejected(emulator: EmulatorThread) -> None:
    """A resolution other than 720p/1080p gets 'Invalid resolution: X' and a close."""
    ws = await open_ws(emulator.ws_url, query="&resolution=4k")
    assert await recv_json(ws) == {"type": "error", "error": "Invalid resolution: 4k"}
    assert await closed_with(ws) == 1008


@pytest.mark.slow
async def test_drop_after_aborts_the_first_session_only(make_emulator: MakeEmulator) -> None:
    """--drop-after 0.3: the first answered session loses its socket without goodbye; the second is kept."""
    emu = make_emulator(drop_after=0.3, drop_connections=1)
    for attempt in (1, 2):
        peer = Offerer(PatternTrack(1088, 624))
        ws = await open_ws(emu.ws_url)
        try:
            await ws.send(json.dumps({"type": "set_image", "image_data": None, "prompt": None}))
            await recv_until(ws, "set_image_ack")
            await peer.offer(ws)
            await peer.accept(await recv_until(ws, "answer"))
            if attempt == 1:
                with pytest.raises(websockets.ConnectionClosed) as info:
                    while True:
                        msg = await recv_json(ws)
                        assert msg["type"] != "generation_ended"  # a drop says nothing
                assert info.value.rcvd is None  # no close frame: like a network loss
            else:
                await asyncio.sleep(0.6)
                assert ws.close_code is None
        finally:
            await peer.close()
            await ws.close()
    faults = [e for e in emu.events if e["event"] == "fault" and e["fault"] == "drop"]
    assert [e["conn"] for e in faults] == [1]


# -- the command ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_decart_serve_prints_port_serves_and_exits_on_signal(signum: int) -> None:
    """`decart serve --port 0` prints one stdout line with the real port, serves, exits 0 on SIGINT/SIGTERM."""
    with ServeProcess("--api-key", "serve-secret-key") as serve:
        assert serve.port > 0

        async def talk() -> dict[str, Any]:
            async with await open_ws(serve.ws_url, key="serve-secret-key") as ws:
                await recv_until(ws, "session_id")
                await ws.send(json.dumps({"type": "prompt", "prompt": "hi", "enhance_prompt": True}))
                return await recv_json(ws)

        try:
            reply = asyncio.run(talk())
        except Exception as exc:  # show the server's side of a failed exchange
            raise AssertionError(f"exchange failed: {exc!r}; server stderr:\n{serve.stop().stderr}") from exc
        assert reply["prompt"] == "hi"
        out = serve.stop(signum, timeout=T * 2)
    assert out.code == 0
    assert out.stdout.startswith("decart serve listening on http://127.0.0.1:")
    assert out.stdout.count("\n") == 1  # exactly one stdout line
    assert "connect" in out.stderr and "prompt_ack" in out.stderr
    assert "serve-secret-key" not in out.stderr


@pytest.mark.slow
async def test_receive_only_offer_gets_a_synthetic_processed_stream(emulator: EmulatorThread) -> None:
    """A recvonly video offer (viewer mode, no local track) still receives model-size frames."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    frames: list[av.VideoFrame] = []
    readers: list[asyncio.Task[None]] = []

    async def read(track: Any) -> None:
        while len(frames) < 5:
            frames.append(await track.recv())

    pc.on("track", lambda t: readers.append(asyncio.ensure_future(read(t))))
    ws = await open_ws(emulator.ws_url, model="lucy-restyle-2")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
        answer = await recv_until(ws, "answer")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        assert readers, "the answer carried no video track"
        await asyncio.wait_for(asyncio.gather(*readers), 3 * T)
        await recv_until(ws, "generation_started")
    finally:
        await pc.close()
        await ws.close()
    assert len(frames) == 5
    assert {(f.width, f.height) for f in frames} == {(1280, 704)}


def test_decart_serve_on_a_busy_port_fails_with_a_hint(emulator: EmulatorThread) -> None:
    """A port already in use: exit 1, one error line naming host:port, and a hint to pick another."""
    proc = subprocess.run(
        [sys.executable, "-m", "decart_cli", "serve", "--port", str(emulator.port)],
        capture_output=True,
        text=True,
        timeout=T * 8,  # a cold interpreter importing aiohttp on a loaded 2-core machine
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"cannot listen on 127.0.0.1:{emulator.port}" in proc.stderr
    assert "--port 0" in proc.stderr


async def test_set_image_field_combinations_follow_the_protocol_table(emulator: EmulatorThread) -> None:
    """§2.1: image alone keeps the prompt; null+prompt clears the image; null alone clears the image only."""
    good = png_b64(40, 30)
    steps: list[tuple[dict[str, Any], tuple[str | None, str | None]]] = [
        ({"type": "prompt", "prompt": "p1", "enhance_prompt": True}, ("p1", None)),
        ({"type": "set_image", "image_data": good}, ("p1", "40x30")),
        ({"type": "prompt", "prompt": "p2", "enhance_prompt": False}, ("p2", "40x30")),
        ({"type": "set_image", "image_data": None, "prompt": "p3", "enhance_prompt": True}, ("p3", None)),
        ({"type": "set_image", "image_data": good, "prompt": "p4"}, ("p4", "40x30")),
        ({"type": "set_image", "image_data": None}, ("p4", None)),
        ({"type": "set_image", "image_data": None, "prompt": None}, (None, None)),
    ]
    async with await open_ws(emulator.ws_url) as ws:
        await recv_until(ws, "session_id")
        for message, _ in steps:
            await ws.send(json.dumps(message))
            assert (await recv_json(ws))["success"] is True
    states = [(e["prompt"], e["image"]) for e in emulator.events if e["event"] == "state"]
    assert states == [expected for _, expected in steps]
    assert [e["passthrough"] for e in emulator.events if e["event"] == "state"][-1] is True


async def test_emulator_runs_in_the_current_loop() -> None:
    """`async with Emulator(...)` serves in the caller's loop; overrides never touch the config passed in."""
    config = EmulatorConfig(api_key="loop-key-1234")
    async with Emulator(config, tick_interval=0.5) as emu:
        assert emu.port > 0 and emu.ws_url == f"ws://127.0.0.1:{emu.port}"
        async with await open_ws(emu.ws_url, key="loop-key-1234") as ws:
            assert (await recv_json(ws))["type"] == "session_id"
        assert emu.connections == 1
    assert config.tick_interval == 1.0 and emu.config.tick_interval == 0.5
    assert "loop-key-1234" not in repr(emu.config)


async def test_subscribe_to_an_unknown_session_is_an_invalid_session(emulator: EmulatorThread) -> None:
    """/subscribe/{sid} for no running session gets 'Invalid session' (permanent for SDKs) and a close."""
    ws = await websockets.connect(f"{emulator.ws_url}/subscribe/nope?IP=127.0.0.1&port=1&api_key=k", open_timeout=T)
    assert await recv_json(ws) == {"type": "error", "error": "Invalid session"}
    assert await closed_with(ws) == 1008


async def test_fixture_peers_offer_and_answer_127_0_0_1_only(emulator: EmulatorThread) -> None:
    """With the fixtures, both the test's aiortc offer and the emulator's answer carry 127.0.0.1 host candidates only."""
    import re

    peer = Offerer(PatternTrack(320, 240))
    ws = await open_ws(emulator.ws_url)
    try:
        await peer.offer(ws)
        answer = await recv_until(ws, "answer")
    finally:
        await peer.close()
        await ws.close()
    pattern = r"a=candidate:\S+ \d+ \w+ \d+ (\S+) \d+ typ (\w+)"
    offered = re.findall(pattern, peer.pc.localDescription.sdp)
    answered = re.findall(pattern, answer["sdp"])
    assert offered and answered
    assert set(offered) == set(answered) == {("127.0.0.1", "host")}


@pytest.mark.parametrize(("width", "height"), [(816, 468), (544, 312)])
def test_frame_model_scales_the_marker_of_a_lower_simulcast_layer_back(width: int, height: int) -> None:
    """A layer of a 1088×624 track keeps a readable marker when source_size says what was published."""
    from emulator_client import stamp

    full = np.full((624, 1088, 3), 90, np.uint8)
    stamp(full, 0xA5C3)
    layer = cv2.resize(full, (width, height), interpolation=cv2.INTER_AREA)  # what the encoder sends
    frame = av.VideoFrame.from_ndarray(layer, format="bgr24").reformat(format="yuv420p")
    model = FrameModel(1088, 624)
    for state in (RenderState(), RenderState("anime")):
        out = model.render(frame, state, (1088, 624)).to_ndarray(format="bgr24")
        assert out.shape == (624, 1088, 3)
        assert read_stamp(out) == 0xA5C3
    # Without the published size the region is copied unscaled (right for a client sending its own
    # smaller size, as in the direct era) and a shrunken marker no longer reads.
    assert read_stamp(model.render(frame, RenderState(), None).to_ndarray(format="bgr24")) != 0xA5C3
