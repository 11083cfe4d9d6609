"""The per-frame path's pieces: frame-end jitter buffer, I420 marker, zero-copy frames, the window thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np
import pytest
from aiortc.rtp import RtpPacket

from decart_cli.errors import MediaError
from decart_cli.media import marker
from decart_cli.media.frame_source import SlotItem
from decart_cli.media.track import to_video_frame
from decart_cli.media.window_thread import WindowThread
from decart_cli.transport.rtc import frame_end_jitter_buffer


def _packet(seq: int, ts: int, data: bytes, marker_bit: int) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts)
    packet.marker = marker_bit
    packet._data = data  # type: ignore[attr-defined]
    return packet


def test_a_frame_leaves_the_jitter_buffer_with_its_last_packet() -> None:
    """The frame is released at the packet carrying the RTP marker bit, not when the next frame begins."""
    buffer = frame_end_jitter_buffer()
    assert buffer.add(_packet(10, 3000, b"a1", 0)) == (False, None)
    _, frame = buffer.add(_packet(11, 3000, b"a2", 1))
    assert frame is not None and (frame.data, frame.timestamp) == (b"a1a2", 3000)
    _, frame = buffer.add(_packet(12, 6000, b"b1", 1))
    assert frame is not None and frame.data == b"b1"


def test_a_gap_holds_the_frame_until_it_is_filled() -> None:
    """A missing middle packet keeps the frame back; the late packet completes it in order."""
    buffer = frame_end_jitter_buffer()
    buffer.add(_packet(20, 9000, b"x1", 0))
    assert buffer.add(_packet(22, 9000, b"x3", 1))[1] is None
    _, frame = buffer.add(_packet(21, 9000, b"x2", 0))
    assert frame is not None and frame.data == b"x1x2x3"


def test_a_lost_end_is_released_by_the_next_frame() -> None:
    """When a frame's last packet never comes, the next frame's first packet releases it (aiortc's rule)."""
    buffer = frame_end_jitter_buffer()
    buffer.add(_packet(30, 100, b"p1", 0))
    _, frame = buffer.add(_packet(31, 200, b"q1", 0))
    assert frame is not None and (frame.data, frame.timestamp) == (b"p1", 100)


def test_padding_after_a_frame_is_not_a_frame() -> None:
    """libwebrtc's padding-only probes (no payload, the last frame's timestamp, no marker) are dropped: the
    next frame is released whole at its own last packet, and no empty frame reaches the decoder."""
    buffer = frame_end_jitter_buffer()
    assert buffer.add(_packet(40, 3000, b"a1", 1))[1] is not None
    assert buffer.add(_packet(41, 3000, b"", 0)) == (False, None)
    assert buffer.add(_packet(42, 3000, b"", 0)) == (False, None)
    assert buffer.add(_packet(43, 6000, b"b1", 0)) == (False, None)
    _, frame = buffer.add(_packet(44, 6000, b"b2", 1))
    assert frame is not None and (frame.data, frame.timestamp) == (b"b1b2", 6000)


def test_marker_in_the_i420_picture_reads_back_after_conversion() -> None:
    """stamp_i420 writes the marker into Y (with neutral chroma): it reads back from the luma plane and from
    the BGR picture the receiver would make, without a BGR copy on the sender."""
    rng = np.random.default_rng(3)
    bgr = rng.integers(0, 255, (624, 1088, 3), dtype=np.uint8)
    i420 = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420))
    marker.stamp_i420(i420, 2345)
    assert marker.read(i420[: marker.HEIGHT, : marker.WIDTH]) == 2345 & 0xFFF
    assert marker.read(np.asarray(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420))) == 2345 & 0xFFF
    with pytest.raises(ValueError):
        marker.stamp_i420(np.zeros((24, 32), np.uint8), 1)


def test_outgoing_frames_share_the_i420_memory() -> None:
    """The aiortc frame wraps the slot's I420 array (no copy) and keeps it alive."""
    i420 = np.full((624 * 3 // 2, 1088), 77, np.uint8)
    item = SlotItem(seq=1, i420=i420, bgr=None, captured=0.0, marker_id=None)
    frame = to_video_frame(item)
    i420[0, 0] = 5
    del i420, item
    plane = np.frombuffer(frame.planes[0], np.uint8)
    assert plane[0] == 5 and (frame.width, frame.height, frame.format.name) == (1088, 624, "yuv420p")


class FakeWindow:
    """A window that records what the thread does with it; 'closed by the user' after ``close_after`` polls."""

    instances: list[FakeWindow] = []

    def __init__(self, title: str, close_after: int | None = None) -> None:
        self.titles = [title]
        self.shown: list[Any] = []
        self.threads: set[str] = {threading.current_thread().name}
        self.polls = 0
        self.close_after = close_after
        self.closed = False
        FakeWindow.instances.append(self)

    def show(self, frame: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.shown.append(frame)
        time.sleep(0.05)  # a slow paint: frames arriving meanwhile must not queue up

    def set_title(self, title: str) -> None:
        self.titles.append(title)

    def poll(self) -> bool:
        self.polls += 1
        return self.close_after is None or self.polls < self.close_after

    def close(self) -> None:
        self.closed = True


def test_the_window_paints_the_newest_frame_on_its_own_thread() -> None:
    """show() only fills a slot: the window thread paints, never on the caller's thread, and frames that
    arrive during a slow paint are replaced (newest only), never queued; titles follow; close() stops it."""
    window = WindowThread("first", factory=FakeWindow)
    fake = FakeWindow.instances[-1]
    for n in range(40):
        window.show(n)
        time.sleep(0.005)
    window.set_title("second")
    time.sleep(0.2)
    window.close()
    assert fake.threads == {"decart-window"}
    assert fake.shown[-1] == 39 and len(fake.shown) < 20 and fake.shown == sorted(fake.shown)
    assert window.dropped >= 20 and fake.titles[-1] == "second" and fake.closed and not window.poll()


def test_a_window_closed_by_the_user_calls_back_once() -> None:
    """q/Esc/close in the window: poll() turns False and on_closed runs (not after close())."""
    called = threading.Event()
    window = WindowThread("t", factory=lambda title: FakeWindow(title, close_after=3), on_closed=called.set)
    assert called.wait(5) and not window.poll()
    window.close()


def test_a_window_that_cannot_open_is_a_media_error() -> None:
    """The factory's MediaError (no display, no GUI) reaches the caller, as Window raises it."""

    def refuse(title: str) -> Any:
        raise MediaError("no display (DISPLAY / WAYLAND_DISPLAY unset)", hint="use --no-window")

    with pytest.raises(MediaError, match="no display"):
        WindowThread("t", factory=refuse)
