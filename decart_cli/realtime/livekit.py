"""The LiveKit media transport: ``livekit_join`` → ``livekit_room_info`` → a room with the official SDK.

Today's media path (decart-protocol-2026-11.md §3–§4). The control socket stays with the session
driver; this module joins the room the server names, publishes the camera and reads the model's
output. Every object of the ``livekit`` SDK stays in here.

Choices, and why:

* **Two peer connections** (``RoomOptions(single_peer_connection=False)``): ``livekit`` 1.2.1 made
  single-PC the default, but the C++ SDK pins dual PCs because "single-PC mode dropped the inference
  output subscription" on Decart's server (§4); the browser SDK, which the service is built around,
  uses two as well. It also goes straight to ``/rtc`` instead of trying ``/rtc/v1`` first.
* **Publish options that hold 30 fps at full size** (livekit-local.md §5.4–§5.6): one camera track,
  simulcast off (one 1:1 inference stream; simulcast made the server receive a lower layer),
  ``max_framerate`` = the model's fps (the SDK's preset for a 1088-wide source is 25 fps),
  ``max_bitrate`` 3.5 Mbps (the JS and C++ SDKs), degradation ``MAINTAIN_RESOLUTION`` (the default
  ``BALANCED`` scales 1088×624 down to 544×312), source camera, codec H264 by default as the SDKs.
* **Frames in**: the capture thread already converted each frame to I420 once; its array goes into
  ``VideoSource.capture_frame`` as a ``VideoFrame`` over the same memory (no copy in Python, no
  colour round trip), paced by the same :class:`~decart_cli.media.track.FramePacer` as the direct
  path.
* **Frames out**: a new ``VideoStream`` on EVERY ``track_subscribed`` from an ``inference-server-*``
  participant — the output is re-published whenever generation restarts, and a reader bound to the
  first track goes dark (C++ SDK, §4). Frames arrive as I420 and become ``av.VideoFrame`` objects
  over the SDK's own buffer (no copy), so the window, the recorder and the stats see what the
  direct path gives them.
* **Frame timing** (``TransportOptions.frame_timing``, §6): the track is published with
  ``FMF_USER_TIMESTAMP`` and every frame is captured with ``FrameMetadata(user_timestamp=µs since
  the epoch)``; libwebrtc carries it in a packet trailer, the server copies it to the output frame
  it makes, and the output frame's metadata brings it back: it goes on as ``frame.opaque``.
* **Logs**: the SDK's native (FFI) records reach Python's ``livekit`` logger; they are demoted to
  INFO/DEBUG so they appear with ``-v`` or in ``--log-file`` and never as noise above the panel.
* The LiveKit token arrives in ``livekit_room_info``; the driver registers it as a secret before
  this module sees it, so no log line, error or repr shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from decart_cli.config import redact
from decart_cli.errors import ConnectionFailed
from decart_cli.realtime.transport import Control, MediaStats, TransportOptions, VideoInput
from decart_cli.transport.signaling import is_loopback

if TYPE_CHECKING:
    from livekit import rtc

    from decart_cli.core.session import AddCandidate, ApplyAnswer, TransportKind

__all__ = ["INFERENCE_PREFIX", "MAX_BITRATE", "LiveKitTransport", "native_started", "preload", "quiet_sdk_logs"]

logger = logging.getLogger(__name__)

INFERENCE_PREFIX = "inference-server-"  # identity of the participant that publishes the output
MAX_BITRATE = 3_500_000  # bits/s, as the JS and C++ SDKs
OUTPUT_QUEUE = 30  # decoded output frames buffered per reader (1 s); older ones are dropped first
CLOSE_TIMEOUT = 1.5  # seconds for room.disconnect() during teardown


class _Demote(logging.Filter):
    """Lower the SDK's records by a level or two: its warnings are ours to judge, not the user's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.CRITICAL:
            record.levelno = logging.INFO if record.levelno >= logging.WARNING else logging.DEBUG
            record.levelname = logging.getLevelName(record.levelno)
        return True


def quiet_sdk_logs() -> None:
    """Route the ``livekit`` logger's records to our handlers at INFO at most (idempotent)."""
    sdk = logging.getLogger("livekit")
    if not any(isinstance(f, _Demote) for f in sdk.filters):
        sdk.addFilter(_Demote())


# Every room this process created, kept until it leaves. livekit 1.2.1 frees a room's native side
# when the Python ``Room`` is freed, and after its engine gave up (JOIN_FAILURE, a refused resume)
# that free can crash a native worker thread (SIGSEGV, a use-after-free) a moment later: 5 runs in 30
# of tests/sdk/livekit_driver.py against ``--lk-drop-after``, 0 in 40 with the room kept. A session
# that reconnects would otherwise free its failed room whenever the garbage collector reaches it, in
# the middle of the next room's stream. Rooms are few (one per attempt); the process ends with
# ``os._exit`` (:func:`native_started`), so they are never freed.
_rooms: list[Any] = []


def preload() -> None:
    """Import the livekit SDK's Python side, PyAV and numpy ahead of the first connect.

    Its native runtime starts only with the first room (:func:`native_started`).
    """
    import av  # noqa: F401
    import numpy  # noqa: F401
    from livekit import rtc  # noqa: F401

    quiet_sdk_logs()


def native_started() -> bool:
    """Whether this process opened a LiveKit room: livekit 1.2.1's native threads can then abort the
    interpreter's teardown, so a CLI that is done should leave with ``os._exit``."""
    return bool(_rooms)


def _codec(rtc_mod: Any, name: str) -> Any:
    codecs = {"h264": rtc_mod.VideoCodec.H264, "vp8": rtc_mod.VideoCodec.VP8, "vp9": rtc_mod.VideoCodec.VP9}
    return codecs[name]


class LiveKitTransport:
    """One LiveKit room per attempt (see :class:`~decart_cli.realtime.transport.MediaTransport`)."""

    kind: TransportKind = "livekit"

    def __init__(self, video: VideoInput, options: TransportOptions) -> None:
        self._video = video
        self._options = options
        self._room: rtc.Room | None = None
        self._source: rtc.VideoSource | None = None
        self._tracks: asyncio.Queue[Any] = asyncio.Queue()
        self._streams: list[Any] = []
        self._control: Control | None = None
        self._closing = False
        self.host = "?"

    # --- connect ---------------------------------------------------------------------------------

    async def connect(self, control: Control) -> None:
        """Room info (queue-aware, in the driver), the initial ack, then join and publish.

        Raises:
            DecartError: refused, timed out, or the room could not be joined or published to.
        """
        from livekit import rtc

        quiet_sdk_logs()
        self._control = control
        info = await control.room_info()
        # Sent right behind the join, so usually acknowledged long before the room info arrived.
        await control.initial_ack()
        self.host = urlsplit(info.livekit_url).netloc or info.livekit_url
        room = self._room = rtc.Room()
        _rooms.append(room)
        room.on("track_subscribed", self._on_track_subscribed)
        room.on("track_unsubscribed", self._on_track_unsubscribed)
        room.on("disconnected", self._on_disconnected)
        room.on("reconnecting", lambda: logger.info("LiveKit room reconnecting (SDK resume)"))
        room.on("reconnected", lambda: logger.info("LiveKit room reconnected"))
        options = rtc.RoomOptions(auto_subscribe=True, dynacast=False, single_peer_connection=False)
        try:
            await room.connect(info.livekit_url, info.token, options)
        except rtc.ConnectError as exc:
            if is_loopback(info.livekit_url):
                # libwebrtc never gathers ICE candidates on a loopback interface (livekit-local.md §4.1).
                hint = "libwebrtc cannot use loopback: run in scripts/netns-run, or use --transport webrtc"
            else:
                hint = "check UDP connectivity with 'decart netcheck', or try --transport webrtc"
            raise ConnectionFailed(
                f"could not join the LiveKit room at {self.host}: {redact(str(exc))}", hint=hint
            ) from None
        model = control.model.model
        self._source = rtc.VideoSource(model.width, model.height)
        track = rtc.LocalVideoTrack.create_video_track("camera", self._source)
        publish = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA,
            simulcast=False,
            video_codec=_codec(rtc, self._options.codec),
            video_encoding=rtc.VideoEncoding(max_bitrate=MAX_BITRATE, max_framerate=float(model.fps)),
            # The binding takes the proto int, not the Python enum (livekit-local.md §5.6).
            degradation_preference=rtc.DegradationPreference.MAINTAIN_RESOLUTION.value,
        )
        if self._options.frame_timing:
            # libwebrtc appends a packet trailer with each frame's user timestamp (the JS SDK's
            # frameMetadata: {timestamp: true}); the server echoes it on the output (§6).
            publish.frame_metadata_features.append(rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP)
        try:
            await room.local_participant.publish_track(track, publish)
        except Exception as exc:  # PublishTrackError, or the room went away meanwhile
            raise ConnectionFailed(f"could not publish the camera to {self.host}: {redact(str(exc))}") from None
        # Output published before we joined: subscribed already, or about to be (track_subscribed).
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track_subscribed(publication.track, publication, participant)
        logger.info("joined LiveKit room %s at %s (%s)", info.room_name, self.host, self._options.codec)
        control.media_connected()

    # --- room events (on the loop) ---------------------------------------------------------------

    def _on_track_subscribed(self, track: Any, publication: Any, participant: Any) -> None:
        from livekit import rtc

        identity = str(getattr(participant, "identity", ""))
        if track.kind != rtc.TrackKind.KIND_VIDEO or not identity.startswith(INFERENCE_PREFIX):
            logger.debug("ignored track %s of %s", getattr(publication, "sid", "?"), identity)
            return
        logger.info("output track %s from %s", getattr(publication, "sid", "?"), identity)
        self._tracks.put_nowait(track)

    def _on_track_unsubscribed(self, track: Any, publication: Any, participant: Any) -> None:
        logger.info("output track %s unsubscribed", getattr(publication, "sid", "?"))

    def _on_disconnected(self, reason: Any = None) -> None:
        if self._closing or self._control is None:
            return
        name = _reason_name(reason)
        self._control.media_lost(f"the LiveKit room disconnected ({name})")

    # --- frames ----------------------------------------------------------------------------------

    async def run(self, control: Control) -> None:
        """Publish frames and read every output track (a new reader per subscription); cancellable."""
        readers: set[asyncio.Task[None]] = set()
        publisher = asyncio.ensure_future(self._publish(control))
        try:
            while True:
                track = await self._tracks.get()
                task = asyncio.ensure_future(self._read(track, control))
                readers.add(task)
                task.add_done_callback(readers.discard)
        finally:
            for task in (publisher, *readers):
                task.cancel()
            await asyncio.gather(publisher, *readers, return_exceptions=True)

    async def _publish(self, control: Control) -> None:
        from livekit import rtc

        assert self._source is not None
        frames = self._video.frames()
        timing = self._options.frame_timing
        try:
            async for item in frames:
                if item.i420 is None:  # odd sizes: no I420 planes of whole pixels; send RGB24
                    rgb = item.bgr[..., ::-1].copy()
                    frame = rtc.VideoFrame(rgb.shape[1], rgb.shape[0], rtc.VideoBufferType.RGB24, rgb.reshape(-1).data)
                else:
                    rows, width = item.i420.shape
                    # A 1-D view of the same memory: the SDK copies it once, natively.
                    frame = rtc.VideoFrame(width, rows * 2 // 3, rtc.VideoBufferType.I420, item.i420.reshape(-1).data)
                if timing:
                    # The capture time in µs since the epoch (the JS SDK stamps Date.now() * 1000 at
                    # capture): the echo is read against the wall clock.
                    captured_ns = time.time_ns() - int((time.perf_counter() - item.captured) * 1e9)
                    stamp = rtc.FrameMetadata(user_timestamp=captured_ns // 1000)
                    self._source.capture_frame(frame, metadata=stamp)
                else:
                    self._source.capture_frame(frame)
                control.frame_sent()
        finally:
            stop = getattr(frames, "stop", None)
            if stop is not None:
                stop()

    async def _read(self, track: Any, control: Control) -> None:
        import av
        import numpy as np
        from livekit import rtc

        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420, capacity=OUTPUT_QUEUE)
        self._streams.append(stream)
        try:
            async for event in stream:
                src = event.frame
                w, h = src.width, src.height
                if w % 2 == 0 and h % 2 == 0:
                    # The SDK already copied the picture into its own bytearray: wrap it, no second copy.
                    planes = np.frombuffer(src.data, dtype=np.uint8).reshape(h * 3 // 2, w)
                    frame = av.VideoFrame.from_numpy_buffer(planes, format="yuv420p")
                else:
                    rgb = src.convert(rtc.VideoBufferType.RGB24)
                    pixels = np.frombuffer(rgb.data, dtype=np.uint8).reshape(h, w, 3)
                    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                meta = event.metadata
                if meta is not None and meta.user_timestamp:
                    frame.opaque = int(meta.user_timestamp)  # the capture time the server echoed (µs)
                control.frame_received(frame)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.aclose(), 0.5)

    # --- stats, close ----------------------------------------------------------------------------

    async def stats(self) -> MediaStats | None:
        """Bytes both ways, RTT and upstream loss from the SDK's ``get_rtc_stats()``."""
        room = self._room
        if room is None or not room.isconnected():
            return None
        report = await room.get_rtc_stats()
        return stats_from(report.publisher_stats, report.subscriber_stats)

    async def apply(self, action: ApplyAnswer | AddCandidate) -> None:
        """Nothing to apply: LiveKit negotiates its media on its own signalling connection."""
        logger.debug("ignored %s on the LiveKit transport", type(action).__name__)

    async def aclose(self) -> None:
        """Leave the room (bounded), close the readers and the video source; never raises."""
        self._closing = True
        for stream in self._streams:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.aclose(), 0.5)
        if self._room is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._room.disconnect(), CLOSE_TIMEOUT)
        if self._source is not None:
            with contextlib.suppress(Exception):
                await self._source.aclose()


def stats_from(publisher: list[Any], subscriber: list[Any]) -> MediaStats:
    """Sum the SDK's WebRTC stats (proto ``RtcStats``) into :class:`MediaStats`."""
    sent = received = 0
    rtt: float | None = None
    loss: float | None = None
    for item in publisher:
        kind = item.WhichOneof("stats")
        if kind == "outbound_rtp":
            sent += int(item.outbound_rtp.sent.bytes_sent)
        elif kind == "remote_inbound_rtp":
            remote = item.remote_inbound_rtp.remote_inbound
            if remote.round_trip_time > 0:
                rtt = remote.round_trip_time * 1000.0
            loss = max(0.0, float(remote.fraction_lost))
        elif kind == "candidate_pair" and rtt is None and item.candidate_pair.candidate_pair.nominated:
            current = item.candidate_pair.candidate_pair.current_round_trip_time
            if current > 0:
                rtt = current * 1000.0
    for item in subscriber:
        if item.WhichOneof("stats") == "inbound_rtp":
            received += int(item.inbound_rtp.inbound.bytes_received)
    return MediaStats(sent, received, rtt, loss)


def _reason_name(reason: Any) -> str:
    try:
        from livekit.rtc import DisconnectReason

        return str(DisconnectReason.Name(reason))
    except Exception:
        return str(reason)
