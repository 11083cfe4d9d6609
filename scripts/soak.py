"""Soak test: stream for N minutes through periodic drops and check nothing is lost or leaked.

Runs a RealtimeSession with a synthetic track against an in-process emulator that drops every
connection ``--drop-after`` seconds after its answer (``decart serve --drop-after 60
--drop-connections 1000``), sets a new prompt every ``--prompt-every`` seconds, and prints:
reconnects, prompts lost (after each reconnect, the prompt the emulator holds vs the latest
desired one; must be 0), frames received, and the process RSS at start and end.

    .venv/bin/python scripts/soak.py --minutes 1 --drop-after 15     # a quick check
    .venv/bin/python scripts/soak.py                                  # 10 minutes, drop every 60 s

Exit status 0 when no prompt was lost and the session is still alive at the end, else 1.
Note: the emulator runs in this process, so RSS includes it (aiortc answerer + frame model).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc import VideoStreamTrack  # noqa: E402

from decart_cli.config import Secret, Timeouts  # noqa: E402
from decart_cli.core import catalog  # noqa: E402
from decart_cli.core import events as ev  # noqa: E402
from decart_cli.core.session import DesiredState  # noqa: E402
from decart_cli.emulator.server import EmulatorThread  # noqa: E402
from decart_cli.realtime import RealtimeSession, SessionConfig  # noqa: E402


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def emulator_prompt(emu: EmulatorThread, conn: int) -> Any:
    """The prompt the emulator currently holds for connection ``conn`` (None if no state yet)."""
    states = [e for e in emu.events if e.get("event") == "state" and e.get("conn") == conn]
    return states[-1].get("prompt") if states else "<no state>"


async def soak(args: argparse.Namespace) -> int:
    """Run the soak; return the exit status."""
    rss_start = rss_mib()
    checks: list[tuple[int, str | None]] = []  # (conn, expected prompt) after each reconnect
    reconnects = 0
    errors: list[str] = []
    frames = 0
    rss: list[float] = []  # RSS after each reconnect: growth between them would be a leak

    with EmulatorThread(drop_after=args.drop_after, drop_connections=1000, tick_interval=1.0) as emu:
        session: RealtimeSession | None = None

        def on_event(event: ev.Event) -> None:
            nonlocal reconnects
            if isinstance(event, ev.Reconnected):
                reconnects += 1
                assert session is not None
                checks.append((emu.connections, session.desired.prompt))
                print(
                    f"[{time.monotonic() - t0:7.1f}s] reconnected after {event.attempts} attempt(s); "
                    f"desired prompt {session.desired.prompt!r}",
                    flush=True,
                )
            elif isinstance(event, ev.Reconnecting):
                print(
                    f"[{time.monotonic() - t0:7.1f}s] reconnecting ({event.reason}); attempt {event.attempt}",
                    flush=True,
                )
            elif isinstance(event, ev.ErrorEvent):
                errors.append(event.message)

        def on_frame(_frame: Any) -> None:
            nonlocal frames
            frames += 1

        config = SessionConfig(
            emu.ws_url,
            Secret("soak-key-0000"),
            catalog.resolve(args.model),
            initial=DesiredState(prompt="prompt 0"),
            timeouts=Timeouts(),
        )
        session = RealtimeSession(config, VideoStreamTrack(), on_event=on_event, on_frame=on_frame)
        t0 = time.monotonic()
        await session.connect()
        print(
            f"connected in {time.monotonic() - t0:.3f} s; soaking {args.minutes} min, drop every "
            f"{args.drop_after} s, new prompt every {args.prompt_every} s; RSS {rss_start:.1f} MiB",
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
        await asyncio.sleep(1.0)  # let a catch-up message land before checking
        lost = [
            (conn, want, emulator_prompt(emu, conn))
            for conn, want in checks
            if emulator_prompt(emu, conn) != want and not _superseded(emu, conn, want)
        ]
        alive = session.state.value in ("connected", "generating")
        stats = session.stats()
        await session.disconnect()
    rss_end = rss_mib()
    print(
        f"duration {args.minutes} min, reconnects {reconnects}, prompts set {n}, prompts lost {len(lost)}, "
        f"frames received {frames}, total billed {session.total_seconds} s, alive at end {alive}"
    )
    print(f"last stats: {stats}")
    print(f"RSS start {rss_start:.1f} MiB (before the emulator and codecs), end {rss_end:.1f} MiB")
    if rss:
        print(f"RSS after 1st reconnect {rss[0]:.1f} MiB, after last ({len(rss)}) {rss[-1]:.1f} MiB")
    for item in lost:
        print(f"LOST: connection {item[0]} expected {item[1]!r}, emulator held {item[2]!r}")
    for message in errors:
        print(f"error: {message}")
    return 0 if not lost and alive else 1


def _superseded(emu: EmulatorThread, conn: int, want: str | None) -> bool:
    """True when the emulator did hold ``want`` on ``conn`` before a later prompt replaced it."""
    return any(e.get("event") == "state" and e.get("conn") == conn and e.get("prompt") == want for e in emu.events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to stream (default 10)")
    parser.add_argument("--drop-after", type=float, default=60.0, help="emulator drops each connection after S s")
    parser.add_argument("--prompt-every", type=float, default=7.0, help="seconds between prompt changes")
    parser.add_argument("--model", default="lucy-2.1", help="model to stream to")
    return asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
