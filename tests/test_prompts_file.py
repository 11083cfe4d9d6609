"""Parsing of `decart stream --prompts FILE`."""

from __future__ import annotations

from pathlib import Path

import pytest

from decart_cli.core.prompts_file import TimedPrompt, parse_prompts
from decart_cli.errors import UsageError


def test_parses_times_texts_comments_and_blank_lines() -> None:
    """Comments and blank lines are skipped; the rest of the line is the prompt."""
    body = "# header\n\n0 anime style\n  2.5\tcyberpunk  neon  \n4 pencil # not a comment\n"
    assert parse_prompts(body) == [
        TimedPrompt(0.0, "anime style", 3),
        TimedPrompt(2.5, "cyberpunk  neon", 4),
        TimedPrompt(4.0, "pencil # not a comment", 5),
    ]


def test_demo_prompts_file_parses() -> None:
    """examples/demo-prompts.txt (used by `make demo`) is valid."""
    path = Path(__file__).parent.parent / "examples" / "demo-prompts.txt"
    entries = parse_prompts(path.read_text(encoding="utf-8"), str(path))
    assert [e.at for e in entries] == [0.0, 4.0, 8.0]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("0 ok\nsoon anime\n", "p.txt:2: expected 'SECONDS TEXT'"),
        ("-1 anime\n", "p.txt:1: time '-1' must be"),
        ("nan anime\n", "p.txt:1: time 'nan'"),
        ("3\n", "p.txt:1: no prompt text"),
        ("5 b\n2 a\n", "p.txt:2: time 2 is earlier"),
        ("# only comments\n", "p.txt: no prompts found"),
    ],
)
def test_errors_name_the_line(body: str, fragment: str) -> None:
    """Every error names the file and line (and the bad value)."""
    with pytest.raises(UsageError) as info:
        parse_prompts(body, "p.txt")
    assert fragment in info.value.message
