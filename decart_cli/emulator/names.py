"""Model names the emulator accepts on ``model=``: the catalogue plus what the official SDK 0.0.40 sends."""

from __future__ import annotations

from typing import Final

from decart_cli.core import catalog
from decart_cli.errors import UnknownModelError

__all__ = ["SDK_0_0_40_NAMES", "resolve_model"]

# Names the direct-era Python SDK (decart==0.0.40) still offers for realtime, mapped to the current
# catalogue entry with the same frame size (decart-protocol.md §7.1, "Py-direct 0.0.40 ... additionally").
SDK_0_0_40_NAMES: Final[dict[str, str]] = {
    "lucy-2.1-vton": "lucy-vton-2",
    "lucy-vton": "lucy-vton-2",
}


def resolve_model(name: str) -> catalog.Model | None:
    """The catalogue model for a wire name (canonical, ``-latest`` alias, deprecated, SDK 0.0.40), or ``None``.

    Matching is exact (the server sees what the client sent), except that catalogue lookups are
    case-insensitive like :func:`decart_cli.core.catalog.resolve`.
    """
    if name in SDK_0_0_40_NAMES:
        return catalog.get(SDK_0_0_40_NAMES[name])
    try:
        return catalog.resolve(name).model
    except UnknownModelError:
        return None
