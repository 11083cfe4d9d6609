"""``--local`` for ``decart stream``: use a running ``decart serve``, or start one for the session.

When nothing answers on ``DECART_LOCAL_ADDRESS`` (default ``127.0.0.1:8787``), a child
``python -m decart_cli serve --port 0`` is started; its one stdout line
(``decart serve listening on http://127.0.0.1:PORT``) gives the port, and the settings are
pointed at it. The child is stopped on every way out (SIGTERM, then SIGKILL after 2 s), including
the forced exit of a second Ctrl-C (:func:`kill_children`).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from decart_cli.config import DEFAULT_LOCAL_ADDRESS, Settings
from decart_cli.emulator.options import listening_url
from decart_cli.errors import ConnectionFailed

__all__ = ["answers", "kill_children", "local_server"]

START_TIMEOUT = 15.0  # seconds for a child emulator to print its address
PROBE_TIMEOUT = 0.5
_CHILDREN: list[subprocess.Popen[bytes]] = []


def answers(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _address() -> tuple[str, int]:
    raw = os.environ.get("DECART_LOCAL_ADDRESS", DEFAULT_LOCAL_ADDRESS)
    host, _, port = raw.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        return "127.0.0.1", 8787


@contextlib.contextmanager
def local_server(settings: Settings, *, enabled: bool) -> Iterator[Settings]:
    """Yield settings that reach a live emulator; start (and finally stop) one if needed."""
    if not enabled:
        yield settings
        return
    host, port = _address()
    if answers(host, port):
        yield settings
        return
    child, url = _start(host)
    from decart_cli.ui.console import streams

    streams.info(f"started a local emulator on {url} for this session (nothing answered on {host}:{port})")
    try:
        yield settings.with_(base_url=url, realtime_url="ws" + url.removeprefix("http"))
    finally:
        _stop(child)


def _start(host: str) -> tuple[subprocess.Popen[bytes], str]:
    log = tempfile.TemporaryFile()  # the child's stderr, quoted if it fails to start
    child = subprocess.Popen(
        [sys.executable, "-m", "decart_cli", "serve", "--host", host, "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        # Its own session: a Ctrl-C in the terminal reaches only us, and we stop the child after
        # our clean disconnect instead of it vanishing under the session.
        start_new_session=True,
    )
    _CHILDREN.append(child)
    deadline = time.monotonic() + START_TIMEOUT
    buffer = b""
    assert child.stdout is not None
    while time.monotonic() < deadline and child.poll() is None:
        ready, _, _ = select.select([child.stdout], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(child.stdout.fileno(), 4096)
        if not chunk:
            break
        buffer += chunk
        url = listening_url(buffer.decode(errors="replace"))
        if url is not None:
            addr, port = url.split("://", 1)[1].rsplit(":", 1)
            if _wait_answering(addr, int(port), deadline):
                return child, url
            break
    _stop(child)
    log.seek(0)
    tail = log.read().decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
    log.close()
    raise ConnectionFailed(
        f"could not start the local emulator ('decart serve'): {tail[0]}",
        hint="start it yourself with 'decart serve' and retry with --local",
    )


def _wait_answering(host: str, port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if answers(host, port):
            return True
        time.sleep(0.05)
    return False


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(2.0)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(2.0)
    if child.stdout is not None:
        child.stdout.close()
    if child in _CHILDREN:
        _CHILDREN.remove(child)


def kill_children() -> None:
    """Kill every emulator child at once (forced exit path; no waiting)."""
    for child in list(_CHILDREN):
        with contextlib.suppress(OSError):
            child.kill()
