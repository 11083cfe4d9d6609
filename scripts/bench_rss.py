#!/usr/bin/env python3
"""Memory over a long stream: does `decart stream` hold its RSS (target: < 20 MB growth in 10 minutes)?

Inside a private network namespace (scripts/netns-run; LiveKit needs it) starts `decart serve
--loopback-only`, then `decart stream --camera test --duration S --json --no-window --transport T`
against it, and samples the client's VmRSS every `--every` seconds from /proc. Prints the samples,
the RSS one minute in (after warm-up: codecs, buffers and caches allocated), at the end, the growth
between the two and the largest value, with the load average. Numbers, not asserts.

Usage: scripts/bench_rss.py [--seconds 600] [--transport livekit|webrtc] [--every 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from serve_child import ROOT, rerun_in_namespace, rss_mb, start_serve, stop_serve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--transport", default="livekit", choices=("livekit", "webrtc"))
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    if (status := rerun_in_namespace()) is not None:
        return status
    serve, http = start_serve("--loopback-only")
    ws = "ws" + http[len("http") :]
    argv = [sys.executable, "-m", "decart_cli", "stream", "--realtime-url", ws, "--camera", "test"]
    argv += ["--duration", str(args.seconds), "--json", "--no-window", "--transport", args.transport]
    # The JSON events go to a file: a pipe nobody reads fills up (64 KB, a few minutes of events)
    # and blocks the client's event loop on its next write.
    events = tempfile.TemporaryFile(mode="w+")
    client = subprocess.Popen(
        argv,
        stdout=events,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DECART_API_KEY": "test-key-123456"},
    )
    start = time.monotonic()
    samples: list[tuple[float, float]] = []
    try:
        while client.poll() is None:
            value = rss_mb(client.pid)
            if value is not None:
                samples.append((time.monotonic() - start, value))
                print(f"{samples[-1][0]:7.1f} s  {value:7.1f} MB  load {os.getloadavg()[0]:.2f}", flush=True)
            time.sleep(args.every)
        events.seek(0)
        out = events.read()
    finally:
        if client.poll() is None:
            client.terminate()
        stop_serve(serve)
    summary = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    after_minute = next((mb for t, mb in samples if t >= 60.0), samples[0][1] if samples else None)
    end = samples[-1][1] if samples else None
    peak = max((mb for _, mb in samples), default=None)
    growth = None if end is None or after_minute is None else round(end - after_minute, 1)
    result = {
        "transport": args.transport,
        "seconds": args.seconds,
        "rss_mb_at_60s": after_minute,
        "rss_mb_end": end,
        "rss_mb_peak": peak,
        "growth_mb": growth,
        "frames_received": summary.get("frames_received"),
        "exit_code": summary.get("exit_code"),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
