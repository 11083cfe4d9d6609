"""Keep aiortc's ICE on loopback: offer ``127.0.0.1`` as the only host candidate.

aioice (under aiortc) gathers one host candidate per interface address and **drops 127.0.0.1**
(``aioice.ice.get_host_addresses``), so an aiortc peer talking to a loopback server would offer the
machine's own interface address instead (livekit-local.md §4.1). :func:`offer_loopback_only` swaps
that function for one that returns ``["127.0.0.1"]``.

The switch is **process-wide and permanent**: it patches a module attribute of aioice, so every
``RTCPeerConnection`` created afterwards in this process (client or emulator) offers 127.0.0.1 only,
and there is no way back. Call it only in a process whose every peer talks to loopback: ``decart
stream`` when its realtime URL is loopback (:func:`is_loopback_url`), ``decart serve
--loopback-only``, and the test fixtures. Calling it again is a no-op.

Pass ``RTCConfiguration(iceServers=[])`` as well: without a configuration aiortc falls back to a
public STUN server.
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_ADDRESS", "is_loopback_url", "loopback_only_enabled", "offer_loopback_only"]

LOOPBACK_ADDRESS: Final = "127.0.0.1"
_MARK: Final = "_decart_loopback_only"
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Replacement for ``aioice.ice.get_host_addresses``: 127.0.0.1, nothing else."""
    return [LOOPBACK_ADDRESS] if use_ipv4 else []


setattr(_loopback_host_addresses, _MARK, True)  # noqa: B010 - a marker attribute on a function


def offer_loopback_only() -> None:
    """Make every aiortc peer in this process offer ``127.0.0.1`` as its only host candidate.

    Process-wide and irreversible (see the module docstring); idempotent.
    """
    import aioice.ice

    if getattr(aioice.ice.get_host_addresses, _MARK, False):
        return
    aioice.ice.get_host_addresses = _loopback_host_addresses


def loopback_only_enabled() -> bool:
    """True once :func:`offer_loopback_only` has patched aioice in this process."""
    import sys

    ice = sys.modules.get("aioice.ice")
    return ice is not None and bool(getattr(ice.get_host_addresses, _MARK, False))


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is a loopback address or name (``127.0.0.0/8``, ``::1``, ``localhost``).

    Args:
        url: any URL (``ws://127.0.0.1:8787``, ``https://api.decart.ai``, ``http://[::1]:80/x``).

    Returns:
        False for a missing or non-loopback host, and for text that is not a URL.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.lower().rstrip(".") in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
