"""Test helpers for driving the emulator: a raw WebSocket client and a minimal aiortc offerer.

Deliberately independent of decart_cli's own client code, so the emulator is checked against the
wire protocol rather than against our implementation of it.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import av
import cv2
import numpy as np
import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

T = 5.0 * float(os.environ.get("DECART_TIMEOUT_FACTOR", "1"))  # default per-wait deadline, seconds


async def open_ws(
    base: str,
    *,
    key: str = "test-key-123456",
    model: str = "lucy-2.1",
    headers: dict[str, str] | None = None,
    query: str = "",
) -> Any:
    """Open ``/v1/stream`` like an SDK does (query ``api_key`` and ``model``, then ``query``)."""
    url = f"{base}/v1/stream?api_key={key}&model={model}{query}&user_agent=tests"
    return await websockets.connect(url, max_size=None, additional_headers=headers, open_timeout=T)


async def recv_json(
    ws: Any,
    timeout: float = T,  # noqa: ASYNC109 - a plain deadline helper for tests
    *,
    skip_noise: bool = False,
) -> dict[str, Any]:
    """The next JSON object frame; with ``skip_noise`` non-object / binary / typeless frames are skipped."""
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout)
        if skip_noise:
            if isinstance(raw, bytes):
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) or obj["type"] == "emulator_noise":
                continue
            return obj
        obj = json.loads(raw)
        assert isinstance(obj, dict)
        return obj


async def recv_until(
    ws: Any,
    kind: str,
    timeout: float = T,  # noqa: ASYNC109 - a plain deadline helper for tests
    *,
    skip_noise: bool = False,
) -> dict[str, Any]:
    """Skip frames until one of ``type == kind`` arrives."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        msg = await recv_json(ws, max(0.01, deadline - loop.time()), skip_noise=skip_noise)
        if msg["type"] == kind:
            return msg


def stamp(img: np.ndarray, value: int) -> None:
    """Write 16 bits as 8×8 black/white blocks into the top-left 64×16 pixels (latency-marker.md layout)."""
    for bit in range(16):
        row, col = divmod(bit, 8)
        on = (value >> (15 - bit)) & 1
        img[row * 8 : row * 8 + 8, col * 8 : col * 8 + 8] = 255 if on else 0


def read_stamp(img: np.ndarray) -> int:
    """Read back what :func:`stamp` wrote (inner 4×4 pixels of each block, mean luma > 128)."""
    value = 0
    for bit in range(16):
        row, col = divmod(bit, 8)
        block = img[row * 8 + 2 : row * 8 + 6, col * 8 + 2 : col * 8 + 6]
        value = (value << 1) | int(block.mean() > 128)
    return value


class PatternTrack(VideoStreamTrack):
    """Synthetic camera: a moving gradient with ``marker`` stamped top-left; counts frames sent.

    Frames are built directly as yuv420p (what aiortc's encoders take), so the track costs well
    under a millisecond per frame and the tests measure the emulator, not numpy.
    """

    def __init__(self, width: int, height: int, marker: int = 0xA5C3) -> None:
        super().__init__()
        self.width, self.height, self.marker = width, height, marker
        self.sent = 0
        x = np.linspace(0, 255, width, dtype=np.float32)
        y = np.linspace(0, 255, height, dtype=np.float32)
        bgr = np.stack(np.broadcast_arrays(x[None, :], y[:, None], (x[None, :] + y[:, None]) / 2), axis=-1)
        self.base = cv2.cvtColor(bgr.astype(np.uint8), cv2.COLOR_BGR2YUV_I420)
        for bit in range(16):  # the marker: luma 255/0 blocks with neutral chroma
            row, col = divmod(bit, 8)
            on = (marker >> (15 - bit)) & 1
            self.base[row * 8 : row * 8 + 8, col * 8 : col * 8 + 8] = 255 if on else 0
        uv = self.base[height:].reshape(2, height // 2, width // 2)
        uv[:, :8, :32] = 128

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = self.base.copy()
        img[16 : self.height] += np.uint8((self.sent * 4) % 256)  # moving content below the marker rows
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        return frame


class Offerer:
    """A minimal aiortc client peer: offer over ``ws``, apply the answer, collect remote frames."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.pc = RTCPeerConnection()  # no ICE servers: loopback only
        self.pc.addTrack(track)
        self.frames: list[av.VideoFrame] = []
        self._reader: asyncio.Task[None] | None = None

        @self.pc.on("track")
        def on_track(remote: MediaStreamTrack) -> None:
            self._reader = asyncio.ensure_future(self._read(remote))

    async def _read(self, remote: MediaStreamTrack) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                self.frames.append(await remote.recv())
        except MediaStreamError:
            return

    async def offer(self, ws: Any) -> None:
        """Send the offer (candidates embedded) on ``ws``."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await ws.send(json.dumps({"type": "offer", "sdp": self.pc.localDescription.sdp}))

    async def accept(self, answer: dict[str, Any]) -> None:
        """Apply the server's ``answer`` message."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def wait_frames(
        self,
        count: int,
        timeout: float = T,  # noqa: ASYNC109 - a plain deadline helper for tests
    ) -> None:
        """Wait until at least ``count`` remote frames arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.frames) < count:
            if loop.time() > deadline:
                raise AssertionError(f"only {len(self.frames)} of {count} frames arrived")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Close the peer and stop the reader."""
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


__all__ = ["T", "Offerer", "PatternTrack", "open_ws", "read_stamp", "recv_json", "recv_until", "stamp"]
