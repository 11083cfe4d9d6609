"""Reconnect delays: a pure, jittered, capped exponential generator.

Like ``backoff()`` in websockets' client: the driver asks for the next delay and sleeps itself.
The schedule is the JS SDK's (1, 2, 4, 8, 10 s: factor 2, min 1 s, cap 10 s) with at most
``max_retries`` retries, plus ±10 % jitter so many clients dropped by the same outage do not
reconnect in lock-step (neither official SDK jitters).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

__all__ = ["DEFAULT_CAP", "DEFAULT_JITTER", "DEFAULT_RETRIES", "backoff", "nominal_delays"]

DEFAULT_INITIAL = 1.0
DEFAULT_FACTOR = 2.0
DEFAULT_CAP = 10.0
DEFAULT_RETRIES = 5
DEFAULT_JITTER = 0.1


def nominal_delays(
    retries: int = DEFAULT_RETRIES,
    *,
    initial: float = DEFAULT_INITIAL,
    factor: float = DEFAULT_FACTOR,
    cap: float = DEFAULT_CAP,
) -> list[float]:
    """The delays before each retry without jitter: ``[1, 2, 4, 8, 10]`` for the defaults."""
    return [min(cap, initial * factor**i) for i in range(max(0, retries))]


def backoff(
    retries: int = DEFAULT_RETRIES,
    *,
    initial: float = DEFAULT_INITIAL,
    factor: float = DEFAULT_FACTOR,
    cap: float = DEFAULT_CAP,
    jitter: float = DEFAULT_JITTER,
    rng: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Yield at most ``retries`` delays in seconds, each within ±``jitter`` of the nominal one.

    Args:
        retries: how many retries (delays) to yield; the iterator then stops.
        initial: the first nominal delay.
        factor: growth per retry.
        cap: the largest nominal delay.
        jitter: relative spread, 0.1 = ±10 %.
        rng: a function returning a float in [0, 1) (inject a fixed one in tests).
    """
    for nominal in nominal_delays(retries, initial=initial, factor=factor, cap=cap):
        spread = (rng() * 2.0 - 1.0) * jitter
        yield max(0.0, nominal * (1.0 + spread))
