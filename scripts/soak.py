"""Soak test: stream for N minutes through periodic drops and check nothing is lost or leaked.

Starts ``decart serve --port 0 --drop-after S --drop-connections 1000`` in a subprocess (so the RSS
measured here is the client's alone; ``--in-process`` uses an EmulatorThread instead), streams a
synthetic track through a RealtimeSession, sets a new prompt every ``--prompt-every`` seconds, and
prints: reconnects, prompts lost (after each reconnect, the prompts the server held on the new
connection vs the latest desired one at that moment; must be 0), frames received, and RSS at the
start, after the first reconnect and at the end.

    .venv/bin/python scripts/soak.py --minutes 1 --drop-after 15     # a quick check
    .venv/bin/python scripts/soak.py                                  # 10 minutes, drop every 60 s

Exit status 0 when no prompt was lost and the session is still alive at the end, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import serve_child  # noqa: E402 - scripts/, this script's directory (a decart serve child)
from aiortc import VideoStreamTrack  # noqa: E402

from decart_cli.config import Secret, Timeouts  # noqa: E402
from decart_cli.core import catalog  # noqa: E402
from decart_cli.core import events as ev  # noqa: E402
from decart_cli.core.session import DesiredState  # noqa: E402
from decart_cli.realtime import RealtimeSession, SessionConfig  # noqa: E402
from decart_cli.realtime.transport import TrackInput  # noqa: E402

STATE_LINE = re.compile(r"conn (\d+) state initial=\w+ prompt=(.*?) image=")
SESSION_LINE = re.compile(r"conn (\d+) sent type=session_id session_id=(\w+)")


def own_rss() -> float:
    """This process's resident set size in MB."""
    return serve_child.rss_mb(os.getpid()) or float("nan")


class ServerView:
    """What the server saw: the prompts each connection held, and which connection a session is."""

    def __init__(self) -> None:
        self.prompts: dict[int, list[str | None]] = {}
        self.conn_of: dict[str, int] = {}
        self._lock = threading.Lock()

    def feed_line(self, line: str) -> None:
        """Parse one ``decart serve`` stderr line."""
        with self._lock:
            if m := STATE_LINE.search(line):
                prompt = None if m.group(2) == "None" else m.group(2)
                self.prompts.setdefault(int(m.group(1)), []).append(prompt)
            elif m := SESSION_LINE.search(line):
                self.conn_of[m.group(2)] = int(m.group(1))

    def feed_events(self, events: list[dict[str, Any]]) -> None:
        """Rebuild from an in-process emulator's event list."""
        with self._lock:
            self.prompts.clear()
            for e in events:
                if e.get("event") == "state":
                    self.prompts.setdefault(e["conn"], []).append(e.get("prompt"))
                elif e.get("event") == "sent" and e.get("type") == "session_id":
                    self.conn_of[e["session_id"]] = e["conn"]

    def held(self, session_id: str) -> list[str | None]:
        with self._lock:
            return list(self.prompts.get(self.conn_of.get(session_id, -1), []))


def start_serve(drop_after: float, view: ServerView) -> tuple[subprocess.Popen[str], str]:
    """Run ``decart serve`` on a free port; returns the process and its ws:// URL (it dies with the soak)."""
    proc, http_url = serve_child.start_serve(
        "--drop-after", str(drop_after), "--drop-connections", "1000", stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    stderr = proc.stderr

    def pump() -> None:
        for line in stderr:
            view.feed_line(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, http_url.replace("http://", "ws://", 1)


async def soak(args: argparse.Namespace) -> int:
    """Run the soak; return the exit status."""
    rss: list[float] = [own_rss()]
    checks: list[tuple[str, str | None]] = []  # (session id, desired prompt) at each reconnect
    errors: list[str] = []
    frames = 0
    view = ServerView()
    emu: Any = None
    proc: subprocess.Popen[str] | None = None
    if args.in_process:
        from decart_cli.emulator.server import EmulatorThread

        emu = EmulatorThread(drop_after=args.drop_after, drop_connections=1000)
        emu.start()
        url = emu.ws_url
    else:
        proc, url = start_serve(args.drop_after, view)
    session: RealtimeSession | None = None
    t0 = time.monotonic()

    def on_event(event: ev.Event) -> None:
        assert session is not None
        if isinstance(event, ev.Reconnected):
            checks.append((session.session_id or "?", session.desired.prompt))
            rss.append(own_rss())
            print(
                f"[{time.monotonic() - t0:7.1f}s] reconnected after {event.attempts} attempt(s); desired "
                f"{session.desired.prompt!r}; RSS {rss[-1]:.1f} MiB",
                flush=True,
            )
        elif isinstance(event, ev.Reconnecting):
            print(f"[{time.monotonic() - t0:7.1f}s] reconnecting: {event.reason}", flush=True)
        elif isinstance(event, ev.ErrorEvent):
            errors.append(event.message)

    def on_frame(_frame: Any) -> None:
        nonlocal frames
        frames += 1

    try:
        config = SessionConfig(
            url,
            Secret("soak-key-0000"),
            catalog.resolve(args.model),
            initial=DesiredState(prompt="prompt 0"),
            transport="webrtc",  # runs in this network namespace: the direct path
            timeouts=Timeouts(),
        )
        session = RealtimeSession(config, TrackInput(VideoStreamTrack()), on_event=on_event, on_frame=on_frame)
        await session.connect()
        print(
            f"connected in {time.monotonic() - t0:.3f} s; soaking {args.minutes} min, drop every "
            f"{args.drop_after} s, new prompt every {args.prompt_every} s; RSS {rss[0]:.1f} MiB",
            flush=True,
        )
        deadline = t0 + args.minutes * 60
        n = 0
        while time.monotonic() < deadline and session.state.value != "disconnected":
            await asyncio.sleep(min(args.prompt_every, max(0.0, deadline - time.monotonic())))
            n += 1
            try:
                await session.set_prompt(f"prompt {n}")
            except Exception as exc:  # noqa: BLE001 - counted and reported, the soak goes on
                errors.append(f"set_prompt: {exc}")
        await asyncio.sleep(1.0)  # let the server log catch up
        if emu is not None:
            view.feed_events(emu.events)
        # Lost = the new connection never held the prompt that was desired when it came back.
        lost = [(sid, want, view.held(sid)) for sid, want in checks if want not in view.held(sid)]
        alive = session.state.value in ("connected", "generating")
        await session.disconnect()
    finally:
        if emu is not None:
            emu.stop()
        if proc is not None:
            serve_child.stop_serve(proc, 5)
    rss_end = own_rss()
    print(
        f"duration {args.minutes} min, reconnects {len(checks)}, prompts set {n}, prompts lost {len(lost)}, "
        f"frames received {frames}, billed {session.total_seconds} s, alive at end {alive}"
    )
    where = "client and emulator" if args.in_process else "client only"
    print(
        f"RSS ({where}): start {rss[0]:.1f} MiB, after 1st reconnect "
        f"{rss[1] if len(rss) > 1 else float('nan'):.1f} MiB, end {rss_end:.1f} MiB"
    )
    for sid, want, held in lost:
        print(f"LOST: session {sid} expected {want!r}, server held {held!r}")
    for message in errors:
        print(f"error: {message}")
    return 0 if not lost and alive else 1


def main() -> int:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to stream (default 10)")
    parser.add_argument("--drop-after", type=float, default=60.0, help="the server drops each connection after S s")
    parser.add_argument("--prompt-every", type=float, default=7.0, help="seconds between prompt changes")
    parser.add_argument("--model", default="lucy-2.1", help="model to stream to")
    parser.add_argument("--in-process", action="store_true", help="use an EmulatorThread instead of decart serve")
    return asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
