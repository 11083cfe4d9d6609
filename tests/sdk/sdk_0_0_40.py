"""Drive ``decart serve`` with the official direct-era SDK, ``decart==0.0.40`` (unchanged), as a subprocess.

Runs with ``.venv-sdk/0.0.40/bin/python`` (aiortc, numpy and OpenCV live there):

    python tests/sdk/sdk_0_0_40.py --url http://127.0.0.1:PORT SCENARIO [--key-file FILE]

Scenarios (each prints one JSON object as its last stdout line):
    stream     mint a client token, connect with it, set_prompt, set(image), stream, disconnect
    faults     connect through --reject-first/--garbage/--ack-delay, set_prompt, get frames
    rejected   connect with the key in --key-file (expired token / wrong model): the error, one attempt
    reconnect  connect; the emulator drops the session; report the states the SDK went through
    viewer     a producer session and a subscribe() viewer of it; frames the viewer got
    bench      the benchmark job (bench_job.py) for --seconds: the CLI's test pattern as bgr24 frames
               from a paced track, every received frame read with to_ndarray(bgr24), marker latency,
               set_prompt round trips, this process's CPU and peak RSS (scripts/bench.py compares)

This process is the harness, so it may set itself up (the SDK stays unchanged): aioice offers
127.0.0.1 only (decart_cli/transport/ice.py, process-wide), and name lookups other than loopback
fail at once (the SDK hard-codes Google's STUN server; no packet may leave 127.0.0.0/8).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import socket
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parents[1])]
from emulator_client import PatternTrack, T, read_stamp  # noqa: E402 - tests/, put on the path above

from decart_cli.transport.ice import offer_loopback_only  # noqa: E402 - the repository root, on the path above

KEY = "test-key-123456"
STREAM_SECONDS = 4.0
_real_getaddrinfo = socket.getaddrinfo


def _loopback_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Resolve IP literals and localhost only; every other name fails at once, without a query."""
    name = host.decode() if isinstance(host, bytes) else str(host)
    if host is not None and name not in ("localhost", "ip6-localhost"):
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: the harness resolves loopback only") from None
    return _real_getaddrinfo(host, *args, **kwargs)


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

    def on_remote_stream(self, track: Any) -> None:
        self.task = asyncio.ensure_future(self._read(track))

    async def _read(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.first_at = self.first_at or time.monotonic()
                self.frames += 1
                self.sizes.add((frame.width, frame.height))
                self.last = frame

    async def wait(self, count: int, timeout: float) -> None:  # noqa: ASYNC109 - a plain deadline
        deadline = time.monotonic() + timeout
        while self.frames < count and time.monotonic() < deadline:  # noqa: ASYNC110 - filled by a task
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def stamp(self) -> int | None:
        return read_stamp(self.last.to_ndarray(format="bgr24")) if self.last is not None else None


async def _connect(base: str, key: str, model_name: str, track: Any, **state: Any) -> Any:
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
            model=models.realtime(model_name),
            on_remote_stream=state.get("on_remote_stream", lambda _t: None),
            initial_state=initial,
        ),
    )


async def stream(args: argparse.Namespace) -> dict[str, Any]:
    from decart import DecartClient, models
    from decart.realtime.client import SetInput

    ws = "ws" + args.url[len("http") :]
    timings: dict[str, float] = {}
    states: list[str] = []
    errors: list[str] = []
    ticks: list[float] = []
    client = DecartClient(api_key=KEY, base_url=args.url, realtime_base_url=ws)
    try:
        token = await client.tokens.create(expires_in=120, allowed_models=["lucy-2.1"])
        model = models.realtime("lucy-2.1")
        track = PatternTrack(model.width, model.height)
        counter = RemoteCounter()
        start = time.monotonic()
        realtime = await asyncio.wait_for(
            _connect(
                ws, token.api_key, "lucy-2.1", track, prompt="anime hero", on_remote_stream=counter.on_remote_stream
            ),
            6 * T,
        )
        timings["connect"] = time.monotonic() - start
        realtime.on("connection_change", states.append)
        realtime.on("error", lambda e: errors.append(str(e)))
        realtime.on("generation_tick", lambda msg: ticks.append(msg.seconds))
        session_id = realtime.session_id
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
        sent, received = track.sent, counter.frames
        t0 = time.monotonic()
        await realtime.disconnect()
        timings["disconnect"] = time.monotonic() - t0
        await counter.stop()
    finally:
        await client.close()
    return {
        "scenario": "stream",
        "token_prefix": token.api_key[:3],
        "permissions": token.permissions,
        "session_id": session_id,
        "sent": sent,
        "received": received,
        "sizes": sorted(counter.sizes),
        "stamp": counter.stamp(),
        "marker": track.marker,
        "first_frame_s": round(counter.first_at - start, 3) if counter.first_at else None,
        "timings_ms": {k: round(v * 1000) for k, v in timings.items()},
        "states": states,
        "errors": errors,
        "ticks": ticks,
    }


async def faults(args: argparse.Namespace) -> dict[str, Any]:
    ws = "ws" + args.url[len("http") :]
    counter = RemoteCounter()
    track = PatternTrack(1088, 624)
    realtime = await asyncio.wait_for(
        _connect(ws, KEY, "lucy-2.1", track, prompt="neon city", on_remote_stream=counter.on_remote_stream), 6 * T
    )
    try:
        await realtime.set_prompt("film noir")
        await counter.wait(10, 3 * T)
    finally:
        await realtime.disconnect()
        await counter.stop()
    return {"scenario": "faults", "received": counter.frames}


async def rejected(args: argparse.Namespace) -> dict[str, Any]:
    from decart.errors import WebRTCError

    ws = "ws" + args.url[len("http") :]
    key = args.key
    t0 = time.monotonic()
    try:
        realtime = await asyncio.wait_for(_connect(ws, key, "lucy-2.1", PatternTrack(64, 32)), 3 * T)
    except WebRTCError as exc:
        return {"scenario": "rejected", "error": str(exc), "seconds": round(time.monotonic() - t0, 2)}
    await realtime.disconnect()
    return {"scenario": "rejected", "error": None}


async def reconnect(args: argparse.Namespace) -> dict[str, Any]:
    ws = "ws" + args.url[len("http") :]
    counter = RemoteCounter()
    states: list[str] = []
    realtime = await asyncio.wait_for(
        _connect(
            ws, KEY, "lucy-2.1", PatternTrack(1088, 624), prompt="anime", on_remote_stream=counter.on_remote_stream
        ),
        6 * T,
    )
    realtime.on("connection_change", states.append)
    try:
        deadline = time.monotonic() + 4 * T
        while time.monotonic() < deadline and not (  # noqa: ASYNC110 - SDK callbacks fill states
            "reconnecting" in states and states[-1] in ("connected", "generating")
        ):
            await asyncio.sleep(0.05)
        before_disconnect = list(states)
    finally:
        await realtime.disconnect()
        await counter.stop()
    return {"scenario": "reconnect", "states": before_disconnect}


async def viewer(args: argparse.Namespace) -> dict[str, Any]:
    from decart.realtime.client import RealtimeClient
    from decart.realtime.subscribe import SubscribeOptions

    ws = "ws" + args.url[len("http") :]
    track = PatternTrack(1088, 624)
    producer = await asyncio.wait_for(_connect(ws, KEY, "lucy-2.1", track, prompt="thermal"), 6 * T)
    watched = RemoteCounter()
    try:
        token = producer.subscribe_token
        watcher = await asyncio.wait_for(
            RealtimeClient.subscribe(
                base_url=ws,
                api_key=KEY,
                options=SubscribeOptions(token=token, on_remote_stream=watched.on_remote_stream),
            ),
            6 * T,
        )
        try:
            await watched.wait(10, 3 * T)
        finally:
            await watcher.disconnect()
    finally:
        await producer.disconnect()
        await watched.stop()
    return {
        "scenario": "viewer",
        "had_token": bool(token),
        "received": watched.frames,
        "sizes": sorted(watched.sizes),
        "stamp": watched.stamp(),
        "marker": track.marker,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark job through SDK 0.0.40, measured as ``decart bench`` measures itself."""
    from aiortc import VideoStreamTrack
    from aiortc.mediastreams import MediaStreamError
    from bench_job import Frames, Probe
    from decart import models

    model = models.realtime(args.model)
    frames = Frames(model.width, model.height, model.fps)
    probe = Probe(frames)

    class Camera(VideoStreamTrack):
        """A paced 30 fps track of the test pattern, handed to aiortc as bgr24 (as OpenCV gives frames)."""

        async def recv(self) -> Any:
            import av

            pts, time_base = await self.next_timestamp()
            frame = av.VideoFrame.from_ndarray(frames.next(), format="bgr24")
            frame.pts, frame.time_base = pts, time_base
            return frame

    readers: list[asyncio.Task[None]] = []

    async def read(track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                probe.frame(frame.to_ndarray(format="bgr24"))

    ws = "ws" + args.url[len("http") :]
    realtime = await asyncio.wait_for(
        _connect(
            ws,
            KEY,
            args.model,
            Camera(),
            prompt="anime",
            on_remote_stream=lambda t: readers.append(asyncio.ensure_future(read(t))),
        ),
        6 * T,
    )
    try:
        await probe.measure(realtime.set_prompt, args.seconds, 6 * T)
    finally:
        await realtime.disconnect()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return {"scenario": "bench", "sdk": version("decart"), "transport": "webrtc", "codec": "vp8", **probe.result()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="decart serve's http://HOST:PORT")
    parser.add_argument("scenario", choices=("stream", "faults", "rejected", "reconnect", "viewer", "bench"))
    parser.add_argument("--key-file", help="rejected: a file holding the key to connect with")
    parser.add_argument("--seconds", type=float, default=20.0, help="bench: seconds from the first remote frame")
    parser.add_argument("--model", default="lucy-2.1", help="bench: the model")
    args = parser.parse_args()
    args.key = Path(args.key_file).read_text().strip() if args.key_file else None
    socket.getaddrinfo = _loopback_getaddrinfo
    offer_loopback_only()
    scenario = {
        "stream": stream,
        "faults": faults,
        "rejected": rejected,
        "reconnect": reconnect,
        "viewer": viewer,
        "bench": bench,
    }
    result = asyncio.run(scenario[args.scenario](args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
