"""Reconnect delays: 1, 2, 4, 8, 10 s, at most five, ±10 % jitter."""

from __future__ import annotations

import pytest

from decart_cli.core.backoff import backoff, nominal_delays


def test_nominal_schedule() -> None:
    """The JS SDK's schedule: factor 2 from 1 s, capped at 10 s, five retries."""
    assert nominal_delays() == [1, 2, 4, 8, 10]
    assert nominal_delays(7) == [1, 2, 4, 8, 10, 10, 10]
    assert nominal_delays(0) == [] and nominal_delays(-1) == []


def test_no_jitter_at_midpoint() -> None:
    """rng() = 0.5 means no spread: the nominal delays exactly."""
    assert list(backoff(rng=lambda: 0.5)) == [1, 2, 4, 8, 10]


@pytest.mark.parametrize(("r", "factor"), [(0.0, 0.9), (0.999999, 1.1)])
def test_jitter_bounds(r: float, factor: float) -> None:
    """The extreme rng values give ±10 %."""
    assert list(backoff(rng=lambda: r)) == pytest.approx([d * factor for d in [1, 2, 4, 8, 10]], rel=1e-5)


def test_real_rng_stays_in_bounds() -> None:
    """With the default RNG every delay stays within ±10 % of its nominal value."""
    for _ in range(50):
        for got, nominal in zip(backoff(), [1, 2, 4, 8, 10], strict=True):
            assert 0.9 * nominal <= got <= 1.1 * nominal


def test_retries_and_parameters() -> None:
    """Retry count, initial, factor and cap are honoured; delays are never negative."""
    assert list(backoff(2, initial=0.1, factor=3, cap=0.2, rng=lambda: 0.5)) == pytest.approx([0.1, 0.2])
    assert list(backoff(0)) == []
    assert list(backoff(1, jitter=2.0, rng=lambda: 0.0)) == [0.0]
