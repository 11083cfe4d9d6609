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
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTENING = "decart serve listening on "


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)


def last_json(text: str) -> object:
    """The last stdout line that parses as a JSON object, or ``None``."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


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
    serve = subprocess.Popen(
        [sys.executable, "-m", "decart_cli", "serve", "--port", "0", "--loopback-only", *opts.serve],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert serve.stdout is not None
    line = serve.stdout.readline()
    if not line.startswith(LISTENING):
        serve.kill()
        serve.wait()
        log.seek(0)
        print(f"harness: decart serve did not start: {line!r}\n{log.read()[-3000:]}", file=sys.stderr)
        return 3
    http = line[len(LISTENING) :].strip()
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
    serve.send_signal(signal.SIGTERM)
    try:
        serve_rc = serve.wait(timeout=15)
    except subprocess.TimeoutExpired:
        serve.kill()
        serve_rc = serve.wait()
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
