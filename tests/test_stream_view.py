"""What the stream shows about today's protocol: the queue, the transport, which message a change sends."""

from __future__ import annotations

import io
import time

from rich.console import Console

from decart_cli.config import Secret, Settings
from decart_cli.core import catalog
from decart_cli.core import events as ev
from decart_cli.core.prompt_queue import PromptState
from decart_cli.core.session import ConnectionState
from decart_cli.media.source import SourceSpec
from decart_cli.runtime import StreamOptions, StreamRunner
from decart_cli.runtime.input import update_message
from decart_cli.ui.console import Streams
from decart_cli.ui.events_out import describe, plain_line
from decart_cli.ui.live import render

PNG = b"\x89PNG\r\n\x1a\nfake"


def runner(initial: PromptState | None = None) -> StreamRunner:
    """A real runner that is never run: its view and queue are what the panel draws."""
    options = StreamOptions(
        settings=Settings(realtime_url="ws://127.0.0.1:9", api_key=Secret("test-key-123456")),
        model=catalog.resolve("lucy-2.1"),
        spec=SourceSpec.parse("test", None),
        initial=initial or PromptState(),
        ui="json",
        install_signals=False,
    )
    return StreamRunner(options, Streams(stdout=io.StringIO(), stderr=io.StringIO()))


def panel_text(r: StreamRunner) -> str:
    console = Console(width=100, color_system=None, file=io.StringIO())
    console.print(render(r.view.snapshot(r)))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_update_message_keeps_the_image_for_prompt_only_changes() -> None:
    """A prompt-only change is a bare prompt (the image stays); a new or cleared image is one set_image."""
    with_image = PromptState(prompt="a", image=PNG)
    assert update_message(PromptState(prompt="b", image=PNG), with_image) == "prompt"
    assert update_message(PromptState(prompt="b"), PromptState(prompt="a")) == "prompt"
    assert update_message(PromptState(prompt="a", image=PNG), PromptState(prompt="a")) == "set_image"
    assert update_message(PromptState(prompt="a"), with_image) == "set_image"  # /image off clears it


def test_panel_says_which_message_a_change_sends() -> None:
    """The panel's Sends row: 'prompt (keeps the image)' for typed text with an image on, 'set_image …' for /image."""
    r = runner(PromptState(prompt="anime", image=PNG, image_name="face.png"))
    now = time.monotonic()
    r.queue.type_prompt("cyberpunk", now)
    assert r.view.update_kind(r) == "prompt (keeps the image)"
    assert "sends prompt (keeps the image)" in panel_text(r)
    r.queue.submit_image(None, now)
    assert r.view.update_kind(r) == "set_image (clears the image)"
    r.queue.submit_image(PNG + b"2", now, name="other.png")
    assert r.view.update_kind(r) == "set_image (image + prompt)"


def test_queue_is_shown_while_waiting_and_cleared_once_connected() -> None:
    """queue_position → 'waiting for capacity: 3 of 12' in the panel; gone once connected."""
    r = runner()
    r.view.transport = "livekit · h264"
    r.view.apply(ev.ServiceStatus("Entering queue"))
    assert r.view.queue == "waiting for capacity (Entering queue)"
    r.view.apply(ev.Queued(3, 12))
    text = panel_text(r)
    assert "waiting for capacity: 3 of 12" in text and "livekit · h264" in text
    r.view.apply(ev.StateChanged(ConnectionState.CONNECTING, ConnectionState.CONNECTED))
    assert r.view.queue is None and "waiting for capacity" not in panel_text(r)


def test_json_and_plain_records_of_the_new_events() -> None:
    """queue, status and generation_ended become `queue`/`status`/`generation_ended` records and log lines."""
    queue = describe(ev.Queued(2, 5))
    assert queue == {"event": "queue", "position": 2, "queue_size": 5}
    assert plain_line({**queue, "t": 1.0}) == "[   1.00s] waiting for capacity: 2 of 5"
    status = describe(ev.ServiceStatus("Ready"))
    assert status == {"event": "status", "status": "Ready"}
    ended = describe(ev.GenerationEnded(30.0, "timeout", True))
    assert ended == {"event": "generation_ended", "seconds": 30.0, "reason": "timeout", "final": True}
    line = plain_line({**ended, "t": 31.0})
    assert line is not None and "time limit after 30 s" in line and "no reconnect" in line
    error = describe(ev.ErrorEvent("the account is out of credits (server: x)", True, "server", "add credits"))
    assert error is not None and error["hint"] == "add credits"
    assert plain_line({**error, "t": 2.0}) == (
        "[   2.00s] error (server): the account is out of credits (server: x) — add credits"
    )
