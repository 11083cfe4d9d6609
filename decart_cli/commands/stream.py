"""``decart stream``: send a camera (or a file, or a test pattern) to a realtime model, watch the result.

Every input is validated before anything connects (bad values exit 2 with one line naming the
value); then :class:`~decart_cli.runtime.StreamRunner` does the work. ``--local`` uses a running
``decart serve`` on ``DECART_LOCAL_ADDRESS`` or starts one as a child process for the session.

Media goes over LiveKit by default (today's path, decart-protocol-2026-11.md §3); ``--transport
webrtc`` (or ``DECART_TRANSPORT=webrtc``) keeps the direct aiortc offer/answer path of the older SDKs.

Exit codes (:class:`~decart_cli.errors.ExitStatus`): 0 clean end (``--duration``, ``/quit``, end of
``--input`` without ``--loop``, window closed, the token's session limit); 1 connection lost for good / server error;
2 bad input; 3 key or token rejected; 4 camera, file or recorder failure; 129 SIGHUP (the terminal
was closed); 130 SIGINT; 143 SIGTERM. A second signal during the shutdown exits at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
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
from decart_cli.config import Settings
from decart_cli.core import catalog
from decart_cli.core.prompt_queue import PromptState
from decart_cli.core.prompts_file import TimedPrompt, parse_prompts
from decart_cli.errors import UsageError
from decart_cli.ui.console import Streams, streams

__all__ = ["register", "stream"]

MIRROR_VALUES = ("auto", "on", "off")
SPEED_VALUES = catalog.SPEEDS


def stream(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME",
            help="Realtime model (see 'decart models'); aliases and old names accepted.",
        ),
    ] = "lucy-2.1",
    camera: Annotated[
        str | None,
        typer.Option(
            "--camera",
            "-c",
            metavar="SPEC",
            help="Camera: front, back, an index N, /dev/videoN, or test (synthetic pattern).",
        ),
    ] = None,
    input_file: Annotated[
        str | None,
        typer.Option(
            "--input", "-i", metavar="FILE", help="Stream a video file instead of a camera.", show_default=False
        ),
    ] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Restart --input at its end instead of finishing.")] = False,
    list_cameras: Annotated[
        bool, typer.Option("--list-cameras", help="List the cameras found (index, path, name, facing) and exit.")
    ] = False,
    mirror: Annotated[
        str,
        typer.Option("--mirror", metavar="auto|on|off", help="Flip outgoing frames: auto (front cameras), on, off."),
    ] = "auto",
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", "-p", metavar="TEXT", help="Initial prompt (otherwise the input passes through)."),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            metavar="FILE",
            help="Initial reference image (PNG, JPEG or WebP, at most 10 MiB).",
            show_default=False,
        ),
    ] = None,
    no_enhance: Annotated[
        bool, typer.Option("--no-enhance", help="Send prompts as written (no server-side prompt enhancement).")
    ] = False,
    prompts_file: Annotated[
        str | None,
        typer.Option(
            "--prompts",
            metavar="FILE",
            help="Play a timed prompt list: one 'SECONDS TEXT' per line, # comments.",
            show_default=False,
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            "-d",
            metavar="SECONDS",
            help="End cleanly after this many seconds of streaming.",
            show_default=False,
        ),
    ] = None,
    record: Annotated[
        str | None,
        typer.Option(
            "--record",
            "-r",
            metavar="FILE",
            help="Record the received video to FILE (.mp4 or .webm).",
            show_default=False,
        ),
    ] = None,
    no_window: Annotated[bool, typer.Option("--no-window", help="Do not open a video window.")] = False,
    transport: TransportOpt = "livekit",
    codec: CodecOpt = None,
    speed: Annotated[
        str | None,
        typer.Option(
            "--speed",
            metavar="fast",
            help="Serving tier: fast = higher-compute tier for lower latency, billed at 2x (models that list it).",
            show_default=False,
        ),
    ] = None,
    no_reconnect: Annotated[
        bool, typer.Option("--no-reconnect", help="Do not reconnect automatically when the connection drops.")
    ] = False,
    latency: LatencyOpt = "auto",
    as_json: JsonOpt = False,
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    realtime_url: RealtimeUrlOpt = None,
    local: LocalOpt = False,
) -> None:
    """Stream a camera into a realtime model: live panel on a terminal, JSON events with --json.

    Type in the panel to change the prompt (sent when you pause, or at once on Enter); commands:
    /image PATH, /enhance on|off, /model NAME, /camera SPEC, /reconnect, /quit.
    """
    if list_cameras:
        _list_cameras(as_json)
        return

    # --- validate everything before any I/O (exit 2 with one line naming the value) ---------------
    resolved = catalog.resolve(model)
    if resolved.notice:
        streams.warn(resolved.notice)
    mirror_mode = choice("--mirror", mirror, MIRROR_VALUES)
    transport_value = choice("--transport", transport, TRANSPORT_VALUES)
    latency_value = choice("--latency", latency, LATENCY_VALUES)
    codec_value = codec_for(codec, transport_value)
    speed_value = choice("--speed", speed, SPEED_VALUES) if speed is not None else None
    if (speed_notice := resolved.speed_notice(speed_value)) is not None:
        streams.warn(speed_notice)
    if duration is not None and not duration > 0:
        raise UsageError(f"--duration {duration:g} must be more than 0 seconds")
    if prompt is not None and not prompt.strip():
        raise UsageError("--prompt is empty", hint="give some text, or leave --prompt out for passthrough")
    if image is not None and not resolved.model.reference_image:
        raise UsageError(
            f"--image: model {resolved.model.name!r} takes no reference image",
            hint="drop --image, or choose a model that takes one (see 'decart models')",
        )
    script = _read_prompts(prompts_file)
    if prompt is None and script and script[0].at == 0:
        # A scripted prompt at 0 s is the initial state: the session starts styled, not in passthrough.
        prompt, script = script[0].text, script[1:]
    initial = _initial_state(prompt, image, enhance=not no_enhance)
    record_path = _check_record(record)

    from decart_cli.media.source import MirrorMode, SourceSpec

    spec = SourceSpec.parse(camera if camera is not None or input_file is not None else "front", input_file, loop)
    ui: Literal["live", "plain", "json"] = "json" if as_json else "live" if _interactive(streams) else "plain"
    with _local.session_settings(
        api_key=api_key,
        api_key_file=api_key_file,
        token=token,
        base_url=base_url,
        realtime_url=realtime_url,
        local=local,
        purpose="to stream to the local emulator",
    ) as settings:
        _run(
            settings,
            resolved=resolved,
            spec=spec,
            mirror=MirrorMode(mirror_mode),
            transport=cast(Literal["livekit", "webrtc"], transport_value),
            codec=codec_value,
            speed=speed_value,
            reconnect=not no_reconnect,
            initial=initial,
            duration=duration,
            script=tuple(script),
            record=record_path,
            window=not no_window,
            ui=ui,
            latency=latency_value,
        )


def _run(settings: Settings, **kwargs: object) -> None:
    from decart_cli.runtime import StreamOptions, StreamRunner

    options = StreamOptions(settings=settings, model=kwargs.pop("resolved"), exit_process=True, **kwargs)  # type: ignore[arg-type]
    runner = StreamRunner(options, streams)
    runner.force_exit_hooks.append(_local.kill_children)
    outcome = asyncio.run(runner.run())
    if outcome.error is not None:
        # The runner already said why, once, before its closing line: only the exit code is left.
        raise typer.Exit(int(outcome.exit_status))


def _initial_state(prompt: str | None, image: str | None, *, enhance: bool) -> PromptState:
    from decart_cli.runtime.input import load_image

    data = load_image(image) if image is not None else None
    return PromptState(
        prompt=prompt.strip() if prompt is not None else None,
        enhance=enhance,
        image=data,
        image_name=Path(image).name if image is not None else None,
    )


def _read_prompts(path: str | None) -> list[TimedPrompt]:
    if path is None:
        return []
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"--prompts {path!r} cannot be read: {reason}") from exc
    return parse_prompts(text, path)


def _check_record(path: str | None) -> Path | None:
    if path is None:
        return None
    from decart_cli.media.recorder import Recorder

    return Recorder.check_path(Path(path))


def _interactive(s: Streams) -> bool:
    import sys

    try:
        return sys.stdin.isatty() and s.stderr_isatty
    except (AttributeError, ValueError):
        return False


def _list_cameras(as_json: bool) -> None:
    from dataclasses import asdict

    from decart_cli.media.devices import list_cameras

    cameras = list_cameras()
    if as_json:
        streams.json([asdict(c) for c in cameras])
        return
    if not cameras:
        streams.info("no cameras found (use --camera test for a synthetic pattern, or --input FILE)")
        return
    streams.table(
        "Cameras",
        ("Index", "Path", "Name", "Facing"),
        [(str(c.index), c.path or "-", c.name, c.facing or "unknown") for c in cameras],
    )


def register(root: typer.Typer) -> None:
    """Attach ``stream`` to the root app."""
    root.command("stream")(stream)
