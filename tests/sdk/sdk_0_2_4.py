"""Drive ``decart serve`` with the official LiveKit-era SDK, ``decart==0.2.4`` (unchanged), as a subprocess.

Runs with ``.venv-sdk/0.2.4/bin/python`` inside scripts/netns-run (usually under harness.py):

    python tests/sdk/sdk_0_2_4.py --url http://127.0.0.1:PORT SCENARIO [--seconds S]

Scenarios:
    stream    mint a client token (JWT; verified against the emulator's JWKS with the SDK's own
              ``tokens.verify``), connect with it and an initial prompt and a marker-stamped
              1088×624 @ 30 track, ``set_prompt``, ``set()`` with an image, stream, disconnect.
    restart   connect without initial state (the SDK sends passthrough), then ``set_prompt``: the
              server restarts generation and republishes its output; the SDK must hand over the
              new track (``on_remote_stream`` twice) and frames must keep coming.
    rejected  an expired token and a token for another model: ``connect`` fails at once (no retries).
    bench     the benchmark job (bench_job.py) for --seconds: the CLI's test pattern as RGBA frames into
              an ``rtc.VideoSource`` at 30 fps, every output track read through ``VideoStream(RGBA)``,
              marker latency, set_prompt round trips, this process's CPU and peak RSS.

The harness is free to stamp frames with its own code (lk_media.py); the SDK is used as published.
Prints one JSON object as the last stdout line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]
from lk_media import CameraPump, Output  # noqa: E402 - this directory, put on the path above

KEY = "test-key-123456"
WIDTH, HEIGHT = 1088, 624


def png_bytes() -> bytes:
    """A small red reference image (PNG)."""
    img = np.zeros((120, 90, 3), np.uint8)
    img[:, :, 2] = 220
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf.tobytes())


def _client(url: str) -> Any:
    from decart import DecartClient

    return DecartClient(api_key=KEY, base_url=url, realtime_base_url="ws" + url[len("http") :])


async def _connect(
    client: Any, credential: str, track: Any, on_remote_stream: Callable[[Any], None], **state: Any
) -> Any:
    """``RealtimeClient.connect`` with ``track`` (or none), an initial prompt when ``prompt=`` is given."""
    from decart import models
    from decart.realtime.client import RealtimeClient
    from decart.realtime.types import RealtimeConnectOptions
    from decart.types import ModelState, Prompt

    initial = ModelState(prompt=Prompt(text=state["prompt"], enhance=True)) if "prompt" in state else None
    return await RealtimeClient.connect(
        base_url=client.realtime_base_url,
        api_key=credential,
        local_track=track,
        options=RealtimeConnectOptions(
            model=models.realtime(state.get("model", "lucy-2.1")),
            on_remote_stream=on_remote_stream,
            initial_state=initial,
        ),
    )


async def stream(args: argparse.Namespace) -> dict[str, Any]:
    """The done-when run: JWT, prompt, set_prompt, set(image), ≥ 90 % of the frames back, markers intact."""
    from decart.realtime.client import SetInput

    client = _client(args.url)
    timings: dict[str, float] = {}
    states: list[str] = []
    errors: list[str] = []
    ticks: list[float] = []
    try:
        token = await client.tokens.create(expires_in=300, allowed_models=["lucy-2.1"])
        verified = await client.tokens.verify(token.token, jwks_url=f"{args.url}/api/auth/jwks", leeway=0)
        camera = CameraPump(WIDTH, HEIGHT)
        output = Output(camera.sent_at)
        start = time.monotonic()
        realtime = await asyncio.wait_for(
            _connect(client, token.token, camera.track, output.attach, prompt="anime hero"), 60
        )
        timings["connect"] = time.monotonic() - start
        realtime.on("connection_change", states.append)
        realtime.on("error", lambda e: errors.append(str(e)))
        realtime.on("generation_tick", lambda msg: ticks.append(msg.seconds))
        session_id = realtime.session_id
        pump = asyncio.ensure_future(camera.run(args.seconds))
        await asyncio.sleep(min(1.0, args.seconds / 4))
        t0 = time.monotonic()
        await realtime.set_prompt("cyberpunk city")
        timings["set_prompt"] = time.monotonic() - t0
        t0 = time.monotonic()
        await realtime.set(SetInput(prompt="pencil sketch", image=png_bytes()))
        timings["set"] = time.monotonic() - t0
        await pump
        await output.settle()
        t0 = time.monotonic()
        await realtime.disconnect()
        timings["disconnect"] = time.monotonic() - t0
        await output.stop()
    finally:
        await client.close()
    first = (output.first_at - start) if output.first_at else None
    return {
        "scenario": "stream",
        "api_key_prefix": token.api_key[:3],
        "jwt_parts": len(token.token.split(".")),
        "verified": {
            "allowed_models": verified.allowed_models,
            "user_id": verified.user_id,
            "issuer": verified.claims.get("iss"),
        },
        "session_id": session_id,
        "send_fps": round(camera.sent / camera.seconds, 2) if camera.seconds else 0.0,
        **output.summary(camera.sent),
        "first_frame_s": round(first, 3) if first is not None else None,
        "timings_ms": {k: round(v * 1000) for k, v in timings.items()},
        "states": states,
        "errors": errors,
        "ticks": ticks,
    }


async def restart(args: argparse.Namespace) -> dict[str, Any]:
    """No initial state → passthrough; a prompt restarts generation: a second track is handed over."""
    client = _client(args.url)
    calls: list[str] = []
    try:
        camera = CameraPump(WIDTH, HEIGHT)
        output = Output(camera.sent_at)

        def attach(track: Any) -> None:
            calls.append(track.sid)
            output.attach(track)

        realtime = await asyncio.wait_for(_connect(client, KEY, camera.track, attach), 60)
        pump = asyncio.ensure_future(camera.run(args.seconds))
        await asyncio.sleep(args.seconds / 3)
        before = output.frames
        await realtime.set_prompt("film noir")
        await pump
        await output.settle()
        await realtime.disconnect()
        await output.stop()
    finally:
        await client.close()
    return {
        "scenario": "restart",
        "tracks": calls,
        "frames_before_set": before,
        **output.summary(camera.sent),
    }


async def rejected(args: argparse.Namespace) -> dict[str, Any]:
    """An expired JWT and a JWT for another model fail at once, each on one connection attempt."""
    from decart.errors import DecartSDKError

    client = _client(args.url)
    results: dict[str, Any] = {}
    try:
        short = await client.tokens.create(expires_in=1)
        other = await client.tokens.create(allowed_models=["lucy-restyle-2"])
        await asyncio.sleep(1.2)
        for name, credential in (("expired", short.token), ("model", other.token)):
            t0 = time.monotonic()
            try:
                realtime = await asyncio.wait_for(_connect(client, credential, None, Output({}).attach), 60)
            except DecartSDKError as exc:
                results[name] = {"error": str(exc), "seconds": round(time.monotonic() - t0, 2)}
            else:
                await realtime.disconnect()
                results[name] = {"error": None}
    finally:
        await client.close()
    return {"scenario": "rejected", **results}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark job through SDK 0.2.4 (its default publish options), measured as ``decart bench`` does."""
    from bench_job import Frames, Probe
    from decart import models
    from livekit import rtc

    model = models.realtime(args.model)
    width, height = WIDTH, HEIGHT  # the CLI's lucy-2.1 size (the SDK's catalogue says 1280×720)
    if args.model != "lucy-2.1":
        width, height = model.width, model.height
    frames = Frames(width, height, 30)
    probe = Probe(frames)
    source = rtc.VideoSource(width, height)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    readers: list[asyncio.Task[None]] = []

    async def read(remote: Any) -> None:
        stream = rtc.VideoStream(remote, format=rtc.VideoBufferType.RGBA)
        try:
            async for event in stream:
                frame = event.frame
                probe.frame(np.frombuffer(frame.data, dtype=np.uint8).reshape(frame.height, frame.width, 4))
        finally:
            await stream.aclose()

    async def pump(stop: asyncio.Event) -> None:
        start = time.monotonic()
        n = 0
        while not stop.is_set():
            rgba = cv2.cvtColor(frames.next(), cv2.COLOR_BGR2RGBA)
            source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, rgba.reshape(-1).data))
            n += 1
            await asyncio.sleep(max(0.0, start + n / 30 - time.monotonic()))

    client = _client(args.url)
    stop = asyncio.Event()
    pumping = asyncio.ensure_future(pump(stop))
    try:
        realtime = await asyncio.wait_for(
            _connect(
                client,
                KEY,
                track,
                lambda t: readers.append(asyncio.ensure_future(read(t))),
                prompt="anime",
                model=args.model,
            ),
            60,
        )
        await probe.measure(realtime.set_prompt, args.seconds, 30)
        await realtime.disconnect()
    finally:
        stop.set()
        await pumping
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await client.close()
    return {"scenario": "bench", "sdk": version("decart"), "transport": "livekit", "codec": "h264", **probe.result()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="decart serve's http://HOST:PORT")
    parser.add_argument("scenario", choices=("stream", "restart", "rejected", "bench"))
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of camera frames")
    parser.add_argument("--model", default="lucy-2.1", help="bench: the model")
    args = parser.parse_args()
    scenario = {"stream": stream, "restart": restart, "rejected": rejected, "bench": bench}[args.scenario]
    result = asyncio.run(scenario(args))
    print(json.dumps(result), flush=True)
    # livekit 1.2.1's native threads can abort the interpreter's teardown after a clean end
    # ("thread caused non-unwinding panic. aborting.", seen in CI after a restart scenario);
    # the findings are printed and the client closed, so leave without it (as `decart stream` does).
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
