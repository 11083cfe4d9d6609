"""``--local``: use a running ``decart serve``, or start one.

``decart stream --local`` (:func:`local_server`): when nothing answers on ``DECART_LOCAL_ADDRESS``
(default ``127.0.0.1:8787``), a child ``python -m decart_cli serve --port 0`` is started for the
session; its one stdout line (``decart serve listening on http://127.0.0.1:PORT``) gives the port,
and the settings are pointed at it. The child is stopped on every way out (SIGTERM, then SIGKILL
after 2 s), including the forced exit of a second Ctrl-C (:func:`kill_children`); and should this
process die without a word (SIGKILL, a native crash of the LiveKit SDK), the kernel stops the child
too (Linux ``PR_SET_PDEATHSIG``), so no emulator is left running for nobody.

``decart token --local`` (:func:`persistent_server`) cannot work that way: a client token is only
valid on the emulator that minted it, and a child stopped with the ``token`` command would take the
token with it — ``decart stream --local --token "$(decart token --local)"`` would then find no
emulator, start a fresh one and be refused. So when nothing answers, ``token --local`` starts
``decart serve`` *on* ``DECART_LOCAL_ADDRESS``, detached (own session, output to a log file), and
leaves it running for the commands that follow; it says so on stderr with the pid to stop it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from decart_cli.config import DEFAULT_LOCAL_ADDRESS, Settings, load_settings
from decart_cli.emulator.options import listening_url
from decart_cli.errors import ConfigError, ConnectionFailed

__all__ = ["answers", "die_with_parent", "kill_children", "local_server", "persistent_server", "session_settings"]

START_TIMEOUT = 15.0  # seconds for a child emulator to print its address
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when its parent dies
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


@contextlib.contextmanager
def session_settings(
    *,
    api_key: str | None,
    api_key_file: str | None,
    token: str | None,
    base_url: str | None,
    realtime_url: str | None,
    local: bool,
    purpose: str,
) -> Iterator[Settings]:
    """The settings of a realtime session (``decart stream``, ``decart bench``) from their shared options.

    A credential is required; ``--local`` without ``--realtime-url`` yields settings that reach a live
    emulator (:func:`local_server`: started, and finally stopped, when none answers).

    The keyword arguments are the options of the same names (see :func:`~decart_cli.config.load_settings`);
    ``purpose`` ends the "no API key" hint (``"to stream to the local emulator"``).

    Raises:
        ConfigError: no API key or client token.
    """
    settings = load_settings(
        api_key=api_key,
        api_key_file=api_key_file,
        token=token,
        base_url=base_url,
        realtime_url=realtime_url,
        local=local,
    )
    if settings.credential is None:
        raise ConfigError(
            "no API key", hint=f"set DECART_API_KEY (or use --api-key-file FILE), or use --local {purpose}"
        )
    with local_server(settings, enabled=local and realtime_url is None) as live:
        yield live


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when its parent dies (Linux), else None.

    The libc function is looked up here, before the fork: the child only makes the one call.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the call took effect
            os._exit(0)

    return preexec


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
        preexec_fn=die_with_parent(),  # one prctl call, looked up before the fork
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


def persistent_server(settings: Settings) -> Settings:
    """For ``decart token --local``: reuse the emulator on ``DECART_LOCAL_ADDRESS``, or start one there
    that outlives this command (module docstring); returns the settings, which already point at it.

    Raises:
        ConnectionFailed: the emulator did not come up (naming its last log line and the log file).
    """
    host, port = _address()
    if answers(host, port):
        return settings
    fd, log_path = tempfile.mkstemp(prefix=f"decart-serve-{port}-", suffix=".log")
    os.close(fd)
    argv = [sys.executable, "-m", "decart_cli", "serve", "--host", host, "--port", str(port)]
    # posix_spawn, not Popen: no Popen object whose finaliser would reap or warn about a child we
    # mean to leave running; stdin/stdout/stderr never inherit ours (a `$(decart token --local)`
    # would otherwise wait for the emulator's end of the pipe).
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        pid = os.posix_spawn(sys.executable, argv, dict(os.environ), file_actions=actions, setsid=True)
    except NotImplementedError:  # platforms without POSIX_SPAWN_SETSID: its own process group then
        pid = os.posix_spawn(sys.executable, argv, dict(os.environ), file_actions=actions, setpgroup=0)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if answers(host, port):
            from decart_cli.ui.console import streams

            streams.info(
                f"started a local emulator on http://{host}:{port} (pid {pid}, log {log_path}); it keeps running "
                f"so the token works for the next --local commands; stop it with: kill {pid}"
            )
            return settings
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(OSError):
            os.kill(pid, 15)
    tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    raise ConnectionFailed(
        f"could not start the local emulator on {host}:{port}: {tail[0]}",
        hint=f"see {log_path}; or start it yourself with 'decart serve' and retry with --local",
    )
