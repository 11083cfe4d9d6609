"""Measure the emulator end to end: ``python -m decart_cli.emulator.bench [--seconds 4] [--model lucy-2.1]``.

Starts ``decart serve --port 0`` in a child process (its own interpreter, as in real use), streams a
synthetic camera at the model's size and 30 fps from an aiortc peer in this process, switches through
the looks, and prints per look: frames sent / received, received fps, and the glass-to-glass latency
read from the frame-id marker (latency-marker.md; the emulator preserves it). Also prints the model's
own milliseconds per frame (``model.benchmark``). A measurement script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from typing import Any, cast

__all__ = ["main"]

LOOKS = (
    ("passthrough", None),
    ("tint", "a watercolor landscape"),
    ("cartoon", "anime hero"),
    ("sketch", "pencil sketch"),
    ("neon", "cyberpunk city"),
)


async def _run(seconds: float, model_name: str) -> list[dict[str, Any]]:
    import av
    import numpy as np
    import websockets
    from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
    from aiortc.mediastreams import MediaStreamError

    from decart_cli.emulator.names import resolve_model
    from decart_cli.emulator.options import listening_url
    from decart_cli.media.marker import read, stamp
    from decart_cli.transport.ice import offer_loopback_only

    found = resolve_model(model_name)
    if found is None:
        raise SystemExit(f"unknown model {model_name!r}")
    model = found
    sent_at: dict[int, float] = {}

    class Camera(VideoStreamTrack):
        def __init__(self) -> None:
            super().__init__()
            self.sent = 0
            rng = np.random.default_rng(0)
            x = np.linspace(0, 255, model.width, dtype=np.float32)[None, :, None]
            y = np.linspace(0, 255, model.height, dtype=np.float32)[:, None, None]
            noise = rng.integers(0, 12, (model.height, model.width, 3)).astype(np.float32)
            self.base = np.clip((x + y) / 2 + noise, 0, 255).astype(np.uint8)  # camera-like content

        async def recv(self) -> av.VideoFrame:
            pts, time_base = await self.next_timestamp()
            img = np.ascontiguousarray(np.roll(self.base, self.sent * 4, axis=1), dtype=np.uint8)
            stamp(img, self.sent)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = pts, time_base
            sent_at[self.sent & 0xFFF] = time.perf_counter()
            self.sent += 1
            return frame

    received: list[tuple[float, float | None]] = []  # (arrival, latency)
    first_frame = asyncio.Event()

    async def read_remote(track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = cast("av.VideoFrame", await track.recv())
                now = time.perf_counter()
                first_frame.set()
                fid = read(np.ascontiguousarray(frame.to_ndarray(format="bgr24")[:16, :64], dtype=np.uint8))
                latency = now - sent_at[fid] if fid is not None and fid in sent_at else None
                received.append((now, latency))

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "decart_cli",
        "serve",
        "--port",
        "0",
        "--loopback-only",  # both peers on 127.0.0.1: never the machine's interface address
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    results: list[dict[str, Any]] = []
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        http_url = listening_url(line)
        if http_url is None:
            raise SystemExit(f"decart serve did not start: {line.strip()!r}")
        url = http_url.replace("http://", "ws://")
        camera = Camera()
        offer_loopback_only()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(camera)
        readers: list[asyncio.Task[None]] = []
        pc.on("track", lambda t: readers.append(asyncio.ensure_future(read_remote(t))))
        async with websockets.connect(f"{url}/v1/stream?api_key=bench&model={model.name}", max_size=None) as ws:

            async def until(kind: str) -> dict[str, Any]:
                while True:
                    msg: dict[str, Any] = json.loads(await ws.recv())
                    if msg["type"] == kind:
                        return msg

            await ws.send(json.dumps({"type": "set_image", "image_data": None, "prompt": None}))
            await until("set_image_ack")
            await pc.setLocalDescription(await pc.createOffer())
            await ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
            answer = await until("answer")
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await asyncio.wait_for(first_frame.wait(), 30)
            await asyncio.sleep(1.0)  # warm-up
            for look, prompt in LOOKS:
                if prompt is None:
                    await ws.send(json.dumps({"type": "set_image", "image_data": None, "prompt": None}))
                else:
                    await ws.send(json.dumps({"type": "prompt", "prompt": prompt, "enhance_prompt": False}))
                await asyncio.sleep(0.5)  # let the switch settle
                sent0, recv0, t0 = camera.sent, len(received), time.perf_counter()
                cpu0 = _cpu_seconds(proc.pid)
                await asyncio.sleep(seconds)
                elapsed = time.perf_counter() - t0
                server_cpu = (_cpu_seconds(proc.pid) - cpu0) / elapsed
                window = received[recv0:]
                lat = sorted(x for _, x in window if x is not None)
                results.append(
                    {
                        "look": look,
                        "sent": camera.sent - sent0,
                        "received": len(window),
                        "fps_received": len(window) / elapsed,
                        "server_cpu": server_cpu,
                        "latency_median_ms": 1000 * statistics.median(lat) if lat else float("nan"),
                        "latency_p90_ms": 1000 * lat[int(0.9 * (len(lat) - 1))] if lat else float("nan"),
                    }
                )
        await pc.close()
        for task in readers:
            task.cancel()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    return results


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (Linux /proc; 0 elsewhere)."""
    import os

    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a measurement script
    """Print model cost per look, then end-to-end fps and latency per look."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="measurement window per look")
    parser.add_argument("--model", default="lucy-2.1")
    args = parser.parse_args(argv)
    from decart_cli.emulator.model import benchmark
    from decart_cli.emulator.names import resolve_model

    model = resolve_model(args.model)
    assert model is not None
    for look, ms in benchmark(model.width, model.height).items():
        print(
            f"model {model.width}x{model.height} {look:12s} {ms:6.2f} ms/frame (full render: I420 copy in, look, overlays, copy out)"
        )
    for row in asyncio.run(_run(args.seconds, model.name)):
        print(
            f"e2e {row['look']:12s} sent {row['sent']:4d} received {row['received']:4d} "
            f"({row['fps_received']:5.1f} fps) latency median {row['latency_median_ms']:6.1f} ms "
            f"p90 {row['latency_p90_ms']:6.1f} ms, decart serve CPU {100 * row['server_cpu']:.0f} %"
        )


if __name__ == "__main__":  # pragma: no cover
    main()
