"""The realtime model catalogue (decart-protocol.md §7.1) and pure name lookups.

``fps`` is the capture constraint the official SDKs hand to the camera (``{ideal: 30, max: 30}``
since 2026-05-18); the server resamples to the model's own rate.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from decart_cli.errors import UnknownModelError

__all__ = ["MODELS", "Model", "Resolved", "all_names", "get", "resolve"]

REALTIME_PATH = "/v1/stream"


@dataclass(frozen=True)
class Model:
    """One realtime model as the client needs it."""

    name: str
    width: int
    height: int
    fps: int
    reference_image: bool
    description: str
    aliases: tuple[str, ...] = ()  # server-side aliases (``-latest``): sent on the wire unchanged
    deprecated: tuple[str, ...] = ()  # old names: mapped to ``name`` client-side, with a notice
    path: str = REALTIME_PATH

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames the model takes and returns."""
        return (self.width, self.height)

    def to_json(self) -> dict[str, object]:
        """The catalogue entry as printed by ``decart models --json``."""
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "reference_image": self.reference_image,
            "aliases": list(self.aliases),
            "deprecated_names": list(self.deprecated),
            "description": self.description,
            "path": self.path,
        }


MODELS: tuple[Model, ...] = (
    Model(
        "lucy-2.1",
        1088,
        624,
        30,
        True,
        "character transformation; prompt and reference image",
        aliases=("lucy-latest",),
    ),
    Model("lucy-2.5", 1280, 720, 30, True, "character transformation at 720p; prompt and reference image"),
    Model(
        "lucy-vton-2", 1088, 624, 30, True, "virtual try-on; garment reference image", deprecated=("lucy-2.1-vton-2",)
    ),
    Model("lucy-vton-3", 1088, 624, 30, True, "virtual try-on; garment reference image", aliases=("lucy-vton-latest",)),
    Model(
        "lucy-restyle-2",
        1280,
        704,
        30,
        False,
        "restyle the whole scene from a prompt",
        aliases=("lucy-restyle-latest",),
        deprecated=("mirage_v2",),
    ),
)


@dataclass(frozen=True)
class Resolved:
    """A user-supplied name resolved against the catalogue.

    Attributes:
        model: the catalogue entry.
        wire_name: what goes into the ``model=`` query parameter (aliases pass through unchanged,
            deprecated names are replaced by the canonical one).
        deprecated_name: the old name the user typed, when it was deprecated.
    """

    model: Model
    wire_name: str
    deprecated_name: str | None = field(default=None)

    @property
    def notice(self) -> str | None:
        """One-line deprecation notice for stderr, or ``None``."""
        if self.deprecated_name is None:
            return None
        return f"model {self.deprecated_name!r} is deprecated; using {self.model.name!r} instead"


def all_names() -> list[str]:
    """Every accepted name: canonical, aliases and deprecated names."""
    names: list[str] = []
    for m in MODELS:
        names += [m.name, *m.aliases, *m.deprecated]
    return names


def resolve(name: str) -> Resolved:
    """Resolve ``name`` (case-insensitive, surrounding spaces ignored).

    Raises:
        UnknownModelError: with up to three close matches as suggestions.
    """
    key = name.strip().lower()
    for m in MODELS:
        if key == m.name or key in m.aliases:
            return Resolved(m, key)
        if key in m.deprecated:
            return Resolved(m, m.name, deprecated_name=key)
    suggestions = difflib.get_close_matches(key, all_names(), n=3, cutoff=0.5)
    raise UnknownModelError(name, suggestions)


def get(name: str) -> Model:
    """The catalogue entry for ``name`` (see :func:`resolve`)."""
    return resolve(name).model
