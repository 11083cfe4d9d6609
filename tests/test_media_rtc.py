"""The outgoing track through two real aiortc peers on loopback: size, mirroring and marker survive VP8."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from decart_cli.media import marker
from decart_cli.media.source import MirrorMode, SourceSpec, open_source
from decart_cli.media.synthetic import LEFT_BAR_WIDTH

W, H, FPS = 1088, 624, 30
NO_ICE_SERVERS = RTCConfiguration(iceServers=[])  # aiortc would otherwise ask Google's STUN server


@pytest.mark.slow
async def test_test_source_over_aiortc_loopback() -> None:
    """Mirrored, marker-stamped test frames arrive at 1088×624 with the bar on the right and readable ids."""
    src = open_source(
        SourceSpec.parse("test", None), width=W, height=H, fps=FPS, mirror=MirrorMode.ON, stamp_marker=True
    )
    sender, receiver = RTCPeerConnection(NO_ICE_SERVERS), RTCPeerConnection(NO_ICE_SERVERS)
    got: list[tuple[float, object]] = []
    done = asyncio.Event()

    async def consume(track: MediaStreamTrack) -> None:
        while len(got) < 25:
            frame = await track.recv()
            got.append((time.perf_counter(), frame))
        done.set()

    tasks: list[asyncio.Task[None]] = []
    receiver.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track))))
    try:
        sender.addTrack(src.track)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        async with asyncio.timeout(30):
            await done.wait()
    finally:
        for task in tasks:
            task.cancel()
        await sender.close()
        await receiver.close()
        src.close()
    frames = [f.to_ndarray(format="bgr24") for _, f in got[5:]]  # type: ignore[attr-defined]
    assert {img.shape for img in frames} == {(H, W, 3)}
    ids = [marker.read(img) for img in frames]
    readable = [i for i in ids if i is not None]
    assert len(readable) >= len(frames) * 0.8
    latencies = [
        (t - src.marker_sent[i]) * 1000 for (t, _), i in zip(got[5:], ids, strict=True) if i in src.marker_sent
    ]
    print(
        f"\nloopback VP8: {len(readable)}/{len(frames)} markers read, median encode→decode "
        f"{sorted(latencies)[len(latencies) // 2]:.0f} ms, sent {src.frames_sent}, dropped {src.frames_dropped}"
    )
    last = frames[-1]
    mid = last[100:-100]
    right_red = mid[:, -LEFT_BAR_WIDTH + 4 : -4, 2].mean() - mid[:, -LEFT_BAR_WIDTH + 4 : -4, 0].mean()
    left_red = mid[:, 4 : LEFT_BAR_WIDTH - 4, 2].mean() - mid[:, 4 : LEFT_BAR_WIDTH - 4, 0].mean()
    assert right_red > 120 > left_red  # the picture is mirrored; the marker (top-left) is not
