"""Run ``decart serve`` and a client driver side by side (meant to run inside scripts/netns-run).

    python tests/sdk/harness.py [--serve ARG]... -- CMD [ARG]...

Starts ``decart serve --port 0 --loopback-only [ARGS]`` with this interpreter, waits for its
listening line, then runs CMD with ``{http}``, ``{ws}`` and ``{port}`` in its arguments replaced by
the emulator's URLs and port. When CMD exits, serve gets SIGTERM. Prints one JSON line::

    {"driver": <CMD's last JSON stdout line or null>, "driver_rc": N,
     "serve": {"rc": N, "cpu_seconds": S, "wall_seconds": S, "cpu_per_second": R, "stderr_tail": [...]}}

``cpu_seconds`` is serve's user + system CPU time while CMD ran (from /proc), so ``cpu_per_second``
is the emulator's load per second of the client's session. CMD's stderr passes through.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from serve_child import ROOT, cpu_seconds, last_json, start_serve, stop_serve  # noqa: E402 - scripts/, on the path


def main() -> int:
    """Run serve and the driver; print the JSON summary; exit with the driver's status."""
    argv = sys.argv[1:]
    if "--" not in argv:
        print("usage: harness.py [--serve ARG]... -- CMD [ARG]...", file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="append", default=[], help="one extra argument for decart serve")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds the driver may run")
    opts = parser.parse_args(argv[:split])
    command = argv[split + 1 :]

    log = tempfile.TemporaryFile(mode="w+")
    try:
        serve, http = start_serve("--loopback-only", *opts.serve, stderr=log)
    except SystemExit as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 3
    port = http.rsplit(":", 1)[1]
    ws = "ws" + http[len("http") :]
    command = [a.replace("{http}", http).replace("{ws}", ws).replace("{port}", port) for a in command]

    cpu0, t0 = cpu_seconds(serve.pid), time.monotonic()
    try:
        driver = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=opts.timeout, cwd=ROOT)
        rc, out = driver.returncode, driver.stdout
    except subprocess.TimeoutExpired as exc:
        rc, out = 124, exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    cpu1, t1 = cpu_seconds(serve.pid), time.monotonic()
    serve_rc = stop_serve(serve, 15)
    log.seek(0)
    tail = log.read().splitlines()[-200:]
    wall = t1 - t0
    summary = {
        "driver": last_json(out),
        "driver_rc": rc,
        "serve": {
            "rc": serve_rc,
            "cpu_seconds": round(cpu1 - cpu0, 3),
            "wall_seconds": round(wall, 3),
            "cpu_per_second": round((cpu1 - cpu0) / wall, 3) if wall > 0 else None,
            "stderr_tail": tail,
        },
    }
    if rc != 0:
        sys.stderr.write(out[-3000:])
    print(json.dumps(summary))
    return rc


if __name__ == "__main__":
    sys.exit(main())
