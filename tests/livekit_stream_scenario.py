"""One ``decart stream`` run against an in-process emulator, inside the test namespace (scripts/netns-run).

    python tests/livekit_stream_scenario.py --emulator '{"queue": 3}' [--signal SIGINT --after-frames N]
        [--token '{"max_session_duration": 3}'] [--global ARG]... [--cwd DIR] [--env NAME=VALUE]...
        -- STREAM-ARGS...

Starts :class:`~decart_cli.emulator.server.EmulatorThread` (offering 127.0.0.1 only) in this
process, then ``python -m decart_cli stream --realtime-url WS --base-url HTTP STREAM-ARGS`` as a
subprocess (a libwebrtc abort kills that child, not the scenario) through tests/stream_proc.Stream,
reading its JSON lines as they come. With ``--signal`` the child gets that signal once a ``stats`` record reports ``N`` received
frames, and the time from the signal to its exit is measured. Prints one JSON object on its last
stdout line: the child's exit status, records, stderr and wall times, and the emulator's event log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from stream_proc import Stream

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
    stream = Stream(
        ["--realtime-url", emu.ws_url, "--base-url", emu.http_url, *argv[split + 1 :]],
        Path(opts.cwd),
        env,
        global_args=tuple(opts.globals),
        transport=None,  # the stream's own default: LiveKit (this runs inside the test namespace)
    )
    signalled: list[float] = []
    if opts.signal:
        with contextlib.suppress(AssertionError):  # it ended (or timed out) first: no signal_to_exit
            stream.wait_event(
                lambda r: r.get("event") == "stats" and r.get("frames_received", 0) >= opts.after_frames,
                timeout=opts.timeout,
            )
            signalled.append(time.monotonic())
            stream.proc.send_signal(getattr(signal, opts.signal))
    try:
        rc, stderr = stream.finish(timeout=max(1.0, stream.started + opts.timeout - time.monotonic()))
    except AssertionError:  # killed at the deadline
        rc, stderr = stream.proc.returncode, "".join(stream.stderr_lines)
    ended = time.monotonic()
    emu.stop()
    records = [
        {**r, "_wall": round(t - stream.started, 3)} for r, t in zip(stream.records, stream.arrived, strict=False)
    ]
    summary = {
        "rc": rc,
        "records": records,
        "stderr": stderr,
        "wall": round(ended - stream.started, 3),
        "signal_to_exit": round(ended - signalled[0], 3) if signalled else None,
        "events": emu.events,
        "cwd": str(Path(opts.cwd).resolve()),
        "client_token": env.get("DECART_TOKEN"),  # what --token handed over (for leak checks)
    }
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
