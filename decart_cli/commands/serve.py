"""``decart serve``: run the local emulator of Decart's realtime API until SIGINT/SIGTERM.

stdout gets exactly one line, ``decart serve listening on http://HOST:PORT`` (scripts read the port
from it, which matters with ``--port 0``); one log line per session event goes to stderr, never a
key. On SIGINT or SIGTERM every session gets ``generation_ended`` and a close frame, then the
command exits 0: a requested shutdown of a server is its normal end, not an error.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from decart_cli.config import register_secret
from decart_cli.errors import DecartError, UsageError
from decart_cli.ui.console import streams

__all__ = ["register"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _error_after(value: str | None) -> tuple[float, str] | None:
    if value is None:
        return None
    from decart_cli.emulator.faults import parse_error_after

    try:
        return parse_error_after(value)
    except ValueError as exc:
        raise typer.BadParameter(f"expected 'SECONDS MESSAGE', e.g. '5 insufficient_credits' ({value!r})") from exc


def _on_off(option: str, value: str) -> bool:
    v = value.strip().lower()
    if v not in ("on", "off"):
        raise UsageError(f"{option} {value!r} is not one of on, off")
    return v == "on"


def serve(
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to bind. Keep it on loopback.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", min=0, max=65535, help="TCP port; 0 picks a free one.")
    ] = 8787,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            metavar="KEY",
            help="Accept only this API key (default: any non-empty key).",
            show_default=False,
        ),
    ] = None,
    drop_after: Annotated[
        float | None,
        typer.Option(
            "--drop-after",
            metavar="S",
            min=0.0,
            help="Abort socket and peer S seconds after the answer (network loss).",
        ),
    ] = None,
    drop_connections: Annotated[
        int,
        typer.Option("--drop-connections", metavar="K", min=1, help="How many answered sessions --drop-after hits."),
    ] = 1,
    reject_first: Annotated[
        int,
        typer.Option(
            "--reject-first", metavar="N", min=0, help="Refuse the first N connections: 'Server at capacity', 1013."
        ),
    ] = 0,
    ack_delay: Annotated[
        int,
        typer.Option("--ack-delay", metavar="MS", min=0, help="Delay every prompt/set_image ack by MS milliseconds."),
    ] = 0,
    no_ack: Annotated[bool, typer.Option("--no-ack", help="Never acknowledge prompt or set_image.")] = False,
    error_after: Annotated[
        str | None,
        typer.Option(
            "--error-after",
            metavar="S MESSAGE",
            help="'S MESSAGE': send error MESSAGE S seconds after connect, then end.",
        ),
    ] = None,
    garbage: Annotated[
        bool, typer.Option("--garbage", help="Interleave malformed, unknown and binary frames between real messages.")
    ] = False,
    tick_interval: Annotated[
        float, typer.Option("--tick-interval", metavar="S", min=0.01, help="Seconds between generation_tick messages.")
    ] = 1.0,
    queue: Annotated[
        int,
        typer.Option(
            "--queue",
            metavar="N",
            min=0,
            help="LiveKit era: N queue_position updates (N..1, one a second, with status) before the room info.",
        ),
    ] = 0,
    republish_after: Annotated[
        float | None,
        typer.Option(
            "--republish-after",
            metavar="S",
            min=0.0,
            help="LiveKit era: unpublish and republish the output track S seconds after it first appears.",
        ),
    ] = None,
    lk_drop_after: Annotated[
        float | None,
        typer.Option(
            "--lk-drop-after",
            metavar="S",
            min=0.0,
            help="LiveKit era: the media room fails S seconds after the client joins it; /v1/stream lives on.",
        ),
    ] = None,
    lk_single_pc: Annotated[
        str,
        typer.Option(
            "--lk-single-pc",
            metavar="on|off",
            help="Serve /rtc/v1 (one peer connection); 'off' answers it 404 so clients use /rtc (two).",
        ),
    ] = "on",
    loopback_only: Annotated[
        bool,
        typer.Option(
            "--loopback-only",
            envvar="DECART_SERVE_LOOPBACK_ONLY",
            help="Offer only 127.0.0.1 ICE candidates (tests, namespaces); off: reachable from this machine's address.",
        ),
    ] = False,
) -> None:
    """Run a local emulator of the realtime API (/v1/stream, POST /v1/client/tokens, a LiveKit stand-in)."""
    from decart_cli.emulator.server import EmulatorConfig

    if api_key is not None:
        if not api_key.strip():
            raise UsageError("--api-key must not be empty", hint="omit it to accept any non-empty key")
        register_secret(api_key)
    if host not in _LOOPBACK:
        streams.warn(f"binding {host}: the emulator has no real security; keep it on loopback")
    config = EmulatorConfig(
        host=host,
        port=port,
        api_key=api_key,
        drop_after=drop_after,
        drop_connections=drop_connections,
        reject_first=reject_first,
        ack_delay_ms=ack_delay,
        no_ack=no_ack,
        error_after=_error_after(error_after),
        garbage=garbage,
        tick_interval=tick_interval,
        queue=queue,
        republish_after=republish_after,
        lk_drop_after=lk_drop_after,
        lk_single_pc=_on_off("--lk-single-pc", lk_single_pc),
        loopback_only=loopback_only,
    )
    _attach_session_log()
    from decart_cli.emulator.options import LISTENING_LINE
    from decart_cli.emulator.runner import run_until_signal

    try:
        run_until_signal(config, on_listening=lambda url: streams.line(LISTENING_LINE.format(url=url)))
    except OSError as exc:
        raise DecartError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another port with --port, or --port 0 for a free one",
        ) from exc


def _attach_session_log() -> None:
    """Session events (INFO) reach stderr even when the root logger shows warnings only.

    Records still propagate to the root handlers (``--log-file`` gets them too); the extra stderr
    handler only passes what the root's stderr handler would drop, so nothing is printed twice.
    """
    from decart_cli.logs import RedactingFilter

    root = logging.getLogger()
    log = logging.getLogger("decart_cli.emulator")
    log.setLevel(min(logging.INFO, root.level or logging.INFO))
    if any(getattr(h, "_decart_serve", False) for h in log.handlers):
        return
    stderr_levels = [h.level for h in root.handlers if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr]
    threshold = min(stderr_levels, default=logging.CRITICAL + 1)
    if threshold <= logging.INFO:
        return  # -v / --debug: the root handler already prints every session event
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s serve: %(message)s", "%H:%M:%S"))
    handler.setLevel(logging.INFO)
    handler.addFilter(RedactingFilter())
    handler.addFilter(lambda record: record.levelno < threshold)
    handler._decart_serve = True  # type: ignore[attr-defined]
    log.addHandler(handler)


def register(root: typer.Typer) -> None:
    """Attach ``serve`` to the root app."""
    root.command("serve")(serve)
