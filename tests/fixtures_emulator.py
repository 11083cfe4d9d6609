"""Emulator fixtures, loaded as a pytest plugin by conftest.py (contracts.md §2).

* ``emulator``: a running :class:`EmulatorThread` with the default config (function scope).
* ``make_emulator(**EmulatorConfig fields)``: start one with faults or a key; stopped at teardown.
  ``loopback_only`` defaults to True here, and aiortc in the test process offers 127.0.0.1 only too.
* ``emulator_env``: ``DECART_BASE_URL`` / ``DECART_REALTIME_URL`` / ``DECART_API_KEY`` pointing at
  ``emulator`` (for CLI tests through CliRunner or a subprocess).
* :func:`expire_tokens`: every client token the emulator issued is past its expiry from now on (its
  token clock jumps an hour ahead), instead of sleeping until it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from decart_cli.emulator.server import EmulatorThread
from decart_cli.transport.ice import offer_loopback_only

TEST_API_KEY = "test-key-123456"


def expire_tokens(emu: EmulatorThread) -> None:
    """Let an hour pass for ``emu``'s tokens (``ek_`` keys and JWTs): each one issued so far is expired now."""
    emu.emulator.tokens.clock = lambda: time.time() + 3600


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., EmulatorThread]]:
    """Factory: ``make_emulator(garbage=True)`` → a running EmulatorThread, stopped at teardown."""
    started: list[EmulatorThread] = []

    def factory(**fields: Any) -> EmulatorThread:
        # Every packet stays on 127.0.0.1: the emulator's aiortc and (process-wide) the test's own
        # aiortc peers offer 127.0.0.1 only, never the machine's interface address.
        offer_loopback_only()
        emu = EmulatorThread(**{"loopback_only": True, **fields})
        emu.start()
        started.append(emu)
        return emu

    yield factory
    for emu in reversed(started):
        emu.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., EmulatorThread]) -> EmulatorThread:
    """A running emulator with the default configuration (accepts any non-empty key)."""
    return make_emulator()


@pytest.fixture
def emulator_env(emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch) -> EmulatorThread:
    """Point DECART_BASE_URL / DECART_REALTIME_URL / DECART_API_KEY at the ``emulator`` fixture."""
    monkeypatch.setenv("DECART_BASE_URL", emulator.http_url)
    monkeypatch.setenv("DECART_REALTIME_URL", emulator.ws_url)
    monkeypatch.setenv("DECART_API_KEY", TEST_API_KEY)
    return emulator
