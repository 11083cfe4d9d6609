"""`decart stream` (being built; see its issue)."""

from __future__ import annotations

import typer

from decart_cli.errors import DecartError

__all__ = ["register"]


def stream() -> None:
    """Not built yet."""
    raise DecartError("'decart stream' is not built yet")


def register(root: typer.Typer) -> None:
    """Attach `stream` to the root app."""
    root.command("stream")(stream)
