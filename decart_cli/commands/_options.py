"""Option types shared by several commands (connection target, credentials, output format)."""

from __future__ import annotations

from typing import Annotated

import typer

from decart_cli.config import Settings, load_settings

__all__ = [
    "ApiKeyFileOpt",
    "ApiKeyOpt",
    "BaseUrlOpt",
    "JsonOpt",
    "LocalOpt",
    "RealtimeUrlOpt",
    "TokenOpt",
    "settings_from",
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
        help="Connect with a short-lived client token (ek_…) instead of the API key. [env: DECART_TOKEN]",
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
        help="Realtime WebSocket base URL. [env: DECART_REALTIME_URL; default wss://api3.decart.ai]",
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


def settings_from(
    *,
    api_key: str | None = None,
    api_key_file: str | None = None,
    token: str | None = None,
    base_url: str | None = None,
    realtime_url: str | None = None,
    local: bool = False,
) -> Settings:
    """Build :class:`Settings` from the shared options (precedence in ``config.py``)."""
    return load_settings(
        api_key=api_key,
        api_key_file=api_key_file,
        token=token,
        base_url=base_url,
        realtime_url=realtime_url,
        local=local,
    )
