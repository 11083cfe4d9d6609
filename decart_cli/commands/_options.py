"""Option types shared by several commands (connection target, credentials, output format)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "ApiKeyFileOpt",
    "ApiKeyOpt",
    "BaseUrlOpt",
    "JsonOpt",
    "LatencyOpt",
    "LocalOpt",
    "RealtimeUrlOpt",
    "TokenOpt",
]

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
