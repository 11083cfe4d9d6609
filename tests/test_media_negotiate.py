"""Pure camera-mode negotiation and geometry (decart_cli.core.negotiate): no device, no clock."""

from __future__ import annotations

import pytest

from decart_cli.core import negotiate
from decart_cli.core.negotiate import FpsGate, Mode, crop_rect, fallback_chain, mode_note, pick_best


def test_all_is_pinned() -> None:
    """The module's public names are exactly these."""
    assert sorted(negotiate.__all__) == sorted(
        ["FALLBACK_16_9", "FALLBACK_4_3", "FpsGate", "Mode", "crop_rect", "fallback_chain", "mode_note", "pick_best"]
    )


def test_chain_starts_with_exact_size_then_16_9_then_4_3() -> None:
    """The model's own size is asked first, then 16:9 modes, then 4:3 modes, without duplicates."""
    chain = fallback_chain(1088, 624)
    assert chain[0] == (1088, 624)
    assert len(chain) == len(set(chain))
    n169 = len(negotiate.FALLBACK_16_9)
    assert all(abs(w / h - 16 / 9) < 0.02 for w, h in chain[1 : 1 + n169])
    assert all(abs(w / h - 4 / 3) < 0.01 for w, h in chain[1 + n169 :])


def test_chain_prefers_nearest_mode_that_covers_the_model() -> None:
    """Right after the exact size comes 1280×720 (smallest 16:9 that covers 1088×624 after cropping)."""
    assert fallback_chain(1088, 624)[1] == (1280, 720)
    # lucy-2.5 is itself 1280×720: the exact mode is first and not repeated.
    chain = fallback_chain(1280, 720)
    assert chain[0] == (1280, 720) and chain.count((1280, 720)) == 1
    assert chain[1] == (1600, 900)


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        ((1280, 720), (1088, 624), (12, 0, 1255, 720)),  # wider source: trim the sides
        ((640, 480), (1088, 624), (0, 56, 640, 367)),  # 4:3 source: trim top and bottom
        ((1088, 624), (1088, 624), (0, 0, 1088, 624)),  # already right
        ((1280, 720), (1280, 704), (0, 8, 1280, 704)),  # lucy-restyle-2: trim 8 rows top and bottom
        ((800, 800), (1280, 720), (0, 175, 800, 450)),  # square (odd aspect)
    ],
)
def test_crop_rect_keeps_the_model_aspect(
    src: tuple[int, int], dst: tuple[int, int], expected: tuple[int, ...]
) -> None:
    """The crop is centred, inside the frame and has the destination's aspect ratio."""
    x, y, w, h = crop_rect(*src, *dst)
    assert (x, y, w, h) == expected
    assert 0 <= x and x + w <= src[0] and 0 <= y and y + h <= src[1]
    assert abs(w / h - dst[0] / dst[1]) < 0.005


def test_crop_rect_rejects_empty_sizes() -> None:
    """A zero size is a ValueError naming the sizes."""
    with pytest.raises(ValueError, match="0×720"):
        crop_rect(0, 720, 1088, 624)


def test_pick_best_prefers_covering_modes_and_enough_fps() -> None:
    """Among granted modes: one that covers the model size wins; among those, the one with enough fps."""
    granted = [Mode(640, 480, 30), Mode(1920, 1080, 5), Mode(1280, 720, 30)]
    assert pick_best(granted, 1088, 624, 30) == Mode(1280, 720, 30)
    assert pick_best([Mode(640, 480, 30)], 1088, 624, 30) == Mode(640, 480, 30)
    assert pick_best([], 1088, 624, 30) is None


def test_mode_note_explains_crop_resize_and_fps() -> None:
    """The note names the device size, the crop and the fps cap or shortfall."""
    note = mode_note(Mode(1088, 624, 30), Mode(1280, 720, 60), Mode(1088, 624, 30))
    assert "1280×720" in note and "centre-crop 1255×720" in note and "downscale" in note and "60 fps capped" in note
    assert "upscale" in mode_note(Mode(1088, 624, 30), Mode(640, 480, 30), Mode(1088, 624, 30))
    assert "only 15 fps" in mode_note(Mode(1088, 624, 30), Mode(1088, 624, 15), Mode(1088, 624, 15))
    assert "model size" in mode_note(Mode(1088, 624, 30), Mode(1088, 624, 30), Mode(1088, 624, 30))


def test_fps_gate_keeps_jittery_30_fps_and_halves_60_fps() -> None:
    """A jittery 30 fps feed into a 30 fps model loses nothing; a 60 fps feed loses every other frame."""
    gate = FpsGate(30)
    jitter = [0.004, -0.003, 0.006, -0.005, 0.0]
    kept = sum(gate.accept(i / 30 + jitter[i % 5]) for i in range(300))
    assert kept == 300
    gate = FpsGate(30)
    kept60 = sum(gate.accept(i / 60) for i in range(600))
    assert kept60 == 300


def test_fps_gate_reanchors_after_a_gap() -> None:
    """After a stall the gate does not let a burst through to catch up."""
    gate = FpsGate(10)
    assert gate.accept(0.0)
    assert gate.accept(5.0)  # long gap
    assert not gate.accept(5.01)
    assert gate.accept(5.1)


def test_fps_gate_rejects_nonpositive_fps() -> None:
    """fps must be positive."""
    with pytest.raises(ValueError):
        FpsGate(0)


def test_mode_str_and_same_aspect_note() -> None:
    """Modes print as W×H@fps; a same-aspect device size is scaled without a crop in the note."""
    assert str(Mode(1280, 720, 29.97)) == "1280×720@29.97"
    assert Mode(1088, 624, 30).as_tuple() == (1088, 624, 30)
    note = mode_note(Mode(1088, 624, 30), Mode(2176, 1248, 30), Mode(1088, 624, 30))
    assert note == "camera gives 2176×1248: downscale to 1088×624"
