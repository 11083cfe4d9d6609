#!/usr/bin/env python3
"""Where the client's time goes: per-thread CPU, native libraries (perf) and Python (py-spy) of `decart stream`.

Inside a private network namespace (scripts/netns-run) starts `decart serve --loopback-only` and
`decart stream --camera test --json --no-window --transport T` against it; after a warm-up it
samples the client for `--seconds`:

* CPU seconds per second of each thread (/proc/PID/task/*/stat; Python's own threads are all
  called "python", libwebrtc's threads have names);
* with `perf` installed: CPU by shared object and the top symbols (`perf record -g -p PID`);
* with `py-spy` installed (`pip install py-spy`): the Python functions holding the GIL
  (`py-spy record --gil`, raw stacks in /tmp/decart-profile-T.txt for a flame graph).

Usage: scripts/bench_profile.py [--transport livekit|webrtc] [--seconds 10] [--tool perf|py-spy|none]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from serve_child import ROOT, rerun_in_namespace, start_serve, stop_serve


def threads(pid: int) -> dict[str, tuple[str, int]]:
    """tid → (name, CPU ticks so far)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            out[tid] = (name, int(fields[11]) + int(fields[12]))
        except OSError:
            continue
    return out


def by_thread(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]], seconds: float) -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    totals: collections.Counter[str] = collections.Counter()
    for tid, (name, cpu) in after.items():
        totals[name] += cpu - before.get(tid, (name, 0))[1]
    total = sum(totals.values()) / ticks / seconds
    print(f"client CPU {total:.3f} s/s by thread:")
    for name, cpu in totals.most_common():
        if cpu:
            print(f"  {cpu / ticks / seconds:6.3f}  {name}")


def py_spy_summary(path: Path, top: int = 25) -> None:
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        self_time[stack.split(";")[-1]] += n
    print(f"py-spy --gil: {total} samples holding the GIL; hottest functions (self):")
    for frame, n in self_time.most_common(top):
        print(f"  {100 * n / max(1, total):5.1f}%  {frame[:110]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", default="livekit", choices=("livekit", "webrtc"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--tool", default="perf" if shutil.which("perf") else "py-spy", choices=("perf", "py-spy", "none")
    )
    args = parser.parse_args()
    if (status := rerun_in_namespace()) is not None:
        return status
    serve, http = start_serve("--loopback-only")
    ws = "ws" + http[len("http") :]
    argv = [sys.executable, "-m", "decart_cli", "stream", "--realtime-url", ws, "--camera", "test", "--prompt", "anime"]
    argv += ["--duration", str(args.seconds + 10), "--json", "--no-window", "--transport", args.transport]
    client = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "DECART_API_KEY": "k"}
    )
    try:
        time.sleep(6)  # connected, generating, warmed up
        print(f"{args.transport}: load {os.getloadavg()[0]:.2f}")
        before, t0 = threads(client.pid), time.monotonic()
        raw = Path(f"/tmp/decart-profile-{args.transport}.txt")
        if args.tool == "perf":
            data = Path(f"/tmp/decart-profile-{args.transport}.perf")
            cmd = ["perf", "record", "-F", "499", "-g", "-p", str(client.pid), "-o", str(data), "--", "sleep"]
            subprocess.run([*cmd, str(args.seconds)], capture_output=True, check=False)
        elif args.tool == "py-spy":
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            cmd = [spy, "record", "-p", str(client.pid), "-r", "100", "-d", str(int(args.seconds)), "--gil"]
            subprocess.run([*cmd, "-f", "raw", "-o", str(raw)], capture_output=True, check=False)
        else:
            time.sleep(args.seconds)
        by_thread(before, threads(client.pid), time.monotonic() - t0)
        if args.tool == "perf":
            report = ["perf", "report", "-i", str(data), "--no-children", "-g", "none", "--stdio"]
            for key, limit in (("dso", 12), ("sym", 15)):
                out = subprocess.run([*report, "--sort", key], capture_output=True, text=True).stdout
                rows = [r for r in out.splitlines() if r.strip() and not r.startswith("#")][:limit]
                print(f"perf by {key}:")
                print("\n".join(f"  {r.strip()}" for r in rows))
        elif args.tool == "py-spy" and raw.exists():
            py_spy_summary(raw)
    finally:
        client.wait(args.seconds + 30)
        stop_serve(serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
