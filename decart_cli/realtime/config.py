"""What a realtime session is told: :class:`SessionConfig` and the transports' default codecs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from decart_cli.config import Secret, Timeouts
from decart_cli.core import catalog
from decart_cli.core.session import DesiredState, TransportKind
from decart_cli.realtime.transport import TransportOptions
from decart_cli.transport.rtc import DEFAULT_ICE_SERVERS
from decart_cli.transport.signaling import is_loopback

__all__ = ["DEFAULT_CODECS", "SessionConfig"]

# H264 on LiveKit as every LiveKit-era SDK; VP8 on the direct path as the direct-era SDKs.
DEFAULT_CODECS: Final[dict[str, str]] = {"livekit": "h264", "webrtc": "vp8"}


@dataclass(frozen=True)
class SessionConfig:
    """Everything a session needs.

    Attributes:
        realtime_url: the realtime base (``wss://api.decart.ai``; the path is added).
        credential: API key or client token (goes into ``api_key=``; which of the two it is shows in
            its shape, ``Secret.kind``, and decides how a refusal is worded).
        model: the resolved model.
        initial: the initial desired state.
        transport: ``"livekit"`` (today's media path) or ``"webrtc"`` (direct offer/answer).
        codec: ``None`` for the transport's default (:data:`DEFAULT_CODECS`).
        speed: ``"fast"`` for the higher-compute tier (``speed=fast``), else ``None``.
        reconnect: reconnect after unexpected drops.
        max_retries: reconnect attempts before giving up.
        timeouts: every deadline.
        resolution: the ``resolution=`` query parameter, if any.
        ice_servers: direct transport only; ``None`` means none on loopback (nothing to discover,
            and no packet may leave the machine), else Google STUN as the SDKs.
        frame_timing: LiveKit only: ask the server to echo each frame's capture timestamp on the
            output frame made from it (the JS SDK's glass-to-glass measure, decart-protocol-2026-11.md §6).
    """

    realtime_url: str
    credential: Secret
    model: catalog.Resolved
    initial: DesiredState = DesiredState()
    transport: TransportKind = "livekit"
    codec: str | None = None
    speed: str | None = None
    reconnect: bool = True
    max_retries: int = 5
    timeouts: Timeouts = field(default_factory=Timeouts)
    resolution: str | None = None
    ice_servers: tuple[str, ...] | None = None
    frame_timing: bool = False

    def transport_options(self) -> TransportOptions:
        """How media is sent: the codec (or the transport's default) and, for the direct path, ICE
        servers (none on loopback) and whether to offer loopback candidates only."""
        loopback = is_loopback(self.realtime_url)
        ice = self.ice_servers
        if ice is None:
            ice = () if loopback else DEFAULT_ICE_SERVERS
        return TransportOptions(
            codec=self.codec or DEFAULT_CODECS[self.transport],
            ice_servers=ice,
            loopback=loopback,
            frame_timing=self.frame_timing and self.transport == "livekit",
        )
