"""The panel's input line: editing, history, Enter.

Pure state: feed it :class:`~decart_cli.ui.keys.Key` values, read ``text``/``cursor`` to draw it.
No terminal I/O happens here (that is :mod:`decart_cli.ui.keys`), so tests drive it directly.

Keys: printable text inserts at the cursor; Backspace/Delete remove left/right of it; ←/→,
Home/End (also Ctrl-A/Ctrl-E) move; Ctrl-U clears the line; ↑/↓ walk the history of submitted
lines (the line being typed is kept and comes back after the newest entry); Enter submits.
"""

from __future__ import annotations

from dataclasses import dataclass

from decart_cli.ui.keys import Key, KeyName

__all__ = ["EditResult", "LineEditor"]

HISTORY_LIMIT = 200


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
        elif name is KeyName.CLEAR:
            self.set_text("")
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

    def _submit(self) -> EditResult:
        line = self.text
        if line.strip() and (not self._history or self._history[-1] != line):
            self._history.append(line)
            del self._history[:-HISTORY_LIMIT]
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
