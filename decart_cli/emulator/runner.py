"""Run the emulator in the foreground until SIGINT/SIGTERM (the body of ``decart serve``)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from decart_cli.emulator.server import Emulator, EmulatorConfig

__all__ = ["run_until_signal"]


def run_until_signal(config: EmulatorConfig, on_listening: Callable[[str], None]) -> int:
    """Serve until SIGINT or SIGTERM, then end every session cleanly.

    Args:
        config: the emulator configuration.
        on_listening: called once with ``http://HOST:PORT`` after the port is bound.

    Returns:
        The signal number that stopped the server.

    Raises:
        OSError: the address could not be bound (port in use, bad host).
    """
    return asyncio.run(_serve(config, on_listening))


async def _serve(config: EmulatorConfig, on_listening: Callable[[str], None]) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[int] = []

    def _on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _on_signal, signum)
    try:
        async with Emulator(config) as emu:
            on_listening(emu.http_url)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return received[0] if received else 0
