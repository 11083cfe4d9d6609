"""Drive ``decart serve``'s LiveKit era with the official ``livekit`` SDK (unchanged), as a subprocess.

Runs inside scripts/netns-run (libwebrtc needs the veth's 127.0.0.2), usually under harness.py:

    python tests/sdk/livekit_driver.py --url http://127.0.0.1:PORT [--mode v1|v0] [--seconds S] ...

Control socket by hand (``livekit_join`` → ``livekit_room_info``), then ``rtc.Room().connect``,
publish a 30 fps marker-stamped camera track, read every ``inference-server-*`` video track
(a new ``VideoStream`` per ``track_subscribed``), optionally send state updates on a schedule,
then leave. Prints one JSON object (counts, sizes, latency, events) as its last stdout line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import websockets
from livekit import rtc

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]
from lk_media import CameraPump, Output  # noqa: E402 - this directory, put on the path above

KEY = "test-key-123456"


async def control_reader(ws: Any, log: list[dict[str, Any]], started: float) -> None:
    """Record every control message with its arrival time."""
    async for raw in ws:
        if isinstance(raw, bytes):
            continue
        msg = json.loads(raw)
        msg["_t"] = round(time.monotonic() - started, 3)
        log.append(msg)


async def wait_for(log: list[dict[str, Any]], kind: str, timeout: float, start: int = 0) -> dict[str, Any]:  # noqa: ASYNC109
    """The first message of ``kind`` at index ≥ ``start`` (polls the reader's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for msg in log[start:]:
            if msg.get("type") == kind:
                return msg
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no {kind} within {timeout} s; got {[m.get('type') for m in log]}")


# Kept until os._exit: freeing a Room whose engine gave up (JOIN_FAILURE after --lk-drop-after) makes
# livekit 1.2.1 crash a native worker (SIGSEGV) a moment later, 5 runs in 30; kept, 0 in 40, and 0 in
# 30 with room.disconnect() and the reader's close after the failure. The same rule as
# decart_cli/realtime/livekit.py.
ROOMS: list[Any] = []


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    ws_base = "ws" + args.url[len("http") :]
    query = f"api_key={KEY}&model={args.model}&livekit_early_room_info=true&user_agent=livekit-driver"
    control = await websockets.connect(f"{ws_base}/v1/stream?{query}", max_size=None)
    log: list[dict[str, Any]] = []
    reader = asyncio.ensure_future(control_reader(control, log, started))
    join: dict[str, Any] = {"type": "livekit_join"}
    if args.passthrough:
        join["passthrough"] = True
    if args.initial_prompt:
        join["initial_state"] = {"type": "prompt", "prompt": args.initial_prompt, "enhance_prompt": False}
    if args.frame_timing:
        join["client_capabilities"] = {"frame_timing": True}
    await control.send(json.dumps(join))
    info = await wait_for(log, "livekit_room_info", 30)
    if args.prompt:
        await control.send(json.dumps({"type": "prompt", "prompt": args.prompt, "enhance_prompt": True}))
        await wait_for(log, "prompt_ack", 15)

    room = rtc.Room()
    ROOMS.append(room)
    camera = CameraPump(args.width, args.height, frame_timing=args.publish_timestamps)
    output = Output(camera.sent_at)
    events: list[list[Any]] = []

    def note(*what: Any) -> None:
        events.append([round(time.monotonic() - started, 3), *what])

    @room.on("track_subscribed")
    def on_subscribed(
        track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        note("track_subscribed", participant.identity, track.sid)
        if participant.identity.startswith("inference-server-") and track.kind == rtc.TrackKind.KIND_VIDEO:
            output.attach(track)

    @room.on("track_unsubscribed")
    def on_unsubscribed(track: rtc.Track, *_: Any) -> None:
        note("track_unsubscribed", track.sid)

    @room.on("track_unpublished")
    def on_unpublished(publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        note("track_unpublished", participant.identity, publication.sid)

    @room.on("disconnected")
    def on_disconnected(reason: Any) -> None:
        note("disconnected", rtc.DisconnectReason.Name(reason) if isinstance(reason, int) else str(reason))

    @room.on("reconnecting")
    def on_reconnecting() -> None:
        note("reconnecting")

    options = rtc.RoomOptions(auto_subscribe=True, dynacast=False, single_peer_connection=args.mode == "v1")
    t0 = time.monotonic()
    await asyncio.wait_for(room.connect(info["livekit_url"], info["token"], options), 30)
    join_s = time.monotonic() - t0
    note("connected", args.mode)

    codec = rtc.VideoCodec.H264 if args.codec == "h264" else rtc.VideoCodec.VP8
    publish = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA,
        simulcast=args.simulcast,
        video_codec=codec,
        video_encoding=rtc.VideoEncoding(max_bitrate=3_500_000, max_framerate=30),
        degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION.value,
    )
    if args.publish_timestamps:
        publish.frame_metadata_features.append(rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP)
    await room.local_participant.publish_track(camera.track, publish)

    schedule = sorted((float(s.split(":", 1)[0]), s.split(":", 1)[1]) for s in args.set_at)

    async def before(elapsed: float) -> None:
        if args.close_control_at is not None and elapsed >= args.close_control_at and control.close_code is None:
            note("control_closed")
            await control.close()
        while schedule and elapsed >= schedule[0][0]:
            _, prompt = schedule.pop(0)
            await control.send(json.dumps({"type": "set_image", "image_data": None, "prompt": prompt}))
            note("set", prompt)

    await camera.run(args.seconds, before)
    await output.settle()
    if args.wait_disconnect:
        deadline = time.monotonic() + args.wait_disconnect
        while not any(e[1] == "disconnected" for e in events) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    t_leave = time.monotonic()
    await room.disconnect()  # after a JOIN_FAILURE too, as decart stream does (the room is kept: ROOMS)
    leave_s = time.monotonic() - t_leave
    await output.stop()
    await asyncio.sleep(0.2)
    control_open = control.close_code is None and not any(e[1] == "control_closed" for e in events)
    await control.close()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    return {
        "mode": args.mode,
        "join_s": round(join_s, 3),
        "leave_s": round(leave_s, 3),
        "send_fps": round(camera.sent / camera.seconds, 2) if camera.seconds else 0.0,
        **output.summary(camera.sent),
        "events": events,
        "control": [{k: v for k, v in m.items() if k != "token"} for m in log],
        "control_open_at_end": control_open,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="decart serve's http://HOST:PORT")
    parser.add_argument("--mode", choices=("v1", "v0"), default="v1", help="single (v1) or dual (v0) peer connections")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--model", default="lucy-2.1")
    parser.add_argument("--width", type=int, default=1088)
    parser.add_argument("--height", type=int, default=624)
    parser.add_argument("--codec", choices=("h264", "vp8"), default="h264")
    parser.add_argument("--simulcast", action="store_true")
    parser.add_argument("--passthrough", action="store_true", help="join with passthrough: true")
    parser.add_argument("--initial-prompt", default=None, help="join with initial_state = this prompt")
    parser.add_argument("--prompt", default=None, help="send this prompt after the room info")
    parser.add_argument("--set-at", action="append", default=[], help="S:PROMPT: set_image{null, PROMPT} at S s")
    parser.add_argument("--close-control-at", type=float, default=None, help="close /v1/stream after S s")
    parser.add_argument("--wait-disconnect", type=float, default=0.0, help="wait this long for a room disconnect")
    parser.add_argument(
        "--frame-timing", action="store_true", help="join with client_capabilities.frame_timing (echo stamps)"
    )
    parser.add_argument(
        "--publish-timestamps", action="store_true", help="publish with FMF_USER_TIMESTAMP and stamp every frame"
    )
    args = parser.parse_args()
    asyncio.run(report(args))
    return 0


async def report(args: argparse.Namespace) -> None:
    """Run, print the findings, leave at once.

    livekit 1.2.1's native threads can abort the interpreter's teardown after a clean end (seen in CI
    with tests/sdk/sdk_0_2_4.py). The findings are printed and the room left by then, so the process
    ends without that teardown (as `decart stream` does).
    """
    result = await run(args)
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
