"""Test hygiene shared by every test: a clean environment, a private config directory, loopback-only names."""

from __future__ import annotations

import ipaddress
import itertools
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["fixtures_emulator"]

_CLEARED_PREFIXES = ("DECART_",)
_CLEARED = {
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "NO_COLOR",
}


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No DECART_* or proxy variables leak in; config lives in a per-test temporary directory."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES) or name in _CLEARED:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DECART_CONFIG_DIR", str(tmp_path / "config"))
    yield


_real_getaddrinfo = socket.getaddrinfo
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _loopback_only_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
    """getaddrinfo that answers IP literals and localhost, and refuses every other name at once.

    Nothing in the suite may reach beyond this machine, not even a DNS query: the official SDK
    0.0.40 hard-codes stun.l.google.com, and aiortc resolves STUN hosts while gathering. Refusing
    here (as a resolver with no network would) keeps those lookups on the machine.
    """
    if host is None or (isinstance(host, bytes) and host.decode() in _LOOPBACK_NAMES):
        return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        if name.lower() not in _LOOPBACK_NAMES:
            raise socket.gaierror(
                socket.EAI_NONAME, f"Name or service not known ({name}: tests resolve loopback only)"
            ) from None
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process name lookups stay on the machine (see _loopback_only_getaddrinfo)."""
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only_getaddrinfo)


# -- no test leaves a process behind ----------------------------------------------------------------

#: Every process a test starts inherits this variable (value: pytest's pid and the test's number), so
#: whatever is still running when the test is over can be found in /proc, however it was started
#: (a `decart serve` child of `stream --local` in its own session, a grandchild inside a namespace).
LEAK_MARK = "PYTEST_DECART_LEAK_MARK"
LEAK_GRACE = 5.0  # seconds a process may take to exit after the test (a SIGTERM being handled)
_test_numbers = itertools.count(1)


def _pids() -> set[int]:
    return {int(name) for name in os.listdir("/proc") if name.isdigit()}


def _marked_processes(mark: str, candidates: set[int]) -> dict[int, str]:
    """``{pid: command line}`` of the live ``candidates`` whose environment holds ``LEAK_MARK=mark``."""
    needle = f"{LEAK_MARK}={mark}".encode() + b"\0"
    found: dict[int, str] = {}
    for pid in candidates:
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if needle not in fh.read() + b"\0":
                    continue
            with open(f"/proc/{pid}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":  # a zombie waits for its parent only
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                found[pid] = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.fixture(autouse=True)
def no_process_left_behind(clean_environ: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a test that leaves a process running (and kill it): every child must be stopped and reaped."""
    if not os.path.isdir("/proc"):  # pragma: no cover - Linux only
        yield
        return
    mark = f"{os.getpid()}-{next(_test_numbers)}"
    monkeypatch.setenv(LEAK_MARK, mark)
    before = _pids()
    yield
    deadline = time.monotonic() + LEAK_GRACE
    while (left := _marked_processes(mark, _pids() - before)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if left:
        listing = "; ".join(f"pid {pid}: {cmd[:200]}" for pid, cmd in sorted(left.items()))
        pytest.fail(f"the test left {len(left)} process(es) running (now killed): {listing}", pytrace=False)


@pytest.fixture(autouse=True)
def reap_streams(no_process_left_behind: None) -> Iterator[None]:
    """Every `decart stream` a test started (stream_proc.Stream) is killed and reaped when the test ends."""
    yield
    import stream_proc

    stream_proc.reap()
