"""Test hygiene shared by every test: a clean environment, a private config directory, loopback-only names."""

from __future__ import annotations

import ipaddress
import os
import socket
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
