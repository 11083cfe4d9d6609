"""Parser for ``decart stream --prompts FILE``: a timed list of prompts.

Format, one entry per line::

    # comment lines and blank lines are ignored
    0    anime style portrait, soft light
    4.5  cyberpunk neon city at night

``SECONDS`` is the offset from the moment the session is ready (a non-negative number, entries in
non-decreasing order); ``TEXT`` is the rest of the line, surrounding spaces removed, never empty.
Errors name the source and line number, so the user can fix the file in one go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from decart_cli.errors import UsageError

__all__ = ["TimedPrompt", "parse_prompts"]


@dataclass(frozen=True)
class TimedPrompt:
    """One scripted prompt: send ``text`` ``at`` seconds after the session is ready."""

    at: float
    text: str
    line: int


def parse_prompts(text: str, source: str = "<prompts>") -> list[TimedPrompt]:
    """Parse a prompts file body.

    Args:
        text: the whole file content.
        source: the file name used in error messages.

    Returns:
        The entries in file order (which is also time order).

    Raises:
        UsageError: a line without a valid ``SECONDS TEXT`` pair, a negative or non-finite time, a
            time earlier than the previous entry's, or a file with no entries at all.
    """
    entries: list[TimedPrompt] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, _, rest = line.replace("\t", " ").partition(" ")
        try:
            at = float(head)
        except ValueError:
            raise UsageError(
                f"{source}:{number}: expected 'SECONDS TEXT', got {_clip(line)!r}",
                hint="each line is a time in seconds, a space, then the prompt",
            ) from None
        if not math.isfinite(at) or at < 0:
            raise UsageError(f"{source}:{number}: time {head!r} must be a number of seconds >= 0")
        prompt = rest.strip()
        if not prompt:
            raise UsageError(f"{source}:{number}: no prompt text after {head!r}")
        if entries and at < entries[-1].at:
            raise UsageError(
                f"{source}:{number}: time {head} is earlier than the previous entry ({entries[-1].at:g})",
                hint="list the prompts in time order",
            )
        entries.append(TimedPrompt(at, prompt, number))
    if not entries:
        raise UsageError(f"{source}: no prompts found", hint="add lines such as '0 anime style'")
    return entries


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
