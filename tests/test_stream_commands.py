"""The input line's commands applied to a runner's prompt queue and view (no session, no sockets)."""

from __future__ import annotations

import io
from pathlib import Path

from test_stream_cli import png_bytes

from decart_cli.config import Secret, Settings
from decart_cli.core import catalog
from decart_cli.core.prompt_queue import PromptState
from decart_cli.media.source import SourceSpec
from decart_cli.runtime import StreamOptions, StreamRunner
from decart_cli.runtime.input import CommandHandler, parse_command
from decart_cli.ui.console import Streams
from decart_cli.ui.keys import Key, KeyName


def handler(model: str = "lucy-2.1", prompt: str | None = "anime") -> CommandHandler:
    options = StreamOptions(
        settings=Settings(realtime_url="ws://127.0.0.1:9", api_key=Secret("test-key-123456")),
        model=catalog.resolve(model),
        spec=SourceSpec.parse("test", None),
        initial=PromptState(prompt=prompt),
        ui="live",
        install_signals=False,
    )
    runner = StreamRunner(options, Streams(stdout=io.StringIO(), stderr=io.StringIO()))
    return CommandHandler(runner)


def test_parse_command() -> None:
    """Commands are split into a lower-cased name and stripped arguments."""
    assert parse_command("  /Image   a b.png ") == ("/image", "a b.png")
    assert parse_command("/quit") == ("/quit", "")


def test_enhance_and_usage_messages() -> None:
    """/enhance toggles the flag (sent at once); a bad argument only shows usage."""
    h = handler()
    h.submit("/enhance off")
    assert h.runner.queue.pending == PromptState(prompt="anime", enhance=False)
    h.submit("/enhance maybe")
    assert h.runner.view.message == "usage: /enhance on|off"
    h.submit("/help")
    assert (h.runner.view.message or "").startswith("commands: /image")


def test_unknown_command_and_bad_arguments_send_nothing(tmp_path: Path) -> None:
    """Unknown commands, unreadable images and unknown models leave the queue untouched."""
    h = handler()
    for line in ("/frobnicate", f"/image {tmp_path / 'missing.png'}", "/model lucy-9", "/image", "/camera sideways"):
        h.submit(line)
        assert h.runner.queue.pending is None, line
    h.submit("/model lucy-9")
    assert "unknown model 'lucy-9'" in (h.runner.view.message or "")


def test_image_goes_with_the_current_prompt(tmp_path: Path) -> None:
    """/image PATH queues one update holding the image and the current prompt; /image off clears it."""
    h = handler()
    face = tmp_path / "face.png"
    face.write_bytes(png_bytes())
    h.submit(f"/image {face}")
    pending = h.runner.queue.pending
    assert pending is not None and pending.prompt == "anime" and pending.image == face.read_bytes()
    assert pending.image_name == "face.png"
    h.submit("/image off")
    assert h.runner.queue.pending is None  # back to the applied state: nothing to send


def test_image_refused_for_a_model_without_reference_images(tmp_path: Path) -> None:
    """lucy-restyle-2 takes no reference image: /image explains and queues nothing."""
    h = handler("lucy-restyle-2")
    face = tmp_path / "face.png"
    face.write_bytes(png_bytes())
    h.submit(f"/image {face}")
    assert h.runner.queue.pending is None
    assert "takes no reference image" in (h.runner.view.message or "")


def test_keys_type_a_debounced_prompt_but_never_a_command() -> None:
    """Typed text becomes a pending (debounced) prompt; a line starting with / does not."""
    h = handler(prompt=None)
    for ch in "/ima":
        h.on_key(Key.of(ch))
    assert h.runner.queue.pending is None
    h.on_key(Key(KeyName.CLEAR))
    for ch in "neon":
        h.on_key(Key.of(ch))
    assert h.runner.queue.pending == PromptState(prompt="neon")
    h.on_key(Key(KeyName.ENTER))
    assert h.editor.text == "" and h.editor.history == ["neon"]


def test_quit_and_eof_stop_the_run() -> None:
    """/quit and Ctrl-D on an empty line request a clean stop."""
    h = handler()
    h.submit("/quit")
    assert h.runner._reason == "quit"
    h2 = handler()
    h2.on_key(Key(KeyName.EOF))
    assert h2.runner._reason == "quit"
