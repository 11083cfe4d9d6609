#!/usr/bin/env python3
"""Print the speed figures the issues ask for; numbers, not asserts.

1. Startup: wall time of `decart --help` and `decart models --json` (median of N runs).
2. REST: mean time of a warm `POST /v1/client/tokens` against the emulator.
3. Realtime session against an in-process `decart serve` at a model's size (direct path, in this
   network namespace): time from connect() to the first remote frame, frames/s sent and received
   over a window, and peak RSS.
4. ``--transports``: both media transports compared through the CLI itself, each run inside a fresh
   network namespace (scripts/netns-run; LiveKit needs it) against a `decart serve` started there:
   `decart stream --camera test --duration S --json --transport livekit|webrtc`, reporting fps
   received, connect time, time to first frame, glass-to-glass latency (the marker through the
   emulator) and the client process's CPU seconds per second of streaming (from /proc).

Usage: scripts/bench.py [--runs N] [--seconds S] [--model NAME] [--skip-session] [--transports [--repeat K]]
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
                transport="webrtc",  # this process's namespace: the direct path (--transports: both)
                timeouts=Timeouts(),
            ),
            source,
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def transport_run(transport: str, model: str, seconds: float) -> dict[str, object]:
    """Inside a namespace: `decart serve` + one `decart stream --transport TRANSPORT`; the figures as JSON."""
    import os

    serve = subprocess.Popen(
        [sys.executable, "-m", "decart_cli", "serve", "--port", "0", "--loopback-only"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert serve.stdout is not None
    line = serve.stdout.readline()
    http = line.rsplit(" ", 1)[-1].strip()
    env = {**os.environ, "DECART_API_KEY": "bench-key-000", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "decart_cli", "stream", "--realtime-url", "ws" + http[len("http") :]]
    argv += ["--model", model, "--camera", "test", "--prompt", "anime", "--duration", str(seconds)]
    argv += ["--json", "--no-window", "--transport", transport]
    client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert client.stdout is not None
    stats: list[dict[str, object]] = []
    cpu: list[tuple[float, float]] = []  # (wall, cpu seconds) at each stats record while generating
    summary: dict[str, object] = {}
    generating = False
    for raw in client.stdout:
        record = json.loads(raw)
        if record.get("event") == "state" and record.get("state") == "generating":
            generating = True
        elif record.get("event") == "stats" and generating:
            stats.append(record)
            try:
                cpu.append((time.monotonic(), cpu_seconds(client.pid)))
            except OSError:
                pass
        elif record.get("event") == "summary":
            summary = record
    client.wait()
    serve.terminate()
    serve.wait(10)
    steady = stats[len(stats) // 3 :]
    fps = statistics.mean(float(r["fps_received"]) for r in steady) if steady else 0.0  # type: ignore[arg-type]
    (w0, c0), (w1, c1) = (cpu[1], cpu[-1]) if len(cpu) > 2 else ((0.0, 0.0), (1.0, 0.0))
    latency = [float(r["latency_ms"]) for r in steady if r.get("latency_ms") is not None]  # type: ignore[arg-type]
    return {
        "transport": transport,
        "exit_code": summary.get("exit_code"),
        "fps_received": round(fps, 1),
        "received_size": summary.get("received_size"),
        "connect_s": summary.get("connect_s"),
        "first_frame_s": summary.get("first_frame_s"),
        "latency_ms_median": round(statistics.median(latency), 1) if latency else None,
        "client_cpu_per_second": round((c1 - c0) / (w1 - w0), 3) if w1 > w0 else None,
    }


def compare_transports(model: str, seconds: float, repeat: int) -> list[dict[str, object]]:
    """Each transport ``repeat`` times, alternating, each run in its own namespace."""
    runs = []
    for _ in range(repeat):
        for transport in ("livekit", "webrtc"):
            argv = [str(ROOT / "scripts" / "netns-run"), sys.executable, __file__, "--one-transport", transport]
            argv += ["--model", model, "--seconds", str(seconds)]
            out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", default="lucy-2.1")
    parser.add_argument("--skip-session", action="store_true")
    parser.add_argument("--transports", action="store_true", help="compare livekit and webrtc (needs netns-run)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per transport with --transports")
    parser.add_argument("--one-transport", default=None, help=argparse.SUPPRESS)  # inside the namespace
    args = parser.parse_args()
    if args.one_transport:
        print(json.dumps(transport_run(args.one_transport, args.model, args.seconds)))
        return 0
    if args.transports:
        with open("/proc/loadavg") as fh:
            load = fh.read().split()[:3]
        runs = compare_transports(args.model, args.seconds, args.repeat)
        print(json.dumps({"load_average": load, "runs": runs}, indent=2))
        return 0
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
