"""StatsCounter: rates from explicit timestamps (no clock)."""

from __future__ import annotations

import pytest

from decart_cli.core.stats import StatsCounter, StatsSnapshot


def test_empty_snapshot() -> None:
    """A fresh counter reports zeros and unknown RTT/loss."""
    assert StatsCounter(10.0).snapshot(10.0) == StatsSnapshot()


def test_fps_over_sliding_window() -> None:
    """fps counts frames of the last second only."""
    counter = StatsCounter(0.0)
    for i in range(60):  # 30 fps for 2 s
        counter.frame_received(i / 30)
        counter.frame_sent(i / 30)
    snap = counter.snapshot(2.0 - 1 / 30)
    assert snap.frames_received == 60 and snap.frames_sent == 60
    assert snap.fps_received == pytest.approx(30, abs=1) and snap.fps_sent == pytest.approx(30, abs=1)
    later = counter.snapshot(10.0)
    assert later.fps_received == 0 and later.frames_received == 60 and later.elapsed == 10.0
    assert counter.frames_received == 60  # the count itself, without a snapshot (the stall watchdog's question)


def test_fps_before_a_full_second() -> None:
    """During the first second the rate is scaled by the time elapsed."""
    counter = StatsCounter(0.0)
    for i in range(15):
        counter.frame_received(i / 30)
    assert counter.snapshot(0.5).fps_received == pytest.approx(30)


def test_bitrates_rtt_and_loss() -> None:
    """Bitrates come from byte deltas between samples; RTT/loss keep their last known value."""
    counter = StatsCounter(0.0)
    counter.transport(1.0, bytes_sent=0, bytes_received=0)
    counter.transport(2.0, bytes_sent=125_000, bytes_received=250_000, rtt_ms=12.5, loss=0.02)
    snap = counter.snapshot(2.0)
    assert snap.bitrate_sent_kbps == 1000 and snap.bitrate_received_kbps == 2000
    assert snap.rtt_ms == 12.5 and snap.loss == 0.02
    counter.transport(3.0, bytes_sent=250_000, bytes_received=250_000, loss=1.5)
    snap = counter.snapshot(3.0)
    assert snap.rtt_ms == 12.5 and snap.loss == 1.0 and snap.bitrate_received_kbps == 0


def test_counters_going_backwards_do_not_give_negative_rates() -> None:
    """A new transport restarting its counters keeps the previous rate instead of a negative one."""
    counter = StatsCounter(0.0)
    counter.transport(1.0, bytes_sent=1000, bytes_received=1000)
    counter.transport(2.0, bytes_sent=2000, bytes_received=2000)
    counter.transport(3.0, bytes_sent=10, bytes_received=10)
    counter.transport(3.0, bytes_sent=20, bytes_received=20)  # dt == 0: ignored
    assert counter.snapshot(3.0).bitrate_sent_kbps == 8.0


def test_the_first_transport_sample_already_gives_a_bitrate() -> None:
    """Byte counters start at 0 with the connection: the first sample yields a rate, not 0 kbps while frames flow."""
    counter = StatsCounter(10.0)
    for i in range(30):
        counter.frame_received(10.0 + i / 30)
    counter.transport(11.0, bytes_sent=62_500, bytes_received=125_000)
    snap = counter.snapshot(11.0)
    assert snap.fps_received > 0
    assert snap.bitrate_sent_kbps == 500 and snap.bitrate_received_kbps == 1000
