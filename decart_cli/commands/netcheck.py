"""`decart netcheck` (being built; see its issue)."""

from __future__ import annotations

import typer

from decart_cli.errors import DecartError

__all__ = ["register"]


def netcheck() -> None:
    """Not built yet."""
    raise DecartError("'decart netcheck' is not built yet")


def register(root: typer.Typer) -> None:
    """Attach `netcheck` to the root app."""
    root.command("netcheck")(netcheck)
