"""One ``decart stream`` run against an in-process emulator, inside the test namespace (scripts/netns-run).

    python tests/livekit_stream_scenario.py --emulator '{"queue": 3}' [--signal SIGINT --after-frames N]
        [--token '{"max_session_duration": 3}'] [--global ARG]... [--cwd DIR] [--env NAME=VALUE]...
        -- STREAM-ARGS...

Starts :class:`~decart_cli.emulator.server.EmulatorThread` (offering 127.0.0.1 only) in this
process, then ``python -m decart_cli stream --realtime-url WS --base-url HTTP STREAM-ARGS`` as a
subprocess (a libwebrtc abort kills that child, not the scenario), reading its JSON lines as they
come. With ``--signal`` the child gets that signal once a ``stats`` record reports ``N`` received
frames, and the time from the signal to its exit is measured. Prints one JSON object on its last
stdout line: the child's exit status, records, stderr and wall times, and the emulator's event log.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from decart_cli.emulator.server import EmulatorThread

KEY = "test-key-123456"


def main() -> int:
    """Run the scenario; print its JSON summary."""
    argv = sys.argv[1:]
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", default="{}", help="EmulatorConfig fields as JSON")
    parser.add_argument("--signal", default=None, help="signal name to send (SIGINT, SIGTERM)")
    parser.add_argument("--after-frames", type=int, default=15, help="received frames before the signal")
    parser.add_argument("--cwd", default=".", help="working directory of the stream")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the stream's environment")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--token", default=None, help="issue_token fields as JSON: stream with that token")
    parser.add_argument("--global", dest="globals", action="append", default=[], help="an argument before 'stream'")
    opts = parser.parse_args(argv[:split])
    config: dict[str, Any] = json.loads(opts.emulator)
    if "error_after" in config:
        config["error_after"] = tuple(config["error_after"])

    emu = EmulatorThread(loopback_only=True, **config)
    emu.start()
    env = {**os.environ, "DECART_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    env.update(item.split("=", 1) for item in opts.env)
    if opts.token is not None:
        issued = emu.issue_token(**json.loads(opts.token))
        env["DECART_TOKEN"] = issued.get("token") or issued["apiKey"]  # the signed JWT when the emulator has it
    argv_stream = [
        sys.executable,
        "-m",
        "decart_cli",
        *opts.globals,
        "stream",
        "--realtime-url",
        emu.ws_url,
        "--base-url",
        emu.http_url,
        *argv[split + 1 :],
    ]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv_stream, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=opts.cwd, env=env
    )
    records: list[dict[str, Any]] = []
    stderr: list[str] = []
    signalled: list[float] = []

    def read_err() -> None:
        assert proc.stderr is not None
        stderr.extend(proc.stderr)

    err_thread = threading.Thread(target=read_err, daemon=True)
    err_thread.start()
    assert proc.stdout is not None
    deadline = started + opts.timeout
    for line in proc.stdout:
        line = line.strip()
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        record["_wall"] = round(time.monotonic() - started, 3)
        records.append(record)
        due = record.get("event") == "stats" and record.get("frames_received", 0) >= opts.after_frames
        if opts.signal and not signalled and due:
            signalled.append(time.monotonic())
            proc.send_signal(getattr(signal, opts.signal))
        if time.monotonic() > deadline:
            proc.kill()
            break
    try:
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    ended = time.monotonic()
    err_thread.join(5)
    emu.stop()
    summary = {
        "rc": rc,
        "records": records,
        "stderr": "".join(stderr),
        "wall": round(ended - started, 3),
        "signal_to_exit": round(ended - signalled[0], 3) if signalled else None,
        "events": emu.events,
        "cwd": str(Path(opts.cwd).resolve()),
        "client_token": env.get("DECART_TOKEN"),  # what --token handed over (for leak checks)
    }
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
