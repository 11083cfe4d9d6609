"""The panel's input line: help on ?/F1, Esc, short input waits for Enter, Ctrl-W, Tab, persistent history."""

from __future__ import annotations

import io
import stat
import time
from pathlib import Path

import pytest

from decart_cli.config import Secret, Settings, history_path
from decart_cli.core import catalog
from decart_cli.core.prompt_queue import PromptState
from decart_cli.media.source import SourceSpec
from decart_cli.runtime import StreamOptions, StreamRunner
from decart_cli.runtime.input import COMMANDS, CommandHandler
from decart_cli.ui.console import Streams
from decart_cli.ui.keys import Key, KeyDecoder, KeyName
from decart_cli.ui.line_editor import LineEditor, complete


def handler(prompt: str | None = "anime") -> CommandHandler:
    """A CommandHandler on a real (not started) StreamRunner: keys in, queue and view out."""
    options = StreamOptions(
        settings=Settings(api_key=Secret("test-key-123456")),
        model=catalog.resolve("lucy-2.1"),
        spec=SourceSpec.parse("test", None),
        initial=PromptState(prompt=prompt),
        ui="live",
        install_signals=False,
    )
    runner = StreamRunner(options, Streams(stdout=io.StringIO(), stderr=io.StringIO()))
    runner.commands = CommandHandler(runner)
    return runner.commands


def type_text(h: CommandHandler, text: str) -> None:
    for ch in text:
        h.on_key(Key.of(ch))


def debounced(h: CommandHandler) -> PromptState | None:
    """What the queue would send once the typing pause is over."""
    return h.runner.queue.next_due(time.monotonic() + 10)


def test_keys_decode_tab_ctrl_w_and_f1() -> None:
    """Tab, Ctrl-W and both F1 sequences (xterm SS3 and VT220) decode to their keys."""
    keys = KeyDecoder().feed(b"\t\x17\x1bOP\x1b[11~")
    assert [k.name for k in keys] == [KeyName.TAB, KeyName.WORD_BACK, KeyName.F1, KeyName.F1]


def test_a_lone_question_mark_opens_help_and_is_never_a_prompt() -> None:
    """`?` on an empty line toggles the help instead of typing; any key closes it; nothing is sent."""
    h = handler()
    h.on_key(Key.of("?"))
    assert h.show_help and h.editor.text == "" and debounced(h) is None
    h.on_key(Key.of("x"))
    assert not h.show_help and h.editor.text == "x"
    h.on_key(Key(KeyName.F1))
    assert h.show_help
    h.on_key(Key(KeyName.ESCAPE))
    assert not h.show_help and h.editor.text == "x"


def test_short_input_waits_for_enter() -> None:
    """1–2 typed characters are never debounced into the prompt (was: a lone q became the prompt after 500 ms)."""
    h = handler()
    type_text(h, "q")
    assert debounced(h) is None
    type_text(h, "k")
    assert debounced(h) is None
    h.on_key(Key(KeyName.ENTER))
    assert h.runner.queue.pending is not None and h.runner.queue.pending.prompt == "qk"


def test_longer_input_is_debounced_and_shrinking_back_cancels_it() -> None:
    """Three characters are debounced as before; deleting back to two cancels the pending update."""
    h = handler()
    type_text(h, "neo")
    assert h.runner.queue.pending is not None
    h.on_key(Key(KeyName.BACKSPACE))
    assert debounced(h) is None


def test_a_lone_q_on_enter_points_at_quit() -> None:
    """`q` + Enter is not sent as a prompt; the message says /quit leaves."""
    h = handler()
    type_text(h, "q")
    h.on_key(Key(KeyName.ENTER))
    assert h.runner.queue.pending is None
    assert h.runner.view.message is not None and "/quit" in h.runner.view.message
    assert not h.runner._stop.is_set()


def test_escape_clears_the_line_and_its_pending_prompt() -> None:
    """Esc empties the line and the typed update waiting for its pause is dropped."""
    h = handler()
    type_text(h, "cyberpunk")
    h.on_key(Key(KeyName.ESCAPE))
    assert h.editor.text == "" and debounced(h) is None


def test_ctrl_w_deletes_the_word_before_the_cursor() -> None:
    """Ctrl-W removes the previous word (and the spaces after it)."""
    editor = LineEditor()
    editor.set_text("pencil sketch of  ")
    editor.handle(Key(KeyName.WORD_BACK))
    assert (editor.text, editor.cursor) == ("pencil sketch ", 14)
    editor.handle(Key(KeyName.WORD_BACK))
    editor.handle(Key(KeyName.WORD_BACK))
    editor.handle(Key(KeyName.WORD_BACK))
    assert editor.text == ""


def test_tab_completes_commands_models_and_image_paths(tmp_path: Path) -> None:
    """Tab fills a unique command, model name or path; an ambiguous one fills the common part and lists them."""
    models = catalog.offered_names()
    assert complete("/mo", commands=COMMANDS, models=models).text == "/model "
    assert complete("/model lucy-re", commands=COMMANDS, models=models).text == "/model lucy-restyle-"
    several = complete("/model lucy-2", commands=COMMANDS, models=models)
    assert several.text == "/model lucy-2." and set(several.candidates) == {"lucy-2.1", "lucy-2.5", "lucy-2.6"}
    assert "mirage_v2" not in complete("/model ", commands=COMMANDS, models=models).candidates
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "alice.png").write_bytes(b"")
    (tmp_path / "flower.jpg").write_bytes(b"")
    assert complete(f"/image {tmp_path}/fa", commands=COMMANDS, models=models).text == f"/image {tmp_path}/faces/"
    assert complete(f"/image {tmp_path}/faces/a", commands=COMMANDS, models=models).text == (
        f"/image {tmp_path}/faces/alice.png"
    )
    assert complete("just a prompt", commands=COMMANDS, models=models).text == "just a prompt"


def test_tab_in_the_panel_lists_candidates_in_the_message_line() -> None:
    """In the panel an ambiguous Tab shows the candidates as the message."""
    h = handler()
    type_text(h, "/model lucy-2")
    h.on_key(Key(KeyName.TAB))
    assert h.editor.text == "/model lucy-2."
    assert h.runner.view.message == "lucy-2.1  lucy-2.5  lucy-2.6"


def test_history_keeps_debounced_prompts_and_persists_privately() -> None:
    """Submitted lines and prompts the session applied after a typing pause are saved (0600) and come back
    with ↑ in the next run; a line holding a secret is never written."""
    h = handler(prompt=None)
    type_text(h, "watercolor city")
    update = debounced(h)
    assert update is not None and update.prompt == "watercolor city"
    h.runner.queue.finish(success=True)  # the ack: the debounced prompt is now applied
    h.runner.redraw()
    h.on_key(Key(KeyName.ESCAPE))
    type_text(h, "neon night")
    h.on_key(Key(KeyName.ENTER))
    type_text(h, "my key is test-key-123456")
    h.on_key(Key(KeyName.ENTER))
    path = history_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = path.read_text(encoding="utf-8").splitlines()
    assert saved == ["watercolor city", "neon night"]
    again = handler()
    again.on_key(Key(KeyName.UP))
    assert again.editor.text == "neon night"
    again.on_key(Key(KeyName.UP))
    assert again.editor.text == "watercolor city"


@pytest.mark.parametrize("count", [600])
def test_history_is_bounded(count: int) -> None:
    """The saved history keeps the newest 500 lines."""
    h = handler()
    for i in range(count):
        h.editor.remember(f"prompt {i}")
    h.save_history()
    saved = history_path().read_text(encoding="utf-8").splitlines()
    assert len(saved) == 500 and saved[-1] == f"prompt {count - 1}"
