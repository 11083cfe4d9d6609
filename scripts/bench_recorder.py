#!/usr/bin/env python3
"""Print the recorder's encoder speed at a model size: frames/s of each codec, idle and with every core busy.

Usage: bench_recorder.py [--frames N] [--size 1088x624] [--no-load]

The frames are a moving gradient with a noisy block (harder than the flat test pattern, easier than
camera noise), encoded exactly as ``decart stream --record`` encodes them (decart_cli.media.recorder).
Numbers, not asserts: the tests never assert speed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _spin() -> None:
    while True:
        pass


def _frames(n: int, width: int, height: int) -> list[object]:
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (height // 3, width // 4, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    out = []
    for i in range(n):
        img = np.zeros((height, width, 3), np.uint8)
        img[..., 0] = (xx + i * 3) % 256
        img[..., 1] = (yy + i * 2) % 256
        img[..., 2] = ((xx + yy) // 4 + i) % 256
        x = (i * 5) % (width - noise.shape[1])
        img[height // 3 : height // 3 + noise.shape[0], x : x + noise.shape[1]] = noise
        out.append(av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p"))
    return out


def _encode(suffix: str, frames: list[object], fps: int = 30) -> tuple[str, float]:
    from decart_cli.media.recorder import Recorder

    with tempfile.TemporaryDirectory() as tmp:
        rec = Recorder(Path(tmp) / f"bench{suffix}", fps)
        start = time.perf_counter()
        for i, frame in enumerate(frames):
            rec.write(frame, t=i / fps)
        rec.close()
        took = time.perf_counter() - start
        assert rec.frames_written == len(frames) and rec.frames_lost == 0
        return rec.codec_name, len(frames) / took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", default="1088x624")
    parser.add_argument("--no-load", action="store_true", help="skip the run with every core busy")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    frames = _frames(args.frames, width, height)
    loads = [False] if args.no_load else [False, True]
    print(f"recorder encoder, {args.frames} frames at {width}x{height}, {os.cpu_count()} cores")
    for busy in loads:
        hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(os.cpu_count() or 2)] if busy else []
        for hog in hogs:
            hog.start()
        try:
            for suffix in (".webm", ".mp4"):
                codec, fps = _encode(suffix, frames)
                print(f"  {suffix:5} {codec:8} {'all cores busy' if busy else 'idle':15} {fps:6.1f} frames/s")
        finally:
            for hog in hogs:
                hog.terminate()
                hog.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
