"""Which ICE candidates does ``decart serve`` offer, with and without ``--loopback-only``? (run in a namespace)

    python tests/sdk/serve_candidates.py [--loopback-only]

Starts ``decart serve --port 0 [--loopback-only]``, sends a direct-era receive-only offer from an
aiortc peer (this process offers 127.0.0.1 only), prints the answer's candidates as JSON and
closes without applying the answer: no connectivity check is ever sent.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import websockets
from aiortc import RTCConfiguration, RTCPeerConnection

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from serve_child import start_serve, stop_serve  # noqa: E402 - scripts/, put on the path above

from decart_cli.emulator.livekit.sdp import candidates  # noqa: E402 - the repository root, put on the path above
from decart_cli.transport.ice import offer_loopback_only  # noqa: E402


async def answer_candidates(url: str) -> list[list[object]]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with websockets.connect(f"{url}/v1/stream?api_key=k&model=lucy-2.1", max_size=None) as ws:
            await ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
            while (msg := json.loads(await asyncio.wait_for(ws.recv(), 20)))["type"] != "answer":
                pass
        return [list(c) for c in candidates(msg["sdp"])]
    finally:
        await pc.close()


def main() -> int:
    offer_loopback_only()
    serve, http = start_serve(*sys.argv[1:])
    try:
        found = asyncio.run(answer_candidates("ws" + http[len("http") :]))
    finally:
        stop_serve(serve, 15)
    print(json.dumps({"candidates": found}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
