"""Pure camera-mode negotiation and frame-geometry helpers (standard library only).

The seed's "camera setup" practice: ask the device for the model's exact ``width × height @ fps``;
when it refuses, fall back like a browser's ``ideal`` constraint (nearest 16:9 mode, then 4:3, then
whatever the device gives), and adapt on the client by centre-cropping to the model's aspect and
resizing to the exact model size (never stretching). Everything here takes explicit numbers and
timestamps, so it is tested without a device, a clock or an event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FALLBACK_16_9",
    "FALLBACK_4_3",
    "FpsGate",
    "Mode",
    "crop_rect",
    "fallback_chain",
    "mode_note",
    "pick_best",
]

# Common UVC / laptop camera modes, largest first. Order inside a group does not matter:
# fallback_chain() sorts by closeness to the target.
FALLBACK_16_9: tuple[tuple[int, int], ...] = (
    (1920, 1080),
    (1600, 900),
    (1280, 720),
    (1024, 576),
    (960, 540),
    (848, 480),
    (640, 360),
)
FALLBACK_4_3: tuple[tuple[int, int], ...] = (
    (1600, 1200),
    (1280, 960),
    (1024, 768),
    (800, 600),
    (640, 480),
)


@dataclass(frozen=True, order=True)
class Mode:
    """A capture mode: ``width × height`` at ``fps`` frames per second."""

    width: int
    height: int
    fps: float

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return (self.width, self.height)

    def as_tuple(self) -> tuple[int, int, float]:
        """``(width, height, fps)`` as reported in ``SourceInfo``."""
        return (self.width, self.height, self.fps)

    def __str__(self) -> str:
        return f"{self.width}×{self.height}@{self.fps:g}"


def _closeness(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, float]:
    """Sort key: modes that cover the target after cropping first, then by pixel-count distance."""
    w, h = size
    tw, th = target
    covers = 0 if _cropped_size(w, h, tw, th)[0] >= tw else 1
    return (covers, abs(w * h - tw * th) / (tw * th))


def fallback_chain(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes to request, in order, for a model of ``width × height``.

    The exact model size comes first, then the 16:9 modes nearest to it (modes large enough to
    crop down to the model size before smaller ones), then the 4:3 modes in the same order. After
    the chain the caller takes whatever the device gives.

    Returns:
        distinct ``(w, h)`` pairs, exact size first.
    """
    target = (width, height)
    chain = [target]
    for group in (FALLBACK_16_9, FALLBACK_4_3):
        for size in sorted(group, key=lambda s: _closeness(s, target)):
            if size not in chain:
                chain.append(size)
    return chain


def pick_best(granted: list[Mode], width: int, height: int, fps: float) -> Mode | None:
    """Choose the best of the modes a device actually granted during negotiation.

    Preference: a mode that covers the model size after centre-cropping (no upscaling), then the
    one with the least wasted pixels, then the fps closest to (but not above need of) ``fps``.

    Returns:
        the best mode, or ``None`` when ``granted`` is empty.
    """
    if not granted:
        return None

    def key(m: Mode) -> tuple[int, float, float]:
        covers, dist = _closeness(m.size, (width, height))
        fps_short = max(0.0, fps - m.fps)  # too slow is worse than too fast (extra frames drop)
        return (covers, fps_short, dist)

    return min(granted, key=key)


def _cropped_size(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int]:
    """Largest ``(w, h)`` inside ``src`` with the aspect ratio of ``dst``."""
    # Compare cross products in integers: src_w/src_h > dst_w/dst_h  ⇔  src_w*dst_h > dst_w*src_h.
    if src_w * dst_h > dst_w * src_h:  # source is wider: keep full height, trim the sides
        return (max(1, min(src_w, round(src_h * dst_w / dst_h))), src_h)
    return (src_w, max(1, min(src_h, round(src_w * dst_h / dst_w))))


def crop_rect(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """The centred region of a ``src_w × src_h`` frame that has the aspect ratio of ``dst``.

    Resizing this region to ``dst_w × dst_h`` changes the size without distorting the picture.

    Args:
        src_w, src_h: size of the captured frame (positive).
        dst_w, dst_h: size the model expects (positive).

    Returns:
        ``(x, y, w, h)`` with ``0 <= x``, ``x + w <= src_w``, ``0 <= y``, ``y + h <= src_h``.

    Raises:
        ValueError: a size is not positive.
    """
    if min(src_w, src_h, dst_w, dst_h) <= 0:
        raise ValueError(f"sizes must be positive: {src_w}×{src_h} → {dst_w}×{dst_h}")
    w, h = _cropped_size(src_w, src_h, dst_w, dst_h)
    return ((src_w - w) // 2, (src_h - h) // 2, w, h)


def mode_note(asked: Mode, device: Mode, sent: Mode) -> str:
    """A one-line human description of how the device's mode was adapted to the model."""
    if device.size == sent.size:
        size = f"camera gives the model size {device.width}×{device.height}"
    else:
        _, _, cw, ch = crop_rect(device.width, device.height, sent.width, sent.height)
        crop = "" if (cw, ch) == device.size else f"centre-crop {cw}×{ch}, "
        verb = "downscale" if cw >= sent.width else "upscale"
        size = f"camera gives {device.width}×{device.height}: {crop}{verb} to {sent.width}×{sent.height}"
    if device.fps > sent.fps + 0.5:
        rate = f"; {device.fps:g} fps capped to {sent.fps:g} (extra frames dropped)"
    elif device.fps and device.fps < asked.fps - 0.5:
        rate = f"; device delivers only {device.fps:g} fps of the {asked.fps:g} asked"
    else:
        rate = ""
    return size + rate


class FpsGate:
    """Decides which frames to keep so no more than ``fps`` frames per second go out.

    Frames arriving faster than ``fps`` are dropped (never queued). Slots are on a fixed grid of
    ``1/fps``; a frame up to ``tolerance`` of an interval early still takes its slot, so a
    jittery 30 fps camera feeding a 30 fps model keeps every frame, and a 60 fps camera keeps
    every other one. Over any span at most ``span × fps + 1`` frames pass. Feed it explicit
    timestamps (seconds, monotonic).
    """

    def __init__(self, fps: float, tolerance: float = 0.4) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.interval = 1.0 / fps
        self._slack = self.interval * tolerance
        self._next: float | None = None

    def accept(self, t: float) -> bool:
        """True when a frame captured at ``t`` should be sent; False when it must be dropped."""
        if self._next is None or t >= self._next - self._slack:
            nxt = (t if self._next is None else self._next) + self.interval
            # After a long gap (stall, slow source) re-anchor on now instead of bursting.
            self._next = max(nxt, t + self.interval - self._slack)
            return True
        return False
