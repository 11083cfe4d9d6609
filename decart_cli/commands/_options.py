"""Option types shared by several commands (connection target, credentials, output format)."""

from __future__ import annotations

from typing import Annotated

import typer

from decart_cli.errors import UsageError

__all__ = [
    "CODECS_BY_TRANSPORT",
    "CODEC_VALUES",
    "LATENCY_VALUES",
    "TRANSPORT_VALUES",
    "ApiKeyFileOpt",
    "ApiKeyOpt",
    "BaseUrlOpt",
    "CodecOpt",
    "JsonOpt",
    "LatencyOpt",
    "LocalOpt",
    "RealtimeUrlOpt",
    "TokenOpt",
    "TransportOpt",
    "choice",
    "codec_for",
]

TRANSPORT_VALUES = ("livekit", "webrtc")
CODEC_VALUES = ("h264", "vp8", "vp9")
# What each transport can send; its default is realtime.config.DEFAULT_CODECS (a test keeps it listed here).
CODECS_BY_TRANSPORT = {"livekit": ("h264", "vp8", "vp9"), "webrtc": ("vp8", "h264")}
LATENCY_VALUES = ("auto", "marker", "frame-timing")  # runtime.options.LATENCY_MODES (a test keeps them equal)

ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY|-",
        help="API key, or '-' to read it from stdin (a key typed here shows in shell history and ps; "
        "prefer DECART_API_KEY or --api-key-file).",
        show_default=False,
    ),
]
ApiKeyFileOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-file", metavar="FILE", help="Read the API key from this file ('-' for stdin).", show_default=False
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help="Connect with a short-lived client token ('decart token': a JWT or an ek_… key) instead of the API key. "
        "[env: DECART_TOKEN]",
        show_default=False,
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url", metavar="URL", help="REST base URL. [env: DECART_BASE_URL; default https://api.decart.ai]"
    ),
]
RealtimeUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--realtime-url",
        metavar="URL",
        help="Realtime WebSocket base URL. [env: DECART_REALTIME_URL; default wss://api.decart.ai; wss://api3.decart.ai also works]",
    ),
]
LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Use the local emulator ('decart serve', DECART_LOCAL_ADDRESS, default 127.0.0.1:8787); no API key needed.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout and nothing else.")]
LatencyOpt = Annotated[
    str,
    typer.Option(
        "--latency",
        metavar="auto|marker|frame-timing",
        help="How glass-to-glass latency is measured and shown: auto = the frame-id marker when the server is on "
        "this machine (decart serve copies it), else LiveKit frame timing (capture timestamps the server echoes, "
        "as today's JS SDK); marker or frame-timing = only that one. The panel and stats name the measure in use; "
        "'—' when nothing measures it.",
    ),
]

TransportOpt = Annotated[
    str,
    typer.Option(
        "--transport",
        metavar="livekit|webrtc",
        envvar="DECART_TRANSPORT",
        help="Media path: livekit (today's, as the official SDKs) or webrtc (the older direct offer/answer).",
    ),
]
CodecOpt = Annotated[
    str | None,
    typer.Option(
        "--codec",
        metavar="h264|vp8|vp9",
        help="Video codec: h264 (LiveKit default), vp8 (webrtc default) or vp9 (LiveKit only).",
        show_default=False,
    ),
]


def choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` normalised (trimmed, lower case) if it is one of ``allowed``.

    Raises:
        UsageError: naming the option, the value and the allowed ones.
    """
    v = value.strip().lower()
    if v not in allowed:
        raise UsageError(f"{option} {value!r} is not one of {', '.join(allowed)}")
    return v


def codec_for(codec: str | None, transport: str) -> str | None:
    """``--codec`` checked against ``transport``: the normalised value, or ``None`` (the transport's default).

    Raises:
        UsageError: an unknown codec, or one the transport cannot use.
    """
    if codec is None:
        return None
    allowed = CODECS_BY_TRANSPORT[transport]
    value = choice("--codec", codec, CODEC_VALUES)
    if value not in allowed:
        raise UsageError(
            f"--codec {codec!r} is not available with --transport {transport}",
            hint=f"use one of {', '.join(allowed)}, or --transport livekit",
        )
    return value
