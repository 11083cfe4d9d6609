"""`decart serve` (being built; see its issue)."""

from __future__ import annotations

import typer

from decart_cli.errors import DecartError

__all__ = ["register"]


def serve() -> None:
    """Not built yet."""
    raise DecartError("'decart serve' is not built yet")


def register(root: typer.Typer) -> None:
    """Attach `serve` to the root app."""
    root.command("serve")(serve)
