"""The model catalogue: sizes, aliases, deprecated names, suggestions."""

from __future__ import annotations

import pytest

from decart_cli.core import catalog
from decart_cli.errors import ExitStatus, UnknownModelError


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("lucy-2.1", (1088, 624)),
        ("lucy-2.5", (1280, 720)),
        ("lucy-2.6", (1280, 720)),
        ("lucy-vton-3.5", (1280, 720)),
        ("lucy-vton-3.6", (1280, 720)),
        ("lucy-vton-2", (1088, 624)),
        ("lucy-vton-3", (1088, 624)),
        ("lucy-restyle-2", (1280, 704)),
    ],
)
def test_sizes_match_the_protocol_catalogue(name: str, size: tuple[int, int]) -> None:
    """Each canonical model has the width × height of decart-protocol.md §7.1 and 30 fps."""
    model = catalog.get(name)
    assert model.size == size
    assert model.fps == 30


def test_latest_alias_passes_through_on_the_wire() -> None:
    """A -latest alias resolves to its model but is sent unchanged (resolved server-side)."""
    resolved = catalog.resolve("lucy-vton-latest")
    assert resolved.model.name == "lucy-vton-3.6"  # py@0.2.4: "currently resolves to lucy-vton-3.6"
    assert resolved.wire_name == "lucy-vton-latest"
    assert resolved.notice is None


def test_deprecated_name_maps_to_canonical_with_notice() -> None:
    """A deprecated name is replaced by the canonical one and yields a one-line notice."""
    resolved = catalog.resolve("lucy-2.1-vton-2")
    assert resolved.wire_name == "lucy-vton-2"
    assert resolved.notice is not None and "deprecated" in resolved.notice and "\n" not in resolved.notice


def test_lookup_is_case_and_space_insensitive() -> None:
    """Names typed with capitals or stray spaces still resolve."""
    assert catalog.resolve("  LUCY-2.1 ").model.name == "lucy-2.1"


def test_unknown_name_suggests_close_matches() -> None:
    """An unknown name raises a usage error (exit 2) with 'did you mean'."""
    with pytest.raises(UnknownModelError) as info:
        catalog.resolve("lucy-21")
    assert info.value.exit_status == ExitStatus.USAGE
    assert "lucy-2.1" in info.value.suggestions
    assert info.value.hint is not None and info.value.hint.startswith("did you mean")


def test_every_name_is_unique() -> None:
    """No alias or deprecated name is claimed by two models."""
    names = catalog.all_names()
    assert len(names) == len(set(names))


def test_fast_tier_is_listed_for_the_models_that_have_it() -> None:
    """speed=fast exists for lucy-2.5, 2.6 and the 720p try-on models (decart-protocol-2026-11.md §2.2)."""
    fast = {m.name for m in catalog.MODELS if "fast" in m.speeds}
    assert fast == {"lucy-2.5", "lucy-2.6", "lucy-vton-3.5", "lucy-vton-3.6"}
    assert catalog.resolve("lucy-2.6").speed_notice("fast") is None
    notice = catalog.resolve("lucy-2.1").speed_notice("fast")
    assert notice is not None and "lucy-2.1" in notice and "\n" not in notice


def test_names_the_newest_sdk_removed_are_accepted_with_a_notice() -> None:
    """lucy-vton-2/3 left decart 0.2.4 but are still in JS 0.1.20: accepted, sent unchanged, one notice line."""
    for name in ("lucy-vton-2", "lucy-vton-3"):
        resolved = catalog.resolve(name)
        assert resolved.wire_name == name
        assert resolved.notice is not None and "newest official SDK" in resolved.notice
    assert catalog.resolve("lucy-2.6").notice is None
