"""Configuration of the emulator: :class:`EmulatorConfig` (the ``decart serve`` flags) and output sizes."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from decart_cli.core import catalog

__all__ = ["LISTENING_LINE", "EmulatorConfig", "listening_url", "merge_config", "output_size"]

# The one line `decart serve` prints on stdout once the port is bound; scripts and --local read it.
LISTENING_LINE: Final = "decart serve listening on {url}"
_LISTENING = re.compile(r"decart serve listening on (https?://[^\s:/]+:\d+)")


def listening_url(text: str) -> str | None:
    """The ``http://HOST:PORT`` announced in ``text`` (serve's stdout so far), or ``None`` yet."""
    match = _LISTENING.search(text)
    return match.group(1) if match else None


@dataclass
class EmulatorConfig:
    """Everything ``decart serve`` can be told (flags of the same names).

    Attributes:
        host: address to bind (loopback by default; nothing here is meant for a network).
        port: TCP port; 0 picks a free one (read it back from ``Emulator.port``).
        api_key: the only permanent key accepted; ``None`` accepts any non-empty key.
        drop_after: abort socket and peer this many seconds after the answer, for the first
            ``drop_connections`` answered sessions.
        reject_first: the first N connections get "Server at capacity..." and close code 1013.
        ack_delay_ms: delay every ack by this much (order is kept).
        no_ack: never acknowledge prompt / set_image.
        error_after: ``(seconds, message)``: send ``error`` this long after connect, then end.
        garbage: interleave malformed / unknown / binary frames before every real message.
        tick_interval: seconds between ``generation_tick``s; each tick bills one more second.
        queue: LiveKit era: N ``queue_position`` updates (N … 1, with ``status`` messages) before
            the room info.
        queue_interval: seconds between queue updates.
        republish_after: LiveKit era: unpublish and republish the output track this many seconds
            after it was first published (a generation restart; clients must re-attach).
        lk_drop_after: LiveKit era: the media room fails this many seconds after the client joined
            it (signal socket cut, participant removed, rejoin refused); the control socket lives on.
        lk_single_pc: serve ``/rtc/v1`` (single peer connection, livekit 1.2.1's default); ``False``
            answers it 404 so clients fall back to ``/rtc`` (two peer connections).
        loopback_only: make aiortc offer 127.0.0.1 as its only ICE candidate (process-wide, see
            :mod:`decart_cli.transport.ice`). Off by default, so that a ``livekit`` client outside a
            network namespace (libwebrtc never uses loopback) can reach the machine's own address.
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    drop_after: float | None = None
    drop_connections: int = 1
    reject_first: int = 0
    ack_delay_ms: int = 0
    no_ack: bool = False
    error_after: tuple[float, str] | None = None
    garbage: bool = False
    tick_interval: float = 1.0
    queue: int = 0
    queue_interval: float = 1.0
    republish_after: float | None = None
    lk_drop_after: float | None = None
    lk_single_pc: bool = True
    loopback_only: bool = False

    def __repr__(self) -> str:  # the key never shows up in a repr
        shown = ", ".join(
            f"{f.name}={'***' if f.name == 'api_key' and self.api_key else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"EmulatorConfig({shown})"


def output_size(model: catalog.Model, resolution: str | None) -> tuple[int, int] | None:
    """The output frame size for ``resolution`` (``None``/``720p``: the model size; ``1080p``: height 1080).

    ``1080p`` keeps the model's aspect ratio with an even width (lucy-2.1 → 1884 × 1080, as the SDK PR
    expecting that size says); any other value is invalid (``None``).
    """
    if resolution in (None, "", "720p"):
        return model.width, model.height
    if resolution == "1080p":
        width = round(model.width * 1080 / model.height)
        return width + width % 2, 1080
    return None


def merge_config(config: EmulatorConfig | None, overrides: dict[str, Any]) -> EmulatorConfig:
    """A copy of ``config`` (or the defaults) with single fields replaced by ``overrides``.

    Raises:
        TypeError: an override names no ``EmulatorConfig`` field.
    """
    known = {f.name for f in fields(EmulatorConfig)}
    for name in overrides:
        if name not in known:
            raise TypeError(f"unknown EmulatorConfig field {name!r}")
    return replace(config or EmulatorConfig(), **overrides)
