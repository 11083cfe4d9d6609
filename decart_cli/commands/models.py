"""``decart models`` / ``decart models list`` / ``decart models show NAME``: the realtime catalogue."""

from __future__ import annotations

from typing import Annotated

import typer

from decart_cli.commands._options import JsonOpt
from decart_cli.core import catalog
from decart_cli.ui.console import streams

__all__ = ["register"]

app = typer.Typer(
    help="List the realtime models: frame size, fps, reference-image support, aliases.",
    no_args_is_help=False,
    invoke_without_command=True,
)

_COLUMNS = ("Model", "Size", "FPS", "Reference image", "Aliases", "Deprecated names")


def _row(m: catalog.Model) -> list[str]:
    return [
        m.name,
        f"{m.width}×{m.height}",
        str(m.fps),
        "yes" if m.reference_image else "no",
        ", ".join(m.aliases) or "-",
        ", ".join(m.deprecated) or "-",
    ]


def _list(as_json: bool) -> None:
    if as_json:
        streams.json([m.to_json() for m in catalog.MODELS])
        return
    streams.table("Decart realtime models", _COLUMNS, [_row(m) for m in catalog.MODELS])


@app.callback()
def models_root(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the realtime models (same as 'decart models list')."""
    if ctx.invoked_subcommand is None:
        _list(as_json)


@app.command("list")
def list_models(as_json: JsonOpt = False) -> None:
    """List the realtime models."""
    _list(as_json)


@app.command("show")
def show_model(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name, alias or deprecated name (e.g. lucy-2.1).")],
    as_json: JsonOpt = False,
) -> None:
    """Show one model; aliases resolve to their model, deprecated names with a notice on stderr."""
    resolved = catalog.resolve(name)
    if resolved.notice:
        streams.warn(resolved.notice)
    m = resolved.model
    if as_json:
        streams.json({**m.to_json(), "requested": name, "wire_name": resolved.wire_name})
        return
    streams.fields(
        m.name,
        [
            ("name", m.name),
            ("size", f"{m.width}×{m.height}"),
            ("fps", str(m.fps)),
            ("reference image", "yes" if m.reference_image else "no"),
            ("aliases", ", ".join(m.aliases) or "-"),
            ("deprecated names", ", ".join(m.deprecated) or "-"),
            ("description", m.description),
            ("endpoint", m.path),
        ],
    )


def register(root: typer.Typer) -> None:
    """Attach ``models`` to the root app."""
    root.add_typer(app, name="models")
