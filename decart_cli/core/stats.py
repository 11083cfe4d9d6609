"""Throughput counters fed explicit timestamps (no clock here), summarised as a frozen snapshot.

The driver calls :meth:`StatsCounter.frame_sent` / :meth:`frame_received` with ``time.monotonic()``
values and :meth:`StatsCounter.transport` with cumulative byte counters and RTT/loss from
``getStats()``; :meth:`StatsCounter.snapshot` turns them into rates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["FPS_WINDOW", "StatsCounter", "StatsSnapshot"]

FPS_WINDOW = 1.0  # seconds: fps is counted over the last second, like a browser's framesPerSecond


@dataclass(frozen=True)
class StatsSnapshot:
    """Media figures at one instant.

    Attributes:
        frames_sent: frames handed to the encoder since the counter started.
        frames_received: remote frames decoded.
        fps_sent: frames sent over the last ~1 s.
        fps_received: frames received over the last ~1 s.
        bitrate_sent_kbps: RTP payload bitrate upstream between the last two transport samples.
        bitrate_received_kbps: the same downstream.
        rtt_ms: round-trip time from RTCP (remote-inbound), ``None`` when not reported yet.
        loss: fraction of upstream packets lost, 0..1, ``None`` when not reported.
        elapsed: seconds since the counter started.
    """

    frames_sent: int = 0
    frames_received: int = 0
    fps_sent: float = 0.0
    fps_received: float = 0.0
    bitrate_sent_kbps: float = 0.0
    bitrate_received_kbps: float = 0.0
    rtt_ms: float | None = None
    loss: float | None = None
    elapsed: float = 0.0


class _Rate:
    """Events per second over a sliding window."""

    def __init__(self) -> None:
        self.count = 0
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        self.count += 1
        self._times.append(now)
        self._prune(now)

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] <= now - FPS_WINDOW:
            self._times.popleft()

    def per_second(self, now: float, elapsed: float) -> float:
        self._prune(now)
        window = min(FPS_WINDOW, elapsed)
        return len(self._times) / window if window > 0 else 0.0


class StatsCounter:
    """Counters for one session (reset on reconnect by creating a new one).

    Args:
        start: the timestamp the counter starts at (same clock as every later call).
    """

    def __init__(self, start: float) -> None:
        self.start = start
        self._sent = _Rate()
        self._received = _Rate()
        # (time, sent, received) of the last sample. The transport's byte counters are cumulative from
        # the connection's start, so the first sample already gives a rate (0 kbps for the first
        # seconds of every connection was shown while 30 fps flowed: that was the missing baseline).
        self._bytes: tuple[float, int, int] | None = (start, 0, 0)
        self._kbps = (0.0, 0.0)
        self._rtt_ms: float | None = None
        self._loss: float | None = None

    def frame_sent(self, now: float) -> None:
        """One local frame was handed to the encoder at ``now``."""
        self._sent.add(now)

    def frame_received(self, now: float) -> None:
        """One remote frame was decoded at ``now``."""
        self._received.add(now)

    @property
    def frames_received(self) -> int:
        """Remote frames decoded since the counter started."""
        return self._received.count

    def transport(
        self,
        now: float,
        *,
        bytes_sent: int,
        bytes_received: int,
        rtt_ms: float | None = None,
        loss: float | None = None,
    ) -> None:
        """Feed cumulative byte counters and the latest RTT/loss (``None`` keeps the previous value).

        Bitrates are computed between consecutive samples; counters that go backwards (a new
        transport) restart the measurement instead of producing a negative rate.
        """
        if self._bytes is not None:
            t0, s0, r0 = self._bytes
            dt = now - t0
            if dt > 0 and bytes_sent >= s0 and bytes_received >= r0:
                self._kbps = ((bytes_sent - s0) * 8 / 1000 / dt, (bytes_received - r0) * 8 / 1000 / dt)
        self._bytes = (now, bytes_sent, bytes_received)
        if rtt_ms is not None:
            self._rtt_ms = rtt_ms
        if loss is not None:
            self._loss = min(1.0, max(0.0, loss))

    def snapshot(self, now: float) -> StatsSnapshot:
        """The figures at ``now``."""
        elapsed = max(0.0, now - self.start)
        return StatsSnapshot(
            frames_sent=self._sent.count,
            frames_received=self._received.count,
            fps_sent=round(self._sent.per_second(now, elapsed), 2),
            fps_received=round(self._received.per_second(now, elapsed), 2),
            bitrate_sent_kbps=round(self._kbps[0], 1),
            bitrate_received_kbps=round(self._kbps[1], 1),
            rtt_ms=self._rtt_ms,
            loss=self._loss,
            elapsed=round(elapsed, 3),
        )
