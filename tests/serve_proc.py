"""`python -m decart_cli [GLOBAL...] serve --port 0 ARGS` as a child process for tests that need the real command.

Its stdout and stderr go to files, not pipes (``-vv`` output would fill a pipe and block the server);
the listening line is awaited with a deadline (a server that dies or never prints fails the test
with its stderr, instead of a ``readline()`` that never returns); :meth:`ServeProcess.stop` signals
it, waits, kills it if it hangs, and returns everything it wrote. Use it as a context manager: the
server is stopped however the block ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

from decart_cli.emulator.options import listening_url

__all__ = ["ServeOutput", "ServeProcess"]


@dataclass
class ServeOutput:
    """What a stopped server left: exit code, stdout, stderr and (with ``--log-file``) its log."""

    code: int
    stdout: str
    stderr: str
    log: str


class ServeProcess:
    """A running ``decart serve`` (see the module docstring).

    Args:
        *args: ``serve`` arguments after ``--port 0``.
        global_args: arguments before ``serve`` (``--debug``, ``-vv``); ``log_file`` adds ``--log-file``.
        env: the environment (default: the test's).
        directory: where its output files go (default: a fresh temporary directory).
        log_file: pass ``--log-file`` with a file in ``directory``; its text is in :meth:`stop`'s result.
        start_timeout: seconds to wait for the listening line.
    """

    def __init__(
        self,
        *args: str,
        global_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        directory: Path | None = None,
        log_file: bool = False,
        start_timeout: float = 20.0,
    ) -> None:
        self.dir = directory or Path(tempfile.mkdtemp(prefix="decart-serve-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "decart_cli", *global_args]
        if log_file:
            argv += ["--log-file", str(self.dir / "log")]
        self._out = open(self.dir / "stdout", "w+b")  # noqa: SIM115 - closed in stop()
        self._err = open(self.dir / "stderr", "w+b")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*argv, "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            env={**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"},
        )
        self.output: ServeOutput | None = None
        deadline = time.monotonic() + start_timeout
        while (url := listening_url(self._read("stdout").decode(errors="replace"))) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self._read("stderr").decode(errors="replace")[-2000:]
                self.stop()
                pytest.fail(f"decart serve did not start: {err}")
            time.sleep(0.05)
        # The tests talk to loopback only: a default bind elsewhere is a failure, not a URL to follow.
        assert url.startswith("http://127.0.0.1:"), f"decart serve listens on {url}"
        self.http_url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.ws_url = "ws" + url.removeprefix("http")

    def _read(self, name: str) -> bytes:
        path = self.dir / name
        return path.read_bytes() if path.exists() else b""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> ServeOutput:
        """Send ``sig``, wait (killing it after ``timeout`` s) and return what it wrote (idempotent)."""
        if self.output is not None:
            return self.output
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        self._err.close()
        text = {name: self._read(name).decode(errors="replace") for name in ("stdout", "stderr", "log")}
        self.output = ServeOutput(self.proc.returncode, text["stdout"], text["stderr"], text["log"])
        return self.output

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
