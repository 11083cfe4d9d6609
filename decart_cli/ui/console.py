"""Standard streams for commands: data on stdout, everything human on stderr.

Commands never ``print``; they call these helpers. stdout carries only data (a table on a TTY, JSON
with ``--json``, a bare token); notices, warnings and errors go to stderr. Colour follows Rich's
rules: off when the stream is not a TTY, off when ``NO_COLOR`` is set. Rich is imported lazily so
that ``decart --help`` and tab completion stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from decart_cli.config import redact

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Streams", "streams"]


class Streams:
    """stdout/stderr with TTY detection; injectable for tests (like httpie's Environment)."""

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self._out_console: Console | None = None
        self._err_console: Console | None = None

    @property
    def stdout(self) -> TextIO:
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self._stderr or sys.stderr

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stderr_isatty(self) -> bool:
        return _isatty(self.stderr)

    @property
    def color(self) -> bool:
        """True when stderr is a terminal and ``NO_COLOR`` is unset."""
        return self.stderr_isatty and "NO_COLOR" not in os.environ

    def console(self, *, stderr: bool = False) -> Console:
        """A Rich console bound to stdout (data) or stderr (humans)."""
        from rich.console import Console

        if stderr:
            if self._err_console is None or self._err_console.file is not self.stderr:
                self._err_console = Console(file=self.stderr, stderr=True, highlight=False)
            return self._err_console
        if self._out_console is None or self._out_console.file is not self.stdout:
            self._out_console = Console(file=self.stdout, highlight=False)
        return self._out_console

    # -- data (stdout) ---------------------------------------------------------------------------

    def json(self, obj: Any) -> None:
        """Write ``obj`` as pretty JSON on stdout (one document)."""
        self.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
        self.stdout.flush()

    def json_line(self, obj: Any) -> None:
        """Write ``obj`` as one compact JSON line on stdout (JSON-lines event streams)."""
        self.stdout.write(redact(json.dumps(obj, separators=(",", ":"), ensure_ascii=False)) + "\n")
        self.stdout.flush()

    def line(self, text: str) -> None:
        """Write one plain line of data on stdout."""
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A table on stdout: boxed on a TTY, tab-separated otherwise (easy to ``cut``)."""
        if not self.stdout_isatty:
            self.line("\t".join(c.lower() for c in columns))
            for row in rows:
                self.line("\t".join(row))
            return
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        self.console().print(table)

    def fields(self, title: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Key/value lines on stdout (``decart models show``)."""
        if self.stdout_isatty:
            from rich.table import Table

            table = Table(title=title, show_header=False, title_justify="left")
            table.add_column(style="bold")
            table.add_column()
            for k, v in pairs:
                table.add_row(k, v)
            self.console().print(table)
        else:
            for k, v in pairs:
                self.line(f"{k}\t{v}")

    # -- humans (stderr) -------------------------------------------------------------------------

    def info(self, message: str) -> None:
        """A plain notice on stderr."""
        self._err(message, None)

    def warn(self, message: str) -> None:
        """A warning on stderr (``warning: …``)."""
        self._err(f"warning: {message}", "yellow")

    def error(self, message: str, hint: str | None = None) -> None:
        """The one-line error of the error boundary, plus an optional hint line."""
        self._err(f"error: {message}", "red")
        if hint:
            self._err(f"hint: {hint}", None)

    def _err(self, message: str, style: str | None) -> None:
        message = redact(message)
        if self.color and style:
            self.console(stderr=True).print(message, style=style, markup=False, soft_wrap=True)
        else:
            self.stderr.write(message + "\n")
            self.stderr.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


streams = Streams()
