"""decart_cli/transport/ice.py: aiortc offers 127.0.0.1 only once switched; loopback URLs are recognised."""

from __future__ import annotations

import re

import pytest

from decart_cli.transport.ice import is_loopback_url, loopback_only_enabled, offer_loopback_only


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("ws://127.0.0.1:8787", True),
        ("http://127.0.0.2:80/v1", True),
        ("ws://localhost:1234/v1/stream", True),
        ("WSS://LOCALHOST.", True),
        ("http://[::1]:8787", True),
        ("wss://api.decart.ai", False),
        ("ws://192.0.2.2:8787", False),
        ("ws://[2001:db8::1]:80", False),
        ("ws://localhost.example.com", False),
        ("not a url", False),
        ("http://[::1", False),
        ("", False),
    ],
)
def test_is_loopback_url(url: str, loopback: bool) -> None:
    """Loopback hosts (127.0.0.0/8, ::1, localhost) are recognised; anything else, or no URL, is not."""
    assert is_loopback_url(url) is loopback


def _host_candidates(sdp: str) -> list[str]:
    return re.findall(r"a=candidate:\S+ \d+ \w+ \d+ (\S+) \d+ typ host", sdp)


async def test_aiortc_offers_only_127_0_0_1_after_the_switch() -> None:
    """After offer_loopback_only() (twice: idempotent) an aiortc offer carries 127.0.0.1 host candidates only."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    offer_loopback_only()
    offer_loopback_only()
    assert loopback_only_enabled()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        hosts = _host_candidates(pc.localDescription.sdp)
    finally:
        await pc.close()
    assert hosts and set(hosts) == {"127.0.0.1"}
