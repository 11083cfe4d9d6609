"""A child process in a real pseudo-terminal, for the live-panel tests (stdlib only: no pexpect)."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


class PtyProcess:
    """``python -m decart_cli ARGS`` with stdin/stdout/stderr on a fresh pty (default 120×40)."""

    def __init__(
        self, args: list[str], env: dict[str, str], cwd: str | None = None, *, columns: int = 120, lines: int = 40
    ) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.original_attrs = termios.tcgetattr(self.slave)
        env = {**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "decart_cli", *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
            cwd=cwd,
            start_new_session=True,  # signals to the test's process group never reach it
        )
        self._raw = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._raw += data

    @property
    def text(self) -> str:
        """Everything written so far, escape sequences removed."""
        with self._lock:
            raw = bytes(self._raw)
        return ANSI.sub("", raw.decode("utf-8", errors="replace"))

    def screen_tail(self, chars: int = 4000) -> str:
        """The last part of the output (for failure messages)."""
        return self.text[-chars:]

    def send(self, data: str | bytes) -> None:
        """Type ``data`` (all at once)."""
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def type_slowly(self, text: str, gap: float) -> None:
        """Type ``text`` one key every ``gap`` seconds."""
        for ch in text:
            self.send(ch)
            time.sleep(gap)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``predicate`` until true; fail with the screen tail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None and not predicate():
                break
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; exit={self.proc.poll()}\n{self.screen_tail()}")

    def wait_text(self, fragment: str, timeout: float) -> None:
        """Wait until ``fragment`` appears on the screen."""
        self.wait_for(lambda: fragment in self.text, timeout, repr(fragment))

    def wait_exit(self, timeout: float) -> int:
        """The exit code (the process is killed after ``timeout`` seconds)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"process did not exit in {timeout} s\n{self.screen_tail()}") from None

    def close(self) -> None:
        """Kill the process if still running and close the pty."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
