#!/usr/bin/env python3
"""Print the speed figures the issues ask for; numbers, not asserts.

1. Startup: wall time of `decart --help` and `decart models --json` (median of N runs).
2. REST: mean time of a warm `POST /v1/client/tokens` against the emulator.
3. Realtime session against an in-process `decart serve` at a model's size: time from connect()
   to the first remote frame, frames/s sent and received over a window, and peak RSS.

Usage: scripts/bench.py [--runs N] [--seconds S] [--model NAME] [--skip-session]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def time_command(args: list[str], runs: int) -> tuple[float, float]:
    """Median and min wall time in ms of running ``python -m decart_cli ARGS``."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "decart_cli", *args], capture_output=True, check=True)
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), min(samples)


async def session_bench(model_name: str, seconds: float) -> dict[str, float]:
    """Connect a RealtimeSession with the synthetic source to an in-process emulator and measure."""
    from decart_cli.config import Secret, Timeouts
    from decart_cli.core import catalog
    from decart_cli.core.session import DesiredState
    from decart_cli.emulator.server import Emulator, EmulatorConfig
    from decart_cli.media.source import MirrorMode, SourceSpec, open_source
    from decart_cli.realtime import RealtimeSession, SessionConfig

    resolved = catalog.resolve(model_name)
    model = resolved.model
    first_frame = asyncio.get_running_loop().create_future()
    received: list[float] = []

    def on_frame(frame: object) -> None:
        received.append(time.perf_counter())
        if not first_frame.done():
            first_frame.set_result((time.perf_counter(), getattr(frame, "width", 0), getattr(frame, "height", 0)))

    async with Emulator(EmulatorConfig()) as emu:
        from decart_cli.transport.rest import RestClient

        async with RestClient(emu.http_url, Secret("bench-key-000"), timeouts=Timeouts()) as rest:
            await rest.create_token({"expiresIn": 60})  # warm the pool
            t_rest = time.perf_counter()
            for _ in range(20):
                await rest.create_token({"expiresIn": 60})
            token_ms = (time.perf_counter() - t_rest) * 1000 / 20
        source = open_source(
            SourceSpec.parse("test", None, False),
            width=model.width,
            height=model.height,
            fps=model.fps,
            mirror=MirrorMode.OFF,
        )
        session = RealtimeSession(
            SessionConfig(
                realtime_url=emu.ws_url,
                credential=Secret("bench-key-000"),
                model=resolved,
                initial=DesiredState(prompt="anime"),
                timeouts=Timeouts(),
            ),
            source.track,
            on_frame=on_frame,
        )
        t0 = time.perf_counter()
        await session.connect()
        t_connected = time.perf_counter()
        t_first, w, h = await asyncio.wait_for(first_frame, 30)
        start = time.perf_counter()
        sent0 = source.frames_sent
        n0 = len(received)
        await asyncio.sleep(seconds)
        window = time.perf_counter() - start
        fps_in = (len(received) - n0) / window
        fps_out = (source.frames_sent - sent0) / window
        await session.disconnect()
        source.close()
    return {
        "token_request_ms": round(token_ms, 2),
        "connect_ms": round((t_connected - t0) * 1000, 1),
        "connect_to_first_frame_ms": round((t_first - t0) * 1000, 1),
        "fps_sent": round(fps_out, 1),
        "fps_received": round(fps_in, 1),
        "frame_width": w,
        "frame_height": h,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", default="lucy-2.1")
    parser.add_argument("--skip-session", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {}
    for label, cmd in (("help", ["--help"]), ("models_json", ["models", "--json"])):
        med, best = time_command(cmd, args.runs)
        results[f"{label}_ms_median"] = round(med, 1)
        results[f"{label}_ms_min"] = round(best, 1)
    if not args.skip_session:
        results.update(asyncio.run(session_bench(args.model, args.seconds)))
        results["model"] = args.model
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
