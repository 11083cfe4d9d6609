"""The realtime model catalogue and pure name lookups.

Today's catalogue (decart-protocol-2026-11.md §7): ``lucy-2.1``, ``lucy-2.5``, ``lucy-2.6``,
``lucy-vton-3.5``, ``lucy-vton-3.6``, ``lucy-restyle-2`` and the server-side ``-latest`` aliases.
Where the official SDKs disagree on a capture size (``lucy-2.1``: Python 0.2.4 says 1280×720, JS 0.1.20
and C++ say 1088×624) the majority is kept; sizes are only the suggested capture size, the server
resamples. ``lucy-vton-2`` and ``lucy-vton-3`` were removed from the newest Python SDK but are still in
JS 0.1.20: they stay accepted, with a one-line notice (``retired``).

``fps`` is the capture constraint the official SDKs hand to the camera (``{ideal: 30, max: 30}``);
``speeds`` lists the optional serving tiers (``fast``: a higher-compute tier, billed at 2×, §2.2).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from decart_cli.errors import UnknownModelError

__all__ = ["MODELS", "SPEEDS", "Model", "Resolved", "all_names", "get", "offered_names", "resolve"]

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
    speeds: tuple[str, ...] = ()  # optional serving tiers (``speed=`` query parameter)
    retired: str | None = None  # why the newest SDK dropped it: still accepted, with this notice
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
            "speeds": list(self.speeds),
            "retired": self.retired,
            "description": self.description,
            "path": self.path,
        }

    def supports_speed(self, speed: str | None) -> bool:
        """True when ``speed`` is ``None`` (the default tier) or one of :attr:`speeds`."""
        return speed is None or speed in self.speeds


SPEEDS: tuple[str, ...] = ("fast",)
_FAST = SPEEDS
_RETIRED = "no longer offered by the newest official SDK (decart 0.2.4); the service may drop it"

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
    Model(
        "lucy-2.5", 1280, 720, 30, True, "character transformation at 720p; prompt and reference image", speeds=_FAST
    ),
    Model("lucy-2.6", 1280, 720, 30, True, "latest generation at 720p; prompt and reference image", speeds=_FAST),
    Model("lucy-vton-3.5", 1280, 720, 30, True, "virtual try-on at 720p; garment reference image", speeds=_FAST),
    Model(
        "lucy-vton-3.6",
        1280,
        720,
        30,
        True,
        "virtual try-on at 720p, newest; garment reference image",
        aliases=("lucy-vton-latest",),
        speeds=_FAST,
    ),
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
    Model(
        "lucy-vton-2",
        1088,
        624,
        30,
        True,
        "virtual try-on (older); garment reference image",
        deprecated=("lucy-2.1-vton-2",),
        retired=_RETIRED,
    ),
    Model("lucy-vton-3", 1088, 624, 30, True, "virtual try-on (older); garment reference image", retired=_RETIRED),
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
        """One-line notice for stderr (a deprecated or retired name), or ``None``."""
        if self.deprecated_name is not None:
            return f"model {self.deprecated_name!r} is deprecated; using {self.model.name!r} instead"
        if self.model.retired is not None:
            return f"model {self.model.name!r} is {self.model.retired}"
        return None

    def speed_notice(self, speed: str | None) -> str | None:
        """One-line notice when ``speed`` is not a tier of this model (it is sent anyway, §2.2), else ``None``."""
        if self.model.supports_speed(speed):
            return None
        tiers = ", ".join(self.model.speeds) or "none"
        return (
            f"model {self.model.name!r} has no {speed!r} speed tier (tiers: {tiers}); "
            "it is sent anyway and the server ignores it for this model"
        )


def all_names() -> list[str]:
    """Every accepted name: canonical, aliases and deprecated names."""
    names: list[str] = []
    for m in MODELS:
        names += [m.name, *m.aliases, *m.deprecated]
    return names


def offered_names() -> list[str]:
    """The names to offer (shell completion, the panel's Tab): canonical names and aliases of models
    that are not retired. Deprecated names and retired models stay accepted by :func:`resolve`."""
    names: list[str] = []
    for m in MODELS:
        if m.retired is None:
            names += [m.name, *m.aliases]
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
