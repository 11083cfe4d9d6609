"""`decart token` (being built; see its issue)."""

from __future__ import annotations

import typer

from decart_cli.errors import DecartError

__all__ = ["register"]


def token() -> None:
    """Not built yet."""
    raise DecartError("'decart token' is not built yet")


def register(root: typer.Typer) -> None:
    """Attach `token` to the root app."""
    root.command("token")(token)
