"""Rendering of ``decart netcheck`` results: a Rich table on a terminal, tab-separated lines otherwise.

Pure presentation: rows and verdict come from ``core.netverdict``; nothing here measures anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from decart_cli.core.netverdict import CheckResult, Result, Verdict

if TYPE_CHECKING:
    from rich.table import Table

    from decart_cli.ui.console import Streams

__all__ = ["COLUMNS", "build_table", "print_report", "verdict_line"]

COLUMNS: Final = ("Check", "Target", "Result", "Detail", "Fix to request")
STYLES: Final = {Result.OK: "green", Result.WARN: "yellow", Result.FAIL: "bold red"}


def _cells(row: CheckResult) -> list[str]:
    return [row.check, row.target, row.result.value, row.detail, row.fix or "-"]


def build_table(rows: Sequence[CheckResult]) -> Table:
    """A Rich table: check, target, result (coloured), detail, the one-line fix."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="decart netcheck", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = _cells(row)
        table.add_row(cells[0], cells[1], Text(cells[2], style=STYLES[row.result]), cells[3], cells[4])
    return table


def verdict_line(verdict: Verdict) -> str:
    """The final line: the verdict summary plus how many rules to request."""
    if verdict.fixes:
        return f"verdict: {verdict.summary}; ask IT for: " + "; ".join(verdict.fixes)
    return f"verdict: {verdict.summary}"


def print_report(streams: Streams, rows: Sequence[CheckResult], verdict: Verdict) -> None:
    """Print the table and the verdict line on stdout (boxed on a TTY, tab-separated when piped)."""
    if streams.stdout_isatty:
        console = streams.console()
        console.print(build_table(rows))
        style = "bold green" if verdict.streaming_should_work else "bold red"
        console.print(verdict_line(verdict), style=style, markup=False, highlight=False)
        return
    streams.line("\t".join(c.lower() for c in COLUMNS))
    for row in rows:
        streams.line("\t".join(_cells(row)))
    streams.line(verdict_line(verdict))
