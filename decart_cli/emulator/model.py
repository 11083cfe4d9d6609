"""The emulator's stand-in "model": cheap looks chosen by the prompt, so state changes are visible.

Contract of :meth:`FrameModel.render` (one output frame per input frame):

* The output is a ``yuv420p`` frame of exactly the model's ``width × height`` (other input sizes are
  rescaled).
* Passthrough (no prompt, no image) echoes the input; when the input already has the model's size the
  very same ``av.VideoFrame`` is returned (no pixel work at all).
* Otherwise a look is picked from keywords in the prompt (:data:`LOOKS`), the prompt text is drawn
  small in the bottom-left corner and the reference image is shown as an inset in the bottom-right.
* The top-left 64 × 16 pixels (the latency marker, ``latency-marker.md``) are copied **unchanged from
  the input frame as received**, i.e. before any rescale: its Y plane ``[:16, :64]`` and U/V planes
  ``[:8, :32]``. When the client sends model-size frames this is the same as copying after the resize;
  when sizes differ it still preserves the marker bit-exactly (a rescaled marker would smear its 8 × 8
  blocks and stop decoding). Inputs smaller than the region copy what exists.
* Exception, the LiveKit era: when the client published its track at ``source_size`` and the frame
  arrives smaller (a lower simulcast layer, e.g. 816×468 of 1088×624), the marker was stamped at
  64 × 16 of ``source_size`` and shrank with the frame. Its region is then scaled back to 64 × 16
  (``testing-both-eras.md``), so the 8 × 8 blocks still decode.

Why YUV: aiortc decodes to ``yuv420p`` and its encoders want ``yuv420p``. A BGR round trip costs
~9.5 ms per 1088 × 624 frame on the reference machine, more than every look here, so the looks work on
the planes directly (luma LUTs, chroma set from LUTs of the downscaled luma, filters at half or
quarter resolution). ``python -m decart_cli.emulator.model`` prints milliseconds per frame per look.
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

__all__ = ["LOOKS", "MARKER_SIZE", "FrameModel", "RenderState", "benchmark", "decode_image", "look_for", "main"]

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
        image: the decoded reference image (BGR array), or ``None``.
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
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return None
    return image


def planes(arr: Image, width: int, height: int) -> tuple[Image, Image, Image]:
    """Views of the Y, U and V planes of a packed ``(height * 3 // 2, width)`` I420 array."""
    chroma = arr[height:].reshape(2, height // 2, width // 2)
    return arr[:height], chroma[0], chroma[1]


def _colormap_luts(colormap: int) -> tuple[Image, Image, Image]:
    """Y, U, V lookup tables that map a luma value through an OpenCV colour map."""
    import cv2
    import numpy as np

    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, colormap).reshape(256, 1, 3)
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV).reshape(256, 3)
    return yuv[:, 0].copy(), yuv[:, 1].copy(), yuv[:, 2].copy()


class FrameModel:
    """Renders output frames for one session at the model size.

    Not thread-safe per instance: call :meth:`render` from one worker thread at a time (the emulator
    uses a single-thread executor per session, which also keeps frames in order).
    """

    def __init__(self, width: int, height: int) -> None:
        self.width = width - width % 2  # I420 needs even sizes; every catalogue size is even
        self.height = height - height % 2
        self._luts: dict[str, Any] = {}
        self._inset_key: int | None = None
        self._inset: tuple[Image, Image, Image] | None = None

    # -- public ---------------------------------------------------------------------------------

    def render(
        self, frame: av.VideoFrame, state: RenderState, source_size: tuple[int, int] | None = None
    ) -> av.VideoFrame:
        """Produce the output frame for ``frame`` under ``state`` (see the module docstring).

        Args:
            frame: the decoded input frame.
            state: prompt and reference image to apply.
            source_size: ``(width, height)`` the client published its track at, when known (LiveKit
                era); a smaller frame is a simulcast layer and its marker is scaled back up.
        """
        import av as _av

        same_size = frame.width == self.width and frame.height == self.height
        i420 = frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0
        if state.passthrough and same_size and i420:
            return frame
        if same_size and i420:
            out = frame.to_ndarray()  # a packed copy; the look itself keeps the marker region
            self.apply(out, state)
        else:
            out = frame.reformat(self.width, self.height, "yuv420p").to_ndarray()
            if not state.passthrough:
                self.apply(out, state)
            layer = source_size is not None and source_size != (frame.width, frame.height)
            if i420 and layer and source_size is not None:
                self._copy_marker_scaled(frame.to_ndarray(), frame.width, frame.height, source_size, out)
            elif i420:  # odd-sized or non-I420 input keeps the rescaled marker (documented limit)
                self._copy_marker(frame.to_ndarray(), frame.width, frame.height, out)
        return _av.VideoFrame.from_ndarray(out, format="yuv420p")

    def apply(self, out: Image, state: RenderState) -> None:
        """Apply the look, prompt text and inset in place to a model-size packed I420 array."""
        y, u, v = planes(out, self.width, self.height)
        self._look(y, u, v, look_for(state.prompt), state.prompt or "")
        if state.prompt:
            self._draw_prompt(y, u, v, state.prompt)
        if state.image is not None:
            self._draw_inset(y, u, v, state.image)

    def _copy_marker(self, src: Image, sw: int, sh: int, out: Image) -> None:
        """Copy the marker region of the input planes, unscaled, into ``out``."""
        sy, su, sv = planes(src, sw, sh)
        oy, ou, ov = planes(out, self.width, self.height)
        mw, mh = min(MARKER_SIZE[0], sw, self.width), min(MARKER_SIZE[1], sh, self.height)
        oy[:mh, :mw] = sy[:mh, :mw]
        ou[: mh // 2, : mw // 2] = su[: mh // 2, : mw // 2]
        ov[: mh // 2, : mw // 2] = sv[: mh // 2, : mw // 2]

    def _copy_marker_scaled(self, src: Image, sw: int, sh: int, source_size: tuple[int, int], out: Image) -> None:
        """Copy the marker of a scaled-down layer: its region shrank by ``sw/source_w``; scale it back to 64 × 16."""
        import cv2

        sy, su, sv = planes(src, sw, sh)
        oy, ou, ov = planes(out, self.width, self.height)
        mw, mh = MARKER_SIZE
        fx, fy = sw / max(1, source_size[0]), sh / max(1, source_size[1])
        rw, rh = max(2, min(sw, round(mw * fx))), max(2, min(sh, round(mh * fy)))
        ow, oh = min(mw, self.width), min(mh, self.height)
        oy[:oh, :ow] = cv2.resize(sy[:rh, :rw], (ow, oh), interpolation=cv2.INTER_LINEAR)
        cw, ch = max(1, rw // 2), max(1, rh // 2)
        ou[: oh // 2, : ow // 2] = cv2.resize(su[:ch, :cw], (ow // 2, oh // 2), interpolation=cv2.INTER_LINEAR)
        ov[: oh // 2, : ow // 2] = cv2.resize(sv[:ch, :cw], (ow // 2, oh // 2), interpolation=cv2.INTER_LINEAR)

    # -- looks ----------------------------------------------------------------------------------

    def _look(self, y: Image, u: Image, v: Image, look: str, prompt: str) -> None:
        import cv2
        import numpy as np

        mw, mh = MARKER_SIZE
        marker = (y[:mh, :mw].copy(), u[: mh // 2, : mw // 2].copy(), v[: mh // 2, : mw // 2].copy())
        half = (self.width // 2, self.height // 2)
        if look == "cartoon":
            quarter = (self.width // 4, self.height // 4)
            ys = cv2.resize(y, quarter, interpolation=cv2.INTER_AREA)
            smooth = cv2.bilateralFilter(ys, 5, 40, 40)
            edges = cv2.adaptiveThreshold(
                cv2.medianBlur(ys, 3), 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 7, 3
            )
            toon = cv2.LUT(smooth, self._lut("poster5"))
            toon = np.minimum(toon, edges)  # black outlines
            y[:] = cv2.resize(toon, (self.width, self.height), interpolation=cv2.INTER_NEAREST)
            for plane in (u, v):  # flat, saturated colour areas
                cs = cv2.resize(plane, quarter, interpolation=cv2.INTER_AREA)
                plane[:] = cv2.resize(cv2.LUT(cs, self._lut("saturate")), half, interpolation=cv2.INTER_NEAREST)
        elif look == "sketch":
            ys = cv2.resize(y, half, interpolation=cv2.INTER_AREA)
            blur = cv2.blur(255 - ys, (11, 11))  # box blur: constant cost per pixel
            sketch = cv2.divide(ys, 255 - blur, scale=256)
            y[:] = cv2.resize(sketch, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            u.fill(128)
            v.fill(128)
        elif look == "neon":
            ly, lu, lv = self._cmap("plasma", cv2.COLORMAP_PLASMA)
            ys = cv2.resize(y, half, interpolation=cv2.INTER_AREA)
            edges = cv2.Canny(ys, 60, 140)
            glow = cv2.blur(edges, (5, 5))
            u[:] = cv2.LUT(ys, lu)
            v[:] = cv2.LUT(ys, lv)
            u[glow > 40] = 200  # cyan-ish glow around edges
            v[glow > 40] = 60
            lit = cv2.add(cv2.LUT(y, ly), cv2.resize(glow, (self.width, self.height), interpolation=cv2.INTER_LINEAR))
            y[:] = lit
        elif look == "noir":
            y[:] = cv2.LUT(y, self._lut("noir"))
            u.fill(128)
            v.fill(128)
        elif look == "thermal":
            ly, lu, lv = self._cmap("inferno", cv2.COLORMAP_INFERNO)
            ys = cv2.resize(y, half, interpolation=cv2.INTER_NEAREST)
            u[:] = cv2.LUT(ys, lu)
            v[:] = cv2.LUT(ys, lv)
            y[:] = cv2.LUT(y, ly)
        else:  # tint: posterized luma, chroma pulled towards a colour derived from the prompt text
            lu, lv = self._tint(prompt)
            y[:] = cv2.LUT(y, self._lut("poster5"))
            u[:] = cv2.LUT(u, lu)
            v[:] = cv2.LUT(v, lv)
        # the look must not touch the marker: put it back (after a rescale the caller copies the original)
        y[:mh, :mw], u[: mh // 2, : mw // 2], v[: mh // 2, : mw // 2] = marker

    def _lut(self, name: str) -> Any:
        import numpy as np

        if name not in self._luts:
            x = np.arange(256, dtype=np.float32)
            if name == "noir":  # strong S-curve: high-contrast black and white
                table = 255.0 / (1.0 + np.exp(-(x / 255.0 - 0.5) * 10.0))
            elif name == "poster5":
                table = (x // 52) * 52 + 26
            else:  # "saturate": push chroma away from neutral, in coarse steps
                table = 128 + np.round((x - 128) * 1.8 / 16) * 16
            self._luts[name] = np.clip(table, 0, 255).astype(np.uint8)
        return self._luts[name]

    def _cmap(self, name: str, colormap: int) -> tuple[Image, Image, Image]:
        key = "cmap:" + name
        if key not in self._luts:
            self._luts[key] = _colormap_luts(colormap)
        return self._luts[key]  # type: ignore[no-any-return]

    def _tint(self, prompt: str) -> tuple[Image, Image]:
        import numpy as np

        key = "tint:" + prompt
        if key not in self._luts:
            digest = hashlib.sha256(prompt.encode("utf-8")).digest()
            target_u, target_v = 64 + digest[0] % 128, 64 + digest[1] % 128
            x = np.arange(256, dtype=np.float32)
            lu = np.clip((x - 128) * 0.4 + target_u, 0, 255).astype(np.uint8)
            lv = np.clip((x - 128) * 0.4 + target_v, 0, 255).astype(np.uint8)
            if sum(k.startswith("tint:") for k in self._luts) > 64:  # prompts change often; stay small
                self._luts.pop(next(k for k in self._luts if k.startswith("tint:")))
            self._luts[key] = (lu, lv)
        return self._luts[key]  # type: ignore[no-any-return]

    # -- overlays -------------------------------------------------------------------------------

    def _draw_prompt(self, y: Image, u: Image, v: Image, prompt: str) -> None:
        import cv2

        text = prompt if len(prompt) <= 60 else prompt[:59] + "~"
        text = text.encode("ascii", "replace").decode("ascii")  # Hershey fonts are ASCII only
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        y0 = self.height - 10
        top = max(0, y0 - th - 6) & ~1
        y[top : y0 + 6, 4 : 16 + tw] //= 3  # darken a box behind the text so it reads on any look
        u[top // 2 : (y0 + 6) // 2, 2 : (16 + tw) // 2] = 128
        v[top // 2 : (y0 + 6) // 2, 2 : (16 + tw) // 2] = 128
        cv2.putText(y, text, (10, y0), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1, cv2.LINE_AA)

    def _draw_inset(self, y: Image, u: Image, v: Image, image: Image) -> None:
        import cv2

        if self._inset_key != id(image) or self._inset is None:
            iw = max(8, int(self.width * INSET_FRACTION)) & ~1
            ih = max(8, min(int(iw * image.shape[0] / max(1, image.shape[1])), self.height // 2)) & ~1
            bgr = cv2.resize(image, (iw, ih), interpolation=cv2.INTER_AREA)
            cv2.rectangle(bgr, (0, 0), (iw - 1, ih - 1), (255, 255, 255), 2)
            i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # once per image, not per frame
            self._inset, self._inset_key = planes(i420, iw, ih), id(image)
        iy, iu, iv = self._inset
        ih, iw = iy.shape
        y0, x0 = (self.height - ih - 8) & ~1, (self.width - iw - 8) & ~1
        y[y0 : y0 + ih, x0 : x0 + iw] = iy
        u[y0 // 2 : (y0 + ih) // 2, x0 // 2 : (x0 + iw) // 2] = iu
        v[y0 // 2 : (y0 + ih) // 2, x0 // 2 : (x0 + iw) // 2] = iv


def benchmark(width: int = 1088, height: int = 624, frames: int = 60) -> dict[str, float]:
    """Milliseconds per frame of each look at ``width × height`` (full :meth:`FrameModel.render`)."""
    import av
    import numpy as np

    rng = np.random.default_rng(1)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    yy = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    noise = rng.integers(0, 40, (height, width, 3)).astype(np.float32)
    src = np.clip((x + yy) / 2 + noise, 0, 255).astype(np.uint8)  # camera-like: gradient + noise
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
