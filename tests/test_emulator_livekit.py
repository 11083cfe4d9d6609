"""The LiveKit era on the control socket and the stand-in's HTTP/WebSocket surface, without media.

A raw WebSocket client plays the SDKs (decart-protocol-2026-11.md §3); nothing here needs a network
namespace: the signal endpoints are checked at the protocol level (no peer connection is made).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from emulator_client import T, open_ws, recv_json, recv_until
from fixtures_emulator import expire_tokens
from livekit.protocol import models, rtc

from decart_cli.core import messages as m
from decart_cli.emulator.faults import parse_error_after
from decart_cli.emulator.server import EmulatorThread

MakeEmulator = Callable[..., EmulatorThread]


async def join(ws: Any, **fields: Any) -> dict[str, Any]:
    """Send ``livekit_join`` (with ``fields``) and return the room info."""
    await ws.send(json.dumps({"type": "livekit_join", **fields}))
    return await recv_until(ws, "livekit_room_info")


async def wait_event(emu: EmulatorThread, kind: str) -> None:
    """Wait (up to T) until the emulator's event log has an event of ``kind``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + T
    while not any(e["event"] == kind for e in emu.events) and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def states(emu: EmulatorThread, conn: int = 1) -> list[dict[str, Any]]:
    """The session's state events (prompt, image, passthrough), oldest first."""
    return [e for e in emu.events if e["event"] == "state" and e.get("conn") == conn]


async def test_bare_join_gets_room_info_for_this_port(emulator: EmulatorThread) -> None:
    """Bare livekit_join → livekit_room_info{ws://HOST:PORT, a token for the room, room_name, the session_id}."""
    async with await open_ws(emulator.ws_url, query="&livekit_early_room_info=true") as ws:
        session = await recv_until(ws, "session_id")
        info = await join(ws)
    assert info["livekit_url"] == emulator.ws_url
    assert info["session_id"] == session["session_id"]
    assert info["room_name"] == f"decart-{session['session_id']}"
    access = emulator.emulator.rooms.keys.verify(f"Bearer {info['token']}")
    assert access.room == info["room_name"] and access.identity == "decart-client-1"
    assert isinstance(m.decode_server(json.dumps(info)), m.LivekitRoomInfo)  # our own client parses it
    assert info["token"] not in json.dumps(emulator.events)  # the LiveKit token is never logged


async def test_join_variants_set_the_initial_state_without_an_ack(make_emulator: MakeEmulator) -> None:
    """passthrough:true → passthrough; initial_state prompt → that prompt; initial_state null → nothing; no acks."""
    emu = make_emulator()
    cases: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        ({"passthrough": True}, {"passthrough": True}),
        ({"initial_state": {"type": "prompt", "prompt": "anime", "enhance_prompt": True}}, {"prompt": "anime"}),
        ({"initial_state": None}, None),
        ({"passthrough": False, "client_capabilities": {"frame_timing": True}}, None),
    ]
    for conn, (fields, expected) in enumerate(cases, start=1):
        async with await open_ws(emu.ws_url) as ws:
            await recv_until(ws, "session_id")
            await ws.send(json.dumps({"type": "livekit_join", **fields}))
            seen = []
            while (msg := await recv_json(ws))["type"] != "livekit_room_info":
                seen.append(msg["type"])
        assert not [t for t in seen if t.endswith("_ack")]
        got = states(emu, conn)
        if expected is None:
            assert got == []
        else:
            assert len(got) == 1 and all(got[0][k] == v for k, v in expected.items())


async def test_initial_image_in_the_join_is_decoded(emulator: EmulatorThread) -> None:
    """initial_state set_image with an image and a prompt sets both (Android's variant)."""
    import cv2
    import numpy as np

    ok, png = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))
    image = base64.b64encode(png.tobytes()).decode()
    async with await open_ws(emulator.ws_url) as ws:
        await recv_until(ws, "session_id")
        await join(ws, initial_state={"type": "set_image", "image_data": image, "prompt": "a hat"})
    [state] = states(emulator)
    assert state["prompt"] == "a hat" and state["image"] == "40x30"


async def test_initial_state_before_and_after_room_info_is_acked(emulator: EmulatorThread) -> None:
    """JS order (join, prompt at once) and Python order (join, room info, set_image) both get their acks."""
    async with await open_ws(emulator.ws_url) as ws:  # JS
        await recv_until(ws, "session_id")
        await ws.send(json.dumps({"type": "livekit_join", "passthrough": False}))
        await ws.send(json.dumps({"type": "prompt", "prompt": "neon", "enhance_prompt": True}))
        types = [(await recv_json(ws))["type"] for _ in range(2)]
    assert sorted(types) == ["livekit_room_info", "prompt_ack"]
    async with await open_ws(emulator.ws_url) as ws:  # Python
        await join(ws)
        await ws.send(json.dumps({"type": "set_image", "image_data": None, "prompt": "noir"}))
        assert await recv_json(ws) == {"type": "set_image_ack", "success": True, "error": None}
    assert [s["prompt"] for s in emulator.events if s["event"] == "state"] == ["neon", "noir"]


async def test_state_before_the_join_is_acked_too(emulator: EmulatorThread) -> None:
    """set_image before livekit_join (a third-party client does this) is acked; the join still works."""
    async with await open_ws(emulator.ws_url) as ws:
        await recv_until(ws, "session_id")
        await ws.send(json.dumps({"type": "set_image", "image_data": None, "prompt": "early"}))
        assert (await recv_json(ws))["type"] == "set_image_ack"
        assert (await join(ws))["type"] == "livekit_room_info"


async def test_queue_counts_down_with_status_before_room_info(make_emulator: MakeEmulator) -> None:
    """--queue 3: status 'Entering queue', queue_position 3, 2, 1 of 3, status 'Ready', then room info."""
    emu = make_emulator(queue=3, queue_interval=0.05)
    async with await open_ws(emu.ws_url) as ws:
        await recv_until(ws, "session_id")
        await ws.send(json.dumps({"type": "livekit_join"}))
        got = []
        while (msg := await recv_json(ws))["type"] != "livekit_room_info":
            got.append(msg)
    assert got == [
        {"type": "status", "status": "Entering queue"},
        {"type": "queue_position", "position": 3, "queue_size": 3},
        {"type": "queue_position", "position": 2, "queue_size": 3},
        {"type": "queue_position", "position": 1, "queue_size": 3},
        {"type": "status", "status": "Ready"},
    ]
    assert [type(m.decode_server(json.dumps(x))).__name__ for x in got] == ["Status"] + ["QueuePosition"] * 3 + [
        "Status"
    ]


async def test_acks_stay_in_order_in_the_livekit_era(make_emulator: MakeEmulator) -> None:
    """--ack-delay applies to LiveKit-era sessions too; acks keep their order."""
    emu = make_emulator(ack_delay_ms=100)
    async with await open_ws(emu.ws_url) as ws:
        await join(ws)
        for text in ("one", "two"):
            await ws.send(json.dumps({"type": "prompt", "prompt": text, "enhance_prompt": True}))
        await ws.send(json.dumps({"type": "set_image", "image_data": None, "prompt": None}))
        acks = [await recv_json(ws) for _ in range(3)]
    assert [a.get("prompt", a["type"]) for a in acks] == ["one", "two", "set_image_ack"]


async def test_jwt_with_max_session_duration_ends_with_timeout(emulator: EmulatorThread) -> None:
    """A client JWT with maxSessionDuration 1: generation_ended{seconds, reason timeout}, close, room closed."""
    issued = emulator.issue_token(expires_in=60, allowed_models=["lucy-2.1"], max_session_duration=1)
    ws = await open_ws(emulator.ws_url, key=issued["token"])
    try:
        info = await join(ws)
        ended = await recv_until(ws, "generation_ended", timeout=3 * T)
        assert ended == {"type": "generation_ended", "seconds": 0, "reason": "timeout"}
        await asyncio.wait_for(ws.wait_closed(), T)
    finally:
        await ws.close()
    await wait_event(emulator, "lk_room_closed")  # the session cleans up after its close frame
    assert any(e["event"] == "lk_room_closed" and e["room"] == info["room_name"] for e in emulator.events)
    async with httpx.AsyncClient(base_url=emulator.http_url) as client:
        resp = await client.get("/rtc/validate", headers={"Authorization": f"Bearer {info['token']}"})
    assert resp.status_code == 403  # a closed room cannot be joined


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("expired", "Invalid API key: token expired"),
        ("tampered", "Invalid API key"),
        ("model", "Model lucy-2.1 not allowed for this token"),
    ],
)
async def test_jwt_problems_are_rejected(emulator: EmulatorThread, case: str, error: str) -> None:
    """An expired, tampered or other-model JWT gets the same error as its ek_ twin, then a close."""
    if case == "expired":
        key = emulator.issue_token(expires_in=1)["token"]
        expire_tokens(emulator)
    elif case == "tampered":
        header, payload, signature = emulator.issue_token()["token"].split(".")
        key = f"{header}.{payload}.{signature[:-4]}AAAA"
    else:
        key = emulator.issue_token(allowed_models=["lucy-restyle-2"])["token"]
    ws = await open_ws(emulator.ws_url, key=key)
    assert await recv_json(ws) == {"type": "error", "error": error}
    await ws.close()


async def test_second_join_and_offers_after_a_join_are_ignored(emulator: EmulatorThread) -> None:
    """One era per connection: a second join and an offer after the join are ignored; prompts still work."""
    async with await open_ws(emulator.ws_url) as ws:
        await join(ws)
        await ws.send(json.dumps({"type": "livekit_join"}))
        await ws.send(json.dumps({"type": "offer", "sdp": "v=0\r\n"}))
        await ws.send(json.dumps({"type": "prompt", "prompt": "still here", "enhance_prompt": True}))
        assert (await recv_json(ws))["prompt"] == "still here"
    reasons = [e["reason"] for e in emulator.events if e["event"] == "ignored"]
    assert any("second livekit_join" in r for r in reasons) and any("LiveKit era" in r for r in reasons)
    assert sum(1 for e in emulator.events if e["event"] == "lk_room") == 1


async def test_join_after_an_offer_is_ignored(emulator: EmulatorThread) -> None:
    """A livekit_join after a direct-era offer is ignored: no room info, no room."""
    from emulator_client import Offerer, PatternTrack

    peer = Offerer(PatternTrack(320, 240))
    async with await open_ws(emulator.ws_url) as ws:
        await peer.offer(ws)
        await recv_until(ws, "answer")
        await ws.send(json.dumps({"type": "livekit_join"}))
        await ws.send(json.dumps({"type": "prompt", "prompt": "direct", "enhance_prompt": True}))
        msg = await recv_until(ws, "prompt_ack")
    await peer.close()
    assert msg["prompt"] == "direct"
    assert not any(e["event"] == "lk_room" for e in emulator.events)


@pytest.mark.parametrize(("speed", "ok"), [("fast", True), ("turbo", False)])
async def test_speed_fast_is_accepted_other_speeds_are_not(emulator: EmulatorThread, speed: str, ok: bool) -> None:
    """speed=fast opens a session (even for a model without the tier, with a note); an unknown speed is an error."""
    ws = await open_ws(emulator.ws_url, query=f"&speed={speed}&resolution=720p&livekit_early_room_info=true")
    first = await recv_json(ws)
    await ws.close()
    if ok:
        assert first["type"] == "session_id"
        assert any(e["event"] == "note" and "speed=fast ignored" in e["detail"] for e in emulator.events)
    else:
        assert first == {"type": "error", "error": "Invalid speed: turbo"}


async def test_error_after_applies_to_the_livekit_era(make_emulator: MakeEmulator) -> None:
    """--error-after: error, then generation_ended reason error and a close, and the room is closed."""
    emu = make_emulator(error_after=parse_error_after("0.3 insufficient_credits"))
    ws = await open_ws(emu.ws_url)
    try:
        await join(ws)
        assert await recv_until(ws, "error") == {"type": "error", "error": "insufficient_credits"}
        assert (await recv_json(ws))["reason"] == "error"
    finally:
        await ws.close()
    await wait_event(emu, "lk_room_closed")
    assert any(e["event"] == "lk_room_closed" for e in emu.events)


async def test_drop_after_aborts_the_control_socket_and_fails_the_room(make_emulator: MakeEmulator) -> None:
    """--drop-after in the LiveKit era: the socket dies without goodbye after room info; the room is refused."""
    emu = make_emulator(drop_after=0.2)
    ws = await open_ws(emu.ws_url)
    info = await join(ws)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            assert (await recv_json(ws))["type"] != "generation_ended"
    assert closed.value.rcvd is None
    await ws.close()
    async with httpx.AsyncClient(base_url=emu.http_url) as client:
        for _ in range(50):
            resp = await client.get("/rtc/validate", headers={"Authorization": f"Bearer {info['token']}"})
            if resp.status_code != 200:
                break
            await asyncio.sleep(0.05)
    assert resp.status_code == 403


# -- the stand-in's endpoints ----------------------------------------------------------------------


async def _room_token(emu: EmulatorThread) -> tuple[Any, dict[str, Any]]:
    ws = await open_ws(emu.ws_url)
    return ws, await join(ws)


async def test_validate_answers_success_401_or_403(emulator: EmulatorThread) -> None:
    """/rtc/validate and /rtc/v1/validate: 200 'success' for a live room; 401 without or with a bad token."""
    ws, info = await _room_token(emulator)
    try:
        async with httpx.AsyncClient(base_url=emulator.http_url) as client:
            for path in ("/rtc/validate", "/rtc/v1/validate"):
                good = await client.get(path, headers={"Authorization": f"Bearer {info['token']}"})
                assert (good.status_code, good.text) == (200, "success")
                assert (await client.get(path)).status_code == 401
                bad = await client.get(path, headers={"Authorization": "Bearer abc.def.ghi"})
                assert bad.status_code == 401
            query = await client.get("/rtc/validate", params={"access_token": info["token"]})
            assert query.status_code == 200
    finally:
        await ws.close()


async def test_v0_signal_socket_sends_join_with_the_model_participant(emulator: EmulatorThread) -> None:
    """/rtc: the first frame is a JoinResponse (ping > 0, the client, inference-server-1); ping_req → pong_resp."""
    ws, info = await _room_token(emulator)
    url = f"{emulator.ws_url}/rtc?sdk=python&protocol=18&auto_subscribe=1"
    try:
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {info['token']}"}) as sig:
            first = rtc.SignalResponse()
            first.ParseFromString(await asyncio.wait_for(sig.recv(), T))
            assert first.WhichOneof("message") == "join"
            joined = first.join
            assert joined.ping_interval > 0 and joined.room.name == info["room_name"]
            assert joined.participant.identity == "decart-client-1"
            assert [p.identity for p in joined.other_participants] == ["inference-server-1"]
            await sig.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=99)).SerializeToString())
            pong = rtc.SignalResponse()
            pong.ParseFromString(await asyncio.wait_for(sig.recv(), T))
            assert pong.pong_resp.last_ping_timestamp == 99
            await sig.send(rtc.SignalRequest(leave=rtc.LeaveRequest()).SerializeToString())
            await asyncio.wait_for(sig.wait_closed(), T)
    finally:
        await ws.close()
    assert any(e["event"] == "lk_client_leave" for e in emulator.events)


async def test_closing_the_control_socket_sends_leave_room_deleted(emulator: EmulatorThread) -> None:
    """When the session ends, the client in the room gets leave{DISCONNECT, ROOM_DELETED} and a close."""
    ws, info = await _room_token(emulator)
    url = f"{emulator.ws_url}/rtc?sdk=python&protocol=18"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {info['token']}"}) as sig:
        await asyncio.wait_for(sig.recv(), T)  # join
        await ws.close()
        leave = rtc.SignalResponse()
        leave.ParseFromString(await asyncio.wait_for(sig.recv(), T))
        assert leave.WhichOneof("message") == "leave"
        assert leave.leave.action == rtc.LeaveRequest.DISCONNECT
        assert leave.leave.reason == models.DisconnectReason.ROOM_DELETED
        await asyncio.wait_for(sig.wait_closed(), T)


async def test_resume_is_answered_with_leave_reconnect(emulator: EmulatorThread) -> None:
    """reconnect=1 (a resume) gets leave{RECONNECT}: the stand-in asks for a full reconnect instead."""
    ws, info = await _room_token(emulator)
    url = f"{emulator.ws_url}/rtc?sdk=python&reconnect=1&sid=PA_gone"
    try:
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {info['token']}"}) as sig:
            leave = rtc.SignalResponse()
            leave.ParseFromString(await asyncio.wait_for(sig.recv(), T))
        assert leave.leave.action == rtc.LeaveRequest.RECONNECT and leave.leave.can_reconnect
    finally:
        await ws.close()


async def test_signal_upgrade_is_refused_with_401_403_or_404(make_emulator: MakeEmulator) -> None:
    """No token → 401; a room that does not exist → 403; /rtc/v1 when single-PC is off (--lk-single-pc off) → 404."""
    emu = make_emulator(lk_single_pc=False)
    ws, info = await _room_token(emu)
    foreign = emu.emulator.rooms.keys.mint("someone", "no-such-room")
    try:
        cases = [
            ("/rtc?sdk=python", None, 401),
            ("/rtc?sdk=python", foreign, 403),
            ("/rtc/v1?join_request=AAAA", info["token"], 404),
            ("/rtc/v1/validate", info["token"], 404),
        ]
        for path, token, status in cases:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(f"{emu.ws_url}{path}", additional_headers=headers, open_timeout=T)
            assert refused.value.response.status_code == status, path
    finally:
        await ws.close()


async def test_a_bad_join_request_is_400(emulator: EmulatorThread) -> None:
    """/rtc/v1 with a join_request that is not a WrappedJoinRequest → 400 before the upgrade."""
    ws, info = await _room_token(emulator)
    try:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                f"{emulator.ws_url}/rtc/v1?join_request=%25%25",
                additional_headers={"Authorization": f"Bearer {info['token']}"},
                open_timeout=T,
            )
        assert refused.value.response.status_code == 400
    finally:
        await ws.close()


async def test_reject_garbage_and_no_ack_apply_to_the_livekit_era(make_emulator: MakeEmulator) -> None:
    """--reject-first, --garbage and --no-ack act on LiveKit-era sessions as on direct ones."""
    emu = make_emulator(reject_first=1, garbage=True, no_ack=True)
    ws = await open_ws(emu.ws_url)
    assert (await recv_json(ws, skip_noise=True))["error"] == "Server at capacity. Please try again later."
    await ws.close()
    async with await open_ws(emu.ws_url) as ws:
        await ws.send(json.dumps({"type": "livekit_join"}))
        raw = []
        while True:
            frame = await asyncio.wait_for(ws.recv(), T)
            raw.append(frame)
            if isinstance(frame, str) and '"livekit_room_info"' in frame:
                break
        await ws.send(json.dumps({"type": "prompt", "prompt": "unanswered", "enhance_prompt": True}))
        with pytest.raises(asyncio.TimeoutError):
            await recv_until(ws, "prompt_ack", timeout=0.5, skip_noise=True)

    def real(frame: str | bytes) -> bool:
        try:
            return isinstance(frame, str) and isinstance(json.loads(frame).get("type"), str)
        except (ValueError, AttributeError):
            return False

    assert [r for r in raw if not real(r)]  # garbage frames came before the room info
    assert [e["type"] for e in emu.events if e["event"] == "fault" and "type" in e] == ["prompt_ack"]
