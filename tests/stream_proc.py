"""`python -m decart_cli stream ARGS` as a subprocess for the end-to-end tests, and what they check it with.

Every :class:`Stream` is killed and reaped when its test ends (:func:`reap`, called by an autouse
fixture in conftest.py), whether the test passed, failed half-way or timed out: a stream without
``--duration`` never outlives its test.

A :class:`Stream` runs in the host's network namespace, so it takes the direct media path
(``DECART_TRANSPORT=webrtc``, unless the caller's environment says otherwise): the ``livekit`` SDK's
media must run inside the test namespace (test_stream_livekit.py), where libwebrtc finds 127.0.0.2.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import av

__all__ = ["Stream", "free_port", "probe", "reap"]

_LIVE: list[Stream] = []


class Stream:
    """``python -m decart_cli [GLOBAL...] stream ARGS`` with stdout parsed as JSON lines while it runs.

    stderr is read while it runs too (a ``-vv`` run would otherwise fill the pipe and block the
    stream); ``arrived[i]`` is when ``records[i]`` was read (``time.monotonic()``). ``transport``
    is the ``DECART_TRANSPORT`` default (the module docstring says why webrtc); ``None`` leaves the
    stream's own default (LiveKit), for runs inside the test namespace.
    """

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        *,
        global_args: tuple[str, ...] = (),
        transport: str | None = "webrtc",
    ) -> None:
        defaults = {"DECART_TRANSPORT": transport} if transport is not None else {}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "decart_cli", *global_args, "stream", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env={**defaults, **(env or os.environ)},
        )
        _LIVE.append(self)
        self.records: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode()
            self.stdout_lines.append(line)
            self.arrived.append(time.monotonic())
            self.records.append(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode(errors="replace"))

    def wait_event(self, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The first record matching ``predicate``, waiting up to ``timeout`` s for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for record in list(self.records):
                if predicate(record):
                    return record
            time.sleep(0.05)
        raise AssertionError(f"event not seen; exit={self.proc.poll()} records={self.records[-5:]}")

    def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        """Wait for the exit (killed after ``timeout`` s: then AssertionError); ``(exit code, stderr)``."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise AssertionError(f"decart stream did not end within {timeout} s; records={self.records[-5:]}") from None
        for thread in self._threads:
            thread.join(5)
        self.close()
        return code, "".join(self.stderr_lines)

    def close(self) -> None:
        """Kill the process if it still runs, reap it and close its pipes (idempotent)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        if self in _LIVE:
            _LIVE.remove(self)

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The records of one event kind, in order."""
        return [r for r in self.records if r["event"] == kind]


def reap() -> None:
    """Kill and reap every :class:`Stream` still running (end of a test)."""
    for stream in list(_LIVE):
        stream.close()


def probe(path: Path) -> tuple[int, int, int, float]:
    """(width, height, frames, seconds) of a video file, decoding every frame (proves it is playable)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, last = 0, 0.0
        for frame in container.decode(stream):
            frames += 1
            last = float(frame.pts * stream.time_base) if frame.pts is not None else last
        fps = float(stream.average_rate or 30)
        return stream.width, stream.height, frames, last + 1 / fps


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
