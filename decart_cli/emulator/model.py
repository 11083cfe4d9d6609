"""The emulator's stand-in "model": cheap OpenCV looks chosen by the prompt, so state changes are visible.

Contract of :meth:`FrameModel.render` (one output frame per input frame):

* The output is always ``width × height`` of the model (input frames of another size are resized).
* Passthrough (no prompt, no image) echoes the input; when the input already has the model's size the
  very same ``av.VideoFrame`` is returned (no pixel work at all).
* Otherwise a look is picked from keywords in the prompt (:data:`LOOKS`), the prompt text is drawn small
  in the bottom-left corner and the reference image is shown as an inset in the bottom-right corner.
* The top-left 64 × 16 pixels (the latency marker, ``latency-marker.md``) are copied **unchanged from the
  input frame as received**, i.e. before any resize. When the client sends model-size frames this is
  the same as copying after the resize; when sizes differ it still preserves the marker bit-exactly
  (a resized marker would smear its 8 × 8 blocks and stop decoding). Inputs smaller than 64 × 16 copy
  what exists.

Costs are kept low for a 2-core machine: heavy filters (bilateral, edges, blur) run at half or quarter
resolution and are upscaled; per-channel effects use lookup tables. ``python -m
decart_cli.emulator.model`` prints the measured milliseconds per frame of every look.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import av
    import numpy.typing as npt

    Image = npt.NDArray[Any]

__all__ = ["LOOKS", "MARKER_SIZE", "FrameModel", "RenderState", "decode_image", "look_for", "main"]

MARKER_SIZE: Final = (64, 16)  # width, height of the latency-marker region copied unchanged
INSET_FRACTION: Final = 0.22  # reference-image inset width as a fraction of the frame width

# keyword → look; the first look whose keyword occurs in the lower-cased prompt wins.
LOOKS: Final[dict[str, tuple[str, ...]]] = {
    "cartoon": ("cartoon", "anime", "comic", "pixar", "manga", "lego", "toon"),
    "sketch": ("sketch", "pencil", "drawing", "charcoal", "ink"),
    "neon": ("neon", "cyberpunk", "synthwave", "glow", "tron", "night"),
    "noir": ("noir", "black and white", "monochrome", "grayscale", "old film", "vintage"),
    "thermal": ("thermal", "heat", "predator", "infrared", "fire", "lava"),
}


def look_for(prompt: str | None) -> str:
    """The look name for ``prompt``: a key of :data:`LOOKS`, ``"tint"`` by default."""
    text = (prompt or "").lower()
    for look, words in LOOKS.items():
        if any(word in text for word in words):
            return look
    return "tint"


@dataclass(frozen=True)
class RenderState:
    """What the model is asked to do; immutable so a frame in flight never sees a half-applied update.

    Attributes:
        prompt: the text prompt, or ``None``.
        image: the decoded reference image (BGR), or ``None``.
    """

    prompt: str | None = None
    image: Image | None = None

    @property
    def passthrough(self) -> bool:
        """True when the output should echo the input."""
        return self.prompt is None and self.image is None


def decode_image(data: bytes) -> Image | None:
    """Decode PNG/JPEG/WebP/... bytes into a BGR array, or ``None`` if OpenCV cannot read them."""
    import cv2
    import numpy as np

    if not data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return None
    return image


class FrameModel:
    """Renders output frames for one session at the model size.

    Not thread-safe per instance: call :meth:`render` from one worker thread at a time (the emulator
    uses a single-thread executor per session, which also keeps frames in order).
    """

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._cache_key: tuple[int, str | None] | None = None
        self._inset: Image | None = None
        self._luts: dict[str, Any] = {}

    # -- public ---------------------------------------------------------------------------------

    def render(self, frame: av.VideoFrame, state: RenderState) -> av.VideoFrame:
        """Produce the output frame for ``frame`` under ``state`` (see the module docstring)."""
        import av as _av

        if state.passthrough and frame.width == self.width and frame.height == self.height:
            return frame
        src = frame.to_ndarray(format="bgr24")
        out = self.render_array(src, state)
        return _av.VideoFrame.from_ndarray(out, format="bgr24")

    def render_array(self, src: Image, state: RenderState) -> Image:
        """The BGR-array core of :meth:`render` (used by the benchmark and the tests)."""
        import cv2
        import numpy as np

        h, w = src.shape[:2]
        base = src if (w, h) == (self.width, self.height) else cv2.resize(src, (self.width, self.height))
        if state.passthrough:
            out = base if base is not src else base.copy()
        else:
            out = self._apply_look(base, look_for(state.prompt), state.prompt)
            if state.prompt:
                self._draw_prompt(out, state.prompt)
            if state.image is not None:
                self._draw_inset(out, state.image)
        mw, mh = min(MARKER_SIZE[0], w, self.width), min(MARKER_SIZE[1], h, self.height)
        out[:mh, :mw] = src[:mh, :mw]
        return np.ascontiguousarray(out)

    # -- looks ----------------------------------------------------------------------------------

    def _apply_look(self, img: Image, look: str, prompt: str | None) -> Image:
        import cv2

        size = (img.shape[1], img.shape[0])
        if look == "cartoon":
            small = cv2.resize(img, (size[0] // 4, size[1] // 4), interpolation=cv2.INTER_AREA)
            smooth = cv2.bilateralFilter(small, 5, 60, 60)
            flat = (smooth // 48) * 48 + 24  # posterize: flat colour areas
            gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
            edges = cv2.adaptiveThreshold(
                cv2.medianBlur(gray, 3), 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 7, 4
            )
            toon = cv2.bitwise_and(flat, flat, mask=edges)
            return cv2.resize(toon, size, interpolation=cv2.INTER_NEAREST)
        if look == "sketch":
            small = cv2.resize(img, (size[0] // 2, size[1] // 2), interpolation=cv2.INTER_AREA)
            gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
            blur = cv2.GaussianBlur(255 - gray, (0, 0), 5)
            sketch = cv2.divide(gray, 255 - blur, scale=256)
            sketch = cv2.resize(sketch, size, interpolation=cv2.INTER_LINEAR)
            return cv2.cvtColor(sketch, cv2.COLOR_GRAY2BGR)
        if look == "neon":
            small = cv2.resize(img, (size[0] // 2, size[1] // 2), interpolation=cv2.INTER_AREA)
            gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
            colour = cv2.applyColorMap(gray, cv2.COLORMAP_PLASMA)
            edges = cv2.Canny(gray, 60, 140)
            glow = cv2.GaussianBlur(cv2.cvtColor(edges, cv2.COLOR_GRAY2BGR), (0, 0), 3)
            lit = cv2.addWeighted(colour, 0.8, glow, 2.5, 0)
            lit[edges > 0] = (255, 255, 80)
            return cv2.resize(lit, size, interpolation=cv2.INTER_LINEAR)
        if look == "noir":
            gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            gray = cv2.LUT(gray, self._lut("noir"))
            return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        if look == "thermal":
            gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            return cv2.applyColorMap(gray, cv2.COLORMAP_INFERNO)
        # default: posterize + a tint whose colour is derived from the prompt text
        return cv2.LUT(img, self._tint_lut(prompt or ""))

    def _lut(self, name: str) -> Any:
        import numpy as np

        if name not in self._luts:
            x = np.arange(256, dtype=np.float32) / 255.0
            curve = 1.0 / (1.0 + np.exp(-(x - 0.5) * 10.0))  # strong S-curve: high-contrast noir
            self._luts[name] = np.clip(curve * 255.0, 0, 255).astype(np.uint8)
        return self._luts[name]

    def _tint_lut(self, prompt: str) -> Any:
        import numpy as np

        key = "tint:" + prompt
        if key not in self._luts:
            digest = hashlib.sha256(prompt.encode("utf-8")).digest()
            tint = np.array([64 + digest[i] % 192 for i in range(3)], dtype=np.float32) / 255.0
            levels = np.arange(256, dtype=np.float32)
            poster = (levels // 64) * 64 + 32  # 4 levels per channel
            lut = np.stack([poster * (0.45 + 0.55 * tint[c]) for c in range(3)], axis=1)
            self._luts[key] = np.clip(lut, 0, 255).astype(np.uint8).reshape(256, 1, 3)
            if len(self._luts) > 64:  # prompts change often; keep the cache small
                self._luts.pop(next(k for k in self._luts if k.startswith("tint:")))
        return self._luts[key]

    # -- overlays -------------------------------------------------------------------------------

    def _draw_prompt(self, out: Image, prompt: str) -> None:
        import cv2

        text = prompt if len(prompt) <= 60 else prompt[:59] + "…"
        text = text.encode("ascii", "replace").decode("ascii")  # Hershey fonts are ASCII only
        y = out.shape[0] - 10
        cv2.putText(out, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)

    def _draw_inset(self, out: Image, image: Image) -> None:
        import cv2

        key = (id(image), None)
        if self._cache_key != key or self._inset is None:
            iw = max(8, int(self.width * INSET_FRACTION))
            ih = max(8, min(int(iw * image.shape[0] / max(1, image.shape[1])), self.height // 2))
            inset = cv2.resize(image, (iw, ih), interpolation=cv2.INTER_AREA)
            cv2.rectangle(inset, (0, 0), (iw - 1, ih - 1), (255, 255, 255), 2)
            self._inset, self._cache_key = inset, key
        inset = self._inset
        ih, iw = inset.shape[:2]
        y0, x0 = out.shape[0] - ih - 8, out.shape[1] - iw - 8
        out[y0 : y0 + ih, x0 : x0 + iw] = inset


def benchmark(width: int = 1088, height: int = 624, frames: int = 60) -> dict[str, float]:
    """Milliseconds per frame of each look at ``width × height`` (full ``render`` incl. conversions)."""
    import av
    import numpy as np

    rng = np.random.default_rng(1)
    src = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(src, format="bgr24").reformat(format="yuv420p")
    model = FrameModel(width, height)
    image = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
    prompts = {
        "passthrough": None,
        "tint": "a watercolor landscape",
        "cartoon": "anime hero",
        "sketch": "pencil sketch",
        "neon": "cyberpunk city",
        "noir": "film noir",
        "thermal": "thermal camera",
    }
    results: dict[str, float] = {}
    for name, prompt in prompts.items():
        state = RenderState(prompt=prompt, image=None if prompt is None else image)
        model.render(frame, state)  # warm caches
        start = time.perf_counter()
        for _ in range(frames):
            model.render(frame, state)
        results[name] = (time.perf_counter() - start) * 1000.0 / frames
    return results


def main() -> None:  # pragma: no cover - a measurement script
    """Print ms per frame for every look at lucy-2.1 and lucy-2.5 sizes."""
    for w, h in ((1088, 624), (1280, 720)):
        for look, ms in benchmark(w, h).items():
            print(f"{w}x{h} {look:12s} {ms:6.2f} ms/frame")


if __name__ == "__main__":  # pragma: no cover
    main()
