"""The panel's input line: editing, history, Enter.

Pure state: feed it :class:`~decart_cli.ui.keys.Key` values, read ``text``/``cursor`` to draw it.
No terminal I/O happens here (that is :mod:`decart_cli.ui.keys`), so tests drive it directly.

Keys: printable text inserts at the cursor; Backspace/Delete remove left/right of it; ←/→,
Home/End (also Ctrl-A/Ctrl-E) move; Ctrl-U and Esc clear the line; Ctrl-W deletes the word before
the cursor; ↑/↓ walk the history (the line being typed is kept and comes back after the newest
entry); Enter submits. :func:`complete` is the pure Tab completion of ``/`` commands, ``/model``
names and ``/image`` paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from decart_cli.ui.keys import Key, KeyName

__all__ = ["Completion", "EditResult", "LineEditor", "complete", "list_dir"]

HISTORY_LIMIT = 500


@dataclass(frozen=True)
class EditResult:
    """What a key did.

    Attributes:
        changed: the text changed (the caller may schedule a debounced prompt update).
        submitted: the submitted line when the key was Enter (may be empty), else ``None``.
    """

    changed: bool = False
    submitted: str | None = None


class LineEditor:
    """A one-line editor with history. ``text`` and ``cursor`` (0..len(text)) describe the line."""

    def __init__(self, history: list[str] | None = None) -> None:
        self.text = ""
        self.cursor = 0
        self._history: list[str] = list(history or [])[-HISTORY_LIMIT:]
        self._index: int | None = None  # position in history while browsing, else None
        self._draft = ""  # the line being typed before browsing started

    @property
    def history(self) -> list[str]:
        """Submitted lines, oldest first (consecutive duplicates collapsed)."""
        return list(self._history)

    def set_text(self, text: str) -> None:
        """Replace the line and put the cursor at its end."""
        self.text = text
        self.cursor = len(text)

    def handle(self, key: Key) -> EditResult:
        """Apply one key and report what changed."""
        before = self.text
        name = key.name
        if name is KeyName.CHAR:
            self.text = self.text[: self.cursor] + key.char + self.text[self.cursor :]
            self.cursor += len(key.char)
        elif name is KeyName.BACKSPACE:
            if self.cursor > 0:
                self.text = self.text[: self.cursor - 1] + self.text[self.cursor :]
                self.cursor -= 1
        elif name is KeyName.DELETE:
            self.text = self.text[: self.cursor] + self.text[self.cursor + 1 :]
        elif name is KeyName.LEFT:
            self.cursor = max(0, self.cursor - 1)
        elif name is KeyName.RIGHT:
            self.cursor = min(len(self.text), self.cursor + 1)
        elif name is KeyName.HOME:
            self.cursor = 0
        elif name is KeyName.END:
            self.cursor = len(self.text)
        elif name in (KeyName.CLEAR, KeyName.ESCAPE):
            self.set_text("")
        elif name is KeyName.WORD_BACK:
            head = self.text[: self.cursor].rstrip()
            cut = len(head) - len(head.split()[-1]) if head.split() else 0
            self.text, self.cursor = self.text[:cut] + self.text[self.cursor :], cut
        elif name is KeyName.UP:
            self._browse(-1)
        elif name is KeyName.DOWN:
            self._browse(+1)
        elif name is KeyName.ENTER:
            return self._submit()
        changed = self.text != before
        if changed and name not in (KeyName.UP, KeyName.DOWN):
            self._index = None  # editing a recalled line makes it the new draft
        return EditResult(changed=changed)

    def remember(self, line: str) -> bool:
        """Add ``line`` to the history (not blank, not the same as the newest entry); True when added."""
        if not line.strip() or (self._history and self._history[-1] == line):
            return False
        self._history.append(line)
        del self._history[:-HISTORY_LIMIT]
        return True

    def _submit(self) -> EditResult:
        line = self.text
        self.remember(line)
        self._index = None
        self._draft = ""
        self.set_text("")
        return EditResult(changed=line != "", submitted=line)

    def _browse(self, step: int) -> None:
        if not self._history:
            return
        if self._index is None:
            if step > 0:
                return  # already at the draft
            self._draft = self.text
            self._index = len(self._history)
        index = self._index + step
        if index < 0:
            return
        if index >= len(self._history):
            self._index = None
            self.set_text(self._draft)
            return
        self._index = index
        self.set_text(self._history[index])


@dataclass(frozen=True)
class Completion:
    """What Tab did: the new ``text`` (cursor at its end) and the ``candidates`` when it was ambiguous."""

    text: str
    candidates: tuple[str, ...] = ()


def list_dir(directory: str) -> list[str]:
    """Entries of ``directory`` (``~`` expanded; ``""`` is the current one), directories with a ``/``."""
    try:
        with os.scandir(os.path.expanduser(directory) or ".") as entries:
            return sorted(e.name + ("/" if e.is_dir() else "") for e in entries)
    except OSError:
        return []


def _common_prefix(words: Sequence[str]) -> str:
    return os.path.commonprefix(list(words))


def complete(
    text: str,
    *,
    commands: Sequence[str],
    models: Sequence[str],
    entries: Callable[[str], list[str]] = list_dir,
) -> Completion:
    """Tab on the line ``text``: complete a ``/`` command, a ``/model`` name or an ``/image`` path.

    One candidate fills it in (with a space after a command or model name); several fill in their
    common prefix and are returned as ``candidates``; none leaves the text as it is.
    """
    head, sep, arg = text.partition(" ")
    if not text.startswith("/"):
        return Completion(text)
    if not sep:
        found = [c for c in commands if c.startswith(head.lower())]
        return _fill("", head, found, " ")
    command = head.lower()
    if command == "/model":
        return _fill(f"{head} ", arg.strip(), [m for m in models if m.startswith(arg.strip().lower())], " ")
    if command == "/image":
        directory, _, base = arg.rpartition("/")
        directory = directory + "/" if "/" in arg else ""
        names = [
            n for n in entries(directory) if n.startswith(base) and (base.startswith(".") or not n.startswith("."))
        ]
        return _fill(f"{head} {directory}", base, names, "")
    return Completion(text)


def _fill(prefix: str, partial: str, found: Sequence[str], after: str) -> Completion:
    if not found:
        return Completion(prefix + partial)
    if len(found) == 1:
        word = found[0]
        return Completion(prefix + word + ("" if word.endswith("/") else after))
    return Completion(prefix + max(partial, _common_prefix(found), key=len), tuple(found))
