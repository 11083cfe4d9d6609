#!/usr/bin/env python3
"""`make bench`: `decart bench` side by side with the official SDKs doing the same job; numbers, not asserts.

Everything runs inside one private network namespace (scripts/netns-run: libwebrtc needs a veth
carrying 127.0.0.2; every packet stays in 127.0.0.0/8) against ONE `decart serve --loopback-only`:

* ours: `decart bench --json --transport webrtc|livekit --duration D` (the stream command's code);
* the SDKs, unchanged, driven from their virtualenvs (`make sdk-venvs`) by tests/sdk/: `decart==0.0.40`
  (direct path, aiortc, VP8) and `decart==0.2.4` (LiveKit, H264, its default publish options) doing
  the same job (tests/sdk/bench_job.py: the same test pattern and marker, measured the same way).

Rounds alternate the order (ours first, then the SDK first, …). Prints every run, then per transport
the medians over the rounds and the ratios ours / SDK for received fps, latency p50/p95 and CPU s/s,
with the load average before and after each run; `--out FILE` keeps the raw JSON.
`--sweep N` instead runs `decart bench --sessions 1..N` per transport (how many sessions hold ≥ 29 fps).
`--startup` times `decart --help` (median of 15 runs) and exits.

Usage: scripts/bench.py [--rounds 3] [--duration 20] [--model lucy-2.1] [--transports webrtc,livekit]
                        [--no-sdk] [--sweep N] [--startup] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from serve_child import ROOT, cpu_seconds, last_json, rerun_in_namespace, start_serve, stop_serve

SDK = {"webrtc": ("0.0.40", "sdk_0_0_40.py"), "livekit": ("0.2.4", "sdk_0_2_4.py")}
KEY = "test-key-123456"


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


class Serve:
    """One `decart serve --port 0 --loopback-only` for the whole bench."""

    def __init__(self) -> None:
        self.proc, self.http = start_serve("--loopback-only")
        self.ws = "ws" + self.http[len("http") :]

    def close(self) -> None:
        stop_serve(self.proc)


def run(argv: list[str], serve: Serve, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one client; its JSON, the load before/after and the emulator's CPU s/s meanwhile."""
    before, cpu0, t0 = load(), cpu_seconds(serve.proc.pid), time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, err, rc = str(exc.stdout or ""), str(exc.stderr or ""), 124
    wall = time.monotonic() - t0
    doc = last_json(out)
    return {
        "rc": rc,
        "doc": doc,
        "load_before": before,
        "load_after": load(),
        "serve_cpu_per_s": round((cpu_seconds(serve.proc.pid) - cpu0) / wall, 3),
        "stderr_tail": err.strip().splitlines()[-5:] if rc or doc is None else [],
    }


def ours(transport: str, serve: Serve, args: argparse.Namespace, sessions: int = 1) -> dict[str, Any]:
    argv = [sys.executable, "-m", "decart_cli", "bench", "--json", "--realtime-url", serve.ws]
    argv += ["--transport", transport, "--model", args.model, "--duration", str(args.duration)]
    argv += ["--sessions", str(sessions)]
    result = run(argv, serve, 120 + 2 * args.duration, env={"DECART_API_KEY": KEY})
    doc = result.pop("doc")
    result["who"] = "decart"
    result["figures"] = doc["results"][0] if doc and doc.get("results") else None
    result["report"] = doc
    return result


def sdk(transport: str, serve: Serve, args: argparse.Namespace) -> dict[str, Any]:
    version, script = SDK[transport]
    python = ROOT / ".venv-sdk" / version / "bin" / "python"
    if not python.exists():
        raise SystemExit(
            f"bench: the decart=={version} virtualenv is missing (.venv-sdk/{version}): run make sdk-venvs"
        )
    argv = [str(python), str(ROOT / "tests" / "sdk" / script), "--url", serve.http, "bench"]
    argv += ["--seconds", str(args.duration), "--model", args.model]
    result = run(argv, serve, 120 + 2 * args.duration)
    doc = result.pop("doc")
    result["who"] = f"decart=={version}"
    result["figures"] = doc
    return result


KEYS = ("fps_received", "p50", "p95", "cpu_per_s")


def pick(fig: dict[str, Any] | None, key: str) -> float | None:
    if not fig:
        return None
    value = fig["latency_ms"][key] if key in ("p50", "p95", "p99") else fig.get(key)
    return None if value is None else float(value)


def line(run_: dict[str, Any]) -> str:
    f = run_["figures"] or {}
    lat = f.get("latency_ms") or {}
    return (
        f"  {run_['who']:15s} rc {run_['rc']:3d}  recv {f.get('fps_received', '—'):>6} fps  "
        f"p50 {lat.get('p50', '—'):>6} p95 {lat.get('p95', '—'):>6} p99 {lat.get('p99', '—'):>6} ms  "
        f"CPU {f.get('cpu_per_s', '—'):>6} s/s  RSS {f.get('peak_rss_mb', '—'):>6} MB  "
        f"connect {f.get('connect_s', '—')} s, 1st frame {f.get('first_frame_s', '—')} s, ack {f.get('prompt_ack_ms', '—')} ms  "
        f"(serve {run_['serve_cpu_per_s']} s/s; load {run_['load_before'][0]} → {run_['load_after'][0]})"
    )


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def compare(args: argparse.Namespace) -> dict[str, Any]:
    serve = Serve()
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in args.transports}
    try:
        for r in range(args.rounds):
            for transport in args.transports:
                order = ["ours", "sdk"] if r % 2 == 0 or args.no_sdk else ["sdk", "ours"]
                for who in order:
                    if who == "sdk" and args.no_sdk:
                        continue
                    result = ours(transport, serve, args) if who == "ours" else sdk(transport, serve, args)
                    result["round"] = r + 1
                    runs[transport].append(result)
                    print(f"round {r + 1} {transport}:", line(result), flush=True)
                    for text in result["stderr_tail"]:
                        print(f"      {text}", flush=True)
    finally:
        serve.close()
    summary: dict[str, Any] = {}
    print()
    for transport, items in runs.items():
        mine = [x["figures"] for x in items if x["who"] == "decart"]
        theirs = [x["figures"] for x in items if x["who"] != "decart"]
        row: dict[str, Any] = {}
        for key in KEYS:
            a, b = median([pick(f, key) for f in mine]), median([pick(f, key) for f in theirs])
            row[key] = {"decart": a, "sdk": b, "ratio": round(a / b, 2) if a is not None and b else None}
        summary[transport] = row
        who = SDK[transport][0]
        print(f"{transport}: medians over {args.rounds} round(s), decart vs decart=={who} (ratio ours/SDK)")
        for key in KEYS:
            cell = row[key]
            print(f"  {key:13s} {cell['decart']!s:>8} vs {cell['sdk']!s:>8}   ratio {cell['ratio']}")
    return {"load_avg_end": load(), "runs": runs, "summary": summary}


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    serve = Serve()
    found: dict[str, Any] = {}
    try:
        for transport in args.transports:
            found[transport] = []
            for n in range(1, args.sweep + 1):
                result = ours(transport, serve, args, sessions=n)
                report = result["report"] or {}
                fps = [r["fps_received"] for r in report.get("results", [])]
                held = report.get("sessions_held", 0)
                print(
                    f"{transport} --sessions {n}: {held} of {n} held ≥ 29 fps; received {fps}; "
                    f"this process {report.get('cpu_per_s')} CPU s/s; serve {result['serve_cpu_per_s']} s/s; "
                    f"load {result['load_before'][0]} → {result['load_after'][0]}",
                    flush=True,
                )
                found[transport].append({"sessions": n, "held": held, "fps": fps, "load": result["load_after"]})
                if held < n:
                    break
    finally:
        serve.close()
    return {"sweep": found, "load_avg_end": load()}


def startup() -> dict[str, Any]:
    samples = []
    decart = Path(sys.executable).parent / "decart"
    for _ in range(15):
        t0 = time.perf_counter()
        subprocess.run([str(decart), "--help"], capture_output=True, check=True)
        samples.append((time.perf_counter() - t0) * 1000)
    result = {"help_ms_median": round(statistics.median(samples), 1), "help_ms_min": round(min(samples), 1)}
    print(f"decart --help: median {result['help_ms_median']} ms, min {result['help_ms_min']} ms (load {load()})")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per transport (the order alternates)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run from the first frame")
    parser.add_argument("--model", default="lucy-2.1")
    parser.add_argument("--transports", default="webrtc,livekit", help="comma-separated")
    parser.add_argument("--no-sdk", action="store_true", help="ours only")
    parser.add_argument("--sweep", type=int, default=0, help="decart bench --sessions 1..N per transport instead")
    parser.add_argument("--startup", action="store_true", help="time decart --help only")
    parser.add_argument("--out", default=None, help="write the raw results as JSON here")
    args = parser.parse_args()
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    if args.startup:
        startup()
        return 0
    # Everything below runs in one private namespace (LiveKit needs it); re-run there.
    if (status := rerun_in_namespace()) is not None:
        return status
    print(f"machine: {os.cpu_count()} cores, load {load()}, python {sys.version.split()[0]}", flush=True)
    result = sweep(args) if args.sweep else compare(args)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
