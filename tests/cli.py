"""Run the real CLI entry point (with its error boundary) in-process and capture what it prints."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import pytest

from decart_cli.app import main


@dataclass
class Result:
    """Exit code and the two output streams of one CLI run."""

    code: int
    stdout: str
    stderr: str


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> Result:
    """Call ``decart_cli.app.main(args)`` with fresh stdio; return exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # pragma: no cover - main always exits
        code = -1
    finally:
        monkeypatch.undo()
    return Result(code, out.getvalue(), err.getvalue())
