"""``decart bench``: frame rate, latency and cost of ``decart stream``'s own code path, measured.

Runs ``--sessions`` concurrent stream sessions (the stream command's runner, the synthetic test
camera at the model's size and fps) for ``--duration`` seconds from the first remote frame, then
prints a table (or one JSON document with ``--json``): frames sent and received per second, whether
each session held ≥ 29 fps, glass-to-glass p50/p95/p99, connect → first remote frame, the prompt
acknowledgement round trip, this process's CPU seconds per second and peak RSS. ``--local`` uses a
running ``decart serve`` or starts one as a child. See :mod:`decart_cli.runtime.bench`.

Exit codes: 0 every session measured; 1 a session failed (connection, server error, no frame);
2 bad input; 3 key rejected; 130/143 interrupted.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal, cast

import typer

from decart_cli.commands import _local
from decart_cli.commands._options import (
    LATENCY_VALUES,
    TRANSPORT_VALUES,
    ApiKeyFileOpt,
    ApiKeyOpt,
    BaseUrlOpt,
    CodecOpt,
    JsonOpt,
    LatencyOpt,
    LocalOpt,
    RealtimeUrlOpt,
    TokenOpt,
    TransportOpt,
    choice,
    codec_for,
)
from decart_cli.core import catalog
from decart_cli.errors import UsageError
from decart_cli.ui.console import streams

__all__ = ["bench", "register"]

MAX_SESSIONS = 16


def bench(
    model: Annotated[
        str, typer.Option("--model", "-m", metavar="NAME", help="Realtime model (its size and fps are used).")
    ] = "lucy-2.1",
    transport: TransportOpt = "livekit",
    codec: CodecOpt = None,
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            "-d",
            metavar="SECONDS",
            help="Seconds per session from its first remote frame (measured after the first 2 s).",
        ),
    ] = 20.0,
    sessions: Annotated[
        int,
        typer.Option(
            "--sessions",
            "-n",
            metavar="N",
            help=f"Concurrent sessions (1-{MAX_SESSIONS}); each says whether it held ≥ 29 fps.",
        ),
    ] = 1,
    latency: LatencyOpt = "auto",
    as_json: JsonOpt = False,
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    realtime_url: RealtimeUrlOpt = None,
    local: LocalOpt = False,
) -> None:
    """Measure stream sessions: fps, glass-to-glass latency, connect time, prompt acks, CPU, memory.

    Uses the same code as 'decart stream' with the synthetic test camera. A progress bar on a
    terminal; a table at the end, or one JSON document with --json.
    """

    resolved = catalog.resolve(model)
    if resolved.notice:
        streams.warn(resolved.notice)
    transport_value = choice("--transport", transport, TRANSPORT_VALUES)
    codec_value = codec_for(codec, transport_value)
    latency_value = choice("--latency", latency, LATENCY_VALUES)
    if not duration >= 3:
        raise UsageError(f"--duration {duration:g} is too short", hint="give 3 seconds or more (20 by default)")
    if not 1 <= sessions <= MAX_SESSIONS:
        raise UsageError(f"--sessions {sessions} is out of range", hint=f"give 1 to {MAX_SESSIONS}")
    code = 0
    with _local.session_settings(
        api_key=api_key,
        api_key_file=api_key_file,
        token=token,
        base_url=base_url,
        realtime_url=realtime_url,
        local=local,
        purpose="to measure against the local emulator",
    ) as settings:
        from decart_cli.runtime.bench import BenchOptions, run_bench

        options = BenchOptions(
            settings=settings,
            model=resolved,
            transport=cast(Literal["livekit", "webrtc"], transport_value),
            codec=codec_value,
            duration=duration,
            sessions=sessions,
            latency=latency_value,
        )
        progress = None
        if not as_json and streams.stderr_isatty:
            from decart_cli.ui.bench_view import BenchBar

            progress = BenchBar(streams, sessions)
        report = asyncio.run(run_bench(options, streams, progress))
        doc = report.to_json()
        if as_json:
            streams.json(doc)
        else:
            from decart_cli.ui.bench_view import print_report

            print_report(streams, doc)
        code = int(report.status)
    _leave(code)


def _leave(code: int) -> None:
    """Exit with ``code``; after a LiveKit run, skipping the native SDK's teardown (as ``decart stream``).

    Everything is printed and the emulator child stopped by now (:func:`~decart_cli.runtime.leave.leave`).
    """
    from decart_cli.runtime.leave import leave, livekit_ran

    if livekit_ran():
        import logging

        leave(code, (), logging.getLogger(__name__))
    if code:
        raise typer.Exit(code)


def register(root: typer.Typer) -> None:
    """Attach ``bench`` to the root app."""
    root.command("bench")(bench)
