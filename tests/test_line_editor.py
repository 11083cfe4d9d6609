"""The panel's input line (editing, history) and the terminal key decoder."""

from __future__ import annotations

from decart_cli.ui.keys import Key, KeyDecoder, KeyName
from decart_cli.ui.line_editor import LineEditor

K = KeyName


def typed(editor: LineEditor, text: str) -> None:
    for ch in text:
        editor.handle(Key.of(ch))


def test_insert_move_delete_backspace() -> None:
    """Characters insert at the cursor; arrows, Home/End move; Backspace/Delete remove."""
    e = LineEditor()
    typed(e, "anme")
    e.handle(Key(K.LEFT))
    e.handle(Key(K.LEFT))
    assert e.handle(Key.of("i")).changed
    assert (e.text, e.cursor) == ("anime", 3)
    e.handle(Key(K.HOME))
    assert e.handle(Key(K.DELETE)).changed
    assert e.text == "nime"
    e.handle(Key(K.END))
    e.handle(Key(K.BACKSPACE))
    assert (e.text, e.cursor) == ("nim", 3)
    assert not e.handle(Key(K.RIGHT)).changed
    e.handle(Key(K.HOME))
    assert not e.handle(Key(K.BACKSPACE)).changed
    assert not e.handle(Key(K.LEFT)).changed and e.cursor == 0
    e.handle(Key(K.CLEAR))
    assert (e.text, e.cursor) == ("", 0)


def test_enter_submits_and_clears() -> None:
    """Enter returns the line, clears it and records it in the history."""
    e = LineEditor()
    typed(e, "anime")
    result = e.handle(Key(K.ENTER))
    assert result.submitted == "anime"
    assert e.text == "" and e.history == ["anime"]
    assert e.handle(Key(K.ENTER)).submitted == ""
    assert e.history == ["anime"]


def test_history_up_down_keeps_the_draft() -> None:
    """↑ walks back through submitted lines, ↓ returns to the line being typed."""
    e = LineEditor(history=["one", "two"])
    typed(e, "dra")
    e.handle(Key(K.UP))
    assert e.text == "two"
    e.handle(Key(K.UP))
    assert e.text == "one"
    e.handle(Key(K.UP))
    assert e.text == "one"
    e.handle(Key(K.DOWN))
    assert e.text == "two"
    e.handle(Key(K.DOWN))
    assert (e.text, e.cursor) == ("dra", 3)
    e.handle(Key(K.DOWN))
    assert e.text == "dra"


def test_duplicate_submissions_collapse_in_history() -> None:
    """Submitting the same line twice stores it once."""
    e = LineEditor()
    for _ in range(2):
        typed(e, "x")
        e.handle(Key(K.ENTER))
    assert e.history == ["x"]
    assert LineEditor().handle(Key(K.UP)).changed is False


def test_decoder_plain_control_and_utf8() -> None:
    """Printable text, Enter, Backspace and split UTF-8 decode to keys."""
    d = KeyDecoder()
    assert d.feed(b"ab\r\n\x7f") == [Key.of("a"), Key.of("b"), Key(K.ENTER), Key(K.BACKSPACE)]
    snow = "é".encode()
    assert d.feed(snow[:1]) == []
    assert d.feed(snow[1:]) == [Key.of("é")]
    assert d.feed(b"\x15\x01\x05\x04") == [Key(K.CLEAR), Key(K.HOME), Key(K.END), Key(K.EOF)]


def test_decoder_escape_sequences_even_when_split() -> None:
    """Arrow, Home/End and Delete sequences decode, also across reads; unknown ones are dropped."""
    d = KeyDecoder()
    assert d.feed(b"\x1b[A\x1bOB\x1b[C\x1b[D") == [Key(K.UP), Key(K.DOWN), Key(K.RIGHT), Key(K.LEFT)]
    assert d.feed(b"\x1b[") == []
    assert d.pending
    assert d.feed(b"3~") == [Key(K.DELETE)]
    assert d.feed(b"\x1b[1~\x1b[4~\x1b[H\x1b[F") == [Key(K.HOME), Key(K.END), Key(K.HOME), Key(K.END)]
    assert d.feed(b"\x1b[1;5Cx") == [Key.of("x")]


def test_decoder_lone_escape_is_flushed() -> None:
    """A lone Esc waits for more bytes and becomes ESCAPE on flush."""
    d = KeyDecoder()
    assert d.feed(b"\x1b") == []
    assert d.flush() == [Key(K.ESCAPE)]
    assert d.flush() == []
    assert d.feed(b"\x1bx") == [Key(K.ESCAPE), Key.of("x")]


async def test_key_reader_on_a_real_pty_restores_the_terminal() -> None:
    """KeyReader puts a pty in cbreak mode, decodes what is typed, and restores the mode on close."""
    import asyncio
    import os
    import termios

    from decart_cli.ui.keys import KeyReader

    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        got: list[Key] = []
        arrived = asyncio.Event()

        def on_key(key: Key) -> None:
            got.append(key)
            if key.name is K.ENTER:
                arrived.set()

        with KeyReader(on_key, slave, escape_delay=0.01):
            during = termios.tcgetattr(slave)
            assert not during[3] & (termios.ECHO | termios.ICANON)
            os.write(master, b"hi\x1b[D\r")
            await asyncio.wait_for(arrived.wait(), 5)
        assert got == [Key.of("h"), Key.of("i"), Key(K.LEFT), Key(K.ENTER)]
        assert termios.tcgetattr(slave)[3] == before[3]
    finally:
        os.close(master)
        os.close(slave)
