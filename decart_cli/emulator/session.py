"""One accepted ``/v1/stream`` WebSocket: signaling, the aiortc answerer, ticks, faults, shutdown.

Behaviour (decart-protocol.md §2, §11.2), in the order a client sees it:

1. ``session_id`` right away (``server_ip`` ``127.0.0.1``, ``server_port`` the emulator's port).
2. Every ``prompt`` → one ``prompt_ack`` echoing the exact text; every ``set_image`` → exactly one
   ``set_image_ack``; in arrival order, before or after the offer. Acks go through one queue so
   ``--ack-delay`` never reorders them. An undecodable image → ``success: false, error: "invalid_image"``.
3. ``offer`` → aiortc answerer (no ICE servers: loopback only), output track attached, ``answer`` with
   the full SDP (candidates embedded; the emulator never trickles, never sends ``ready``).
4. First output frame → ``generation_started``; then ``generation_tick`` every ``tick_interval``
   seconds, each reporting one more billed second (``tick_interval`` compresses time in tests).
5. Server-side end (shutdown, token ``maxSessionDuration``, ``--error-after``) →
   ``generation_ended {seconds, reason}`` then a close frame. ``--drop-after`` instead aborts the TCP
   connection and the peer connection without any goodbye, like a network loss.

Malformed or unknown client frames are logged and ignored; they never end the session.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMsgType, web

from decart_cli.core import messages as m
from decart_cli.emulator.events import EventLog, shorten
from decart_cli.emulator.faults import Faults, garbage_frames
from decart_cli.emulator.media import drain, output_track, pattern_track
from decart_cli.emulator.model import FrameModel, RenderState, decode_image
from decart_cli.errors import ProtocolError

if TYPE_CHECKING:
    import av
    from aiortc import MediaStreamTrack, RTCPeerConnection

__all__ = ["Session"]

logger = logging.getLogger("decart_cli.emulator")

INVALID_IMAGE: Final = "invalid_image"
CLOSE_TIMEOUT: Final = 3.0  # seconds to wait for the client's close frame after ours
PC_CLOSE_TIMEOUT: Final = 5.0  # seconds for aiortc to stop transceivers and ICE/DTLS transports


class Session:
    """Drives one WebSocket until it closes. Create per connection, then ``await run()``."""

    def __init__(
        self,
        *,
        conn: int,
        ws: web.WebSocketResponse,
        request: web.Request,
        size: tuple[int, int],
        faults: Faults,
        events: EventLog,
        inputs: deque[av.VideoFrame],
        server_port: int,
        tick_interval: float,
        max_duration: int | None,
        claim_drop: Callable[[], float | None],
    ) -> None:
        self.conn = conn
        self.ws = ws
        self.request = request
        self.model = FrameModel(*size)
        self.faults = faults
        self.events = events
        self.inputs = inputs
        self.server_port = server_port
        self.tick_interval = tick_interval
        self.max_duration = max_duration
        self.claim_drop = claim_drop
        self.session_id = secrets.token_hex(8)
        self.render_state = RenderState()
        self.executor: Executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"emu-model-{conn}")
        self.frames_in = 0
        self.frames_out = 0
        self.frames_skipped = 0
        self.billed = 0
        self._pc: RTCPeerConnection | None = None
        self._pending_candidates: list[Any] = []
        self._send_lock = asyncio.Lock()
        self._acks: asyncio.Queue[tuple[float, m.Message]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._garbage = garbage_frames() if faults.garbage else None
        self._started = False
        self._states = 0  # state changes so far (the first is the initial state)
        self._ending = False
        self._close_code: int | None = None
        self._closer: asyncio.Task[Any] | None = None
        self.done = asyncio.Event()  # set when the session has fully cleaned up (peer closed)
        self.viewers: set[asyncio.Queue[av.VideoFrame | None]] = set()  # /subscribe/{session_id} viewers

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the client or the emulator closes it; always cleans up."""
        try:
            await self.send(m.SessionId(self.session_id, "127.0.0.1", self.server_port))
            self._spawn(self._ack_sender())
            if self.faults.error_after is not None:
                self._spawn(self._error_later(*self.faults.error_after))
            if self.max_duration is not None:
                self._spawn(self._end_later(self.max_duration, "timeout"))
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.events.add("ignored", self.conn, reason="binary frame")
                elif msg.type == WSMsgType.ERROR:
                    self.events.add("ignored", self.conn, reason=f"websocket error {self.ws.exception()}")
                    break
        finally:
            await self._cleanup()

    async def end(self, reason: str, *, code: int = 1000) -> None:
        """End the session from the server side: ``generation_ended {seconds, reason}``, then close."""
        if self._ending or self.ws.closed:
            return
        self._ending = True
        current = asyncio.current_task()
        if current in self._tasks:
            self._closer = current  # _cleanup() must let this task finish the close handshake
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.send(m.GenerationEnded(self.billed, reason))
        self._close_code = code
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
            await self.ws.close(code=code)

    async def drop(self) -> None:
        """Simulate a network loss: abort the TCP connection (no close frame); the peer goes with it.

        The receive loop ends at once and :meth:`_cleanup` closes the peer connection. It is never
        closed from here: this task is cancelled by that cleanup, and an ``RTCPeerConnection.close()``
        cancelled halfway never finishes (its later callers wait forever, its UDP sockets leak).
        """
        self._ending = True
        self._close_code = 1006
        self.events.add("fault", self.conn, fault="drop", detail="socket and peer connection aborted")
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def _cleanup(self) -> None:
        try:
            await self._release()
        finally:
            self.done.set()

    async def _release(self) -> None:
        closer = self._closer
        for task in list(self._tasks):
            if task is not closer:
                task.cancel()
        if closer is not None and not closer.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(closer), CLOSE_TIMEOUT)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pc is not None:
            # shielded: even if this handler is cancelled (server shutdown), the close runs to its end
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._pc.close()), PC_CLOSE_TIMEOUT)
        self.executor.shutdown(wait=False, cancel_futures=True)
        code = self._close_code if self._close_code is not None else self.ws.close_code
        self.events.add(
            "close",
            self.conn,
            code=code,
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            frames_skipped=self.frames_skipped,
            seconds=self.billed,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("conn %d: task failed: %r", self.conn, task.exception())

    # -- sending --------------------------------------------------------------------------------

    async def send(self, message: m.Message) -> None:
        """Send one message (preceded by a garbage frame under ``--garbage``) and record it."""
        text = m.encode(message)
        async with self._send_lock:
            if self.ws.closed:
                return
            try:
                if self._garbage is not None:
                    junk = next(self._garbage)
                    if isinstance(junk, bytes):
                        await self.ws.send_bytes(junk)
                    else:
                        await self.ws.send_str(junk)
                await self.ws.send_str(text)
            except ConnectionError:  # the peer vanished (or --drop-after aborted us): nothing to tell
                return
        fields = {k: v for k, v in vars(message).items() if k != "type"}
        self.events.add("sent", self.conn, type=message.type, **shorten(fields))

    def _ack(self, message: m.Message) -> None:
        if self.faults.no_ack:
            self.events.add("fault", self.conn, fault="no_ack", type=message.type)
            return
        due = asyncio.get_running_loop().time() + self.faults.ack_delay
        self._acks.put_nowait((due, message))

    async def _ack_sender(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, message = await self._acks.get()
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.send(message)

    # -- receiving ------------------------------------------------------------------------------

    async def _on_text(self, text: str) -> None:
        try:
            message = m.decode_client(text)
        except ProtocolError as exc:
            self.events.add("ignored", self.conn, reason=str(exc))
            return
        if isinstance(message, m.Prompt):
            self.events.add(
                "message",
                self.conn,
                type="prompt",
                data={"prompt": message.prompt, "enhance_prompt": message.enhance_prompt},
            )
            await self._on_prompt(message)
        elif isinstance(message, m.SetImage):
            data = {k: v for k, v in vars(message).items() if k != "type" and v is not m.OMIT}
            self.events.add("message", self.conn, type="set_image", data=shorten(data))
            await self._on_set_image(message)
        elif isinstance(message, m.Offer):
            self.events.add("message", self.conn, type="offer", data={"sdp": f"<{len(message.sdp)} chars>"})
            await self._on_offer(message.sdp)
        elif isinstance(message, m.IceCandidate):
            self.events.add("message", self.conn, type="ice-candidate", data={"candidate": message.candidate})
            await self._on_candidate(message.candidate)
        else:  # a client "answer": only meaningful if the server had sent an offer, which it never does
            self.events.add("ignored", self.conn, reason=f"unexpected {message.type!r} from a client")

    async def _on_prompt(self, message: m.Prompt) -> None:
        if not message.prompt.strip():
            self._ack(m.PromptAck(message.prompt, False, "prompt must not be empty"))
            return
        # A bare prompt keeps the reference image (open question 5: inference "it keeps it").
        self._set_state(RenderState(message.prompt, self.render_state.image))
        self._ack(m.PromptAck(message.prompt, True, None))

    async def _on_set_image(self, message: m.SetImage) -> None:
        image = None
        if message.image_data is not None:
            image = await asyncio.get_running_loop().run_in_executor(None, _decode_b64_image, message.image_data)
            if image is None:
                self._ack(m.SetImageAck(False, INVALID_IMAGE))
                return
        # set_image replaces the image; the prompt only when the field is present (§2.1 table).
        prompt = self.render_state.prompt if message.prompt is m.OMIT else message.prompt
        self._set_state(RenderState(prompt, image))
        self._ack(m.SetImageAck(True, None))

    def _set_state(self, state: RenderState) -> None:
        self.render_state = state
        self._states += 1
        self.events.add(
            "state",
            self.conn,
            initial=self._states == 1,
            prompt=state.prompt,
            image=None if state.image is None else f"{state.image.shape[1]}x{state.image.shape[0]}",
            passthrough=state.passthrough,
        )

    async def _on_offer(self, sdp: str) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        if self._pc is not None:
            self.events.add("ignored", self.conn, reason="second offer (renegotiation is not supported)")
            return
        # No ICE servers: the emulator lives on loopback and must never reach the internet.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.events.add("track", self.conn, kind=track.kind)
            if track.kind == "video":
                pc.addTrack(output_track(track, self))
            else:  # v2v models return no audio (open question 4): drain it so aiortc's queue stays empty
                self._spawn(drain(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            self.events.add("peer", self.conn, state=pc.connectionState)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "video" and transceiver.sender.track is None:
                    # receive-only offer (viewer / SDK without a local track): send a processed pattern
                    self.events.add("track", self.conn, kind="video", source="synthetic (receive-only offer)")
                    pattern = pattern_track(self.model.width, self.model.height)
                    pc.addTrack(output_track(pattern, self))
            for candidate in self._pending_candidates:
                await pc.addIceCandidate(candidate)
            self._pending_candidates.clear()
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:  # aiortc raises ValueError/KeyError/... on a bad SDP
            self.events.add("error", self.conn, reason=f"bad offer: {exc!r}")
            await self.send(m.Error(f"Invalid offer: {exc}"))
            await self.end("error", code=1011)
            return
        await self.send(m.Answer(pc.localDescription.sdp))
        delay = self.claim_drop()
        if delay is not None:
            self.events.add("fault", self.conn, fault="drop_scheduled", after=delay)
            self._spawn(self._drop_later(delay))

    async def _on_candidate(self, candidate: dict[str, Any] | None) -> None:
        from aiortc.sdp import candidate_from_sdp

        line = candidate.get("candidate") if candidate else None
        if not isinstance(line, str) or not line.strip():
            return  # null or empty candidate = end of candidates (browsers)
        try:
            parsed = candidate_from_sdp(line.removeprefix("candidate:"))
        except (ValueError, IndexError, AssertionError) as exc:  # aiortc asserts on short lines
            self.events.add("ignored", self.conn, reason=f"bad ice candidate: {exc!r}")
            return
        parsed.sdpMid = candidate.get("sdpMid") if candidate else None
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex") if candidate else None
        if self._pc is None or self._pc.remoteDescription is None:
            self._pending_candidates.append(parsed)
            return
        try:
            await self._pc.addIceCandidate(parsed)
        except Exception as exc:  # a candidate for an unknown m-line must not end the session
            self.events.add("ignored", self.conn, reason=f"ice candidate rejected: {exc!r}")

    # -- frames (called from the output track, on the loop) -------------------------------------

    def note_input(self, frame: av.VideoFrame) -> None:
        """Count an input frame and keep it for :meth:`Emulator.input_frames`."""
        self.frames_in += 1
        self.inputs.append(frame)

    def note_output(self, frame: av.VideoFrame) -> None:
        """Count an output frame and hand it to any viewers; the first one starts generation and the ticks."""
        self.frames_out += 1
        for queue in self.viewers:  # newest frames win: a slow viewer never slows the session
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frame)
        if not self._started and not self._ending:
            self._started = True
            self.events.add("generation_started", self.conn, width=self.model.width, height=self.model.height)
            self._spawn(self._ticks())

    def note_skipped(self, count: int) -> None:
        """Record input frames skipped because the model fell behind (latency stays bounded)."""
        self.frames_skipped += count
        self.events.add("backlog", self.conn, skipped=count)

    # -- timers ---------------------------------------------------------------------------------

    async def _ticks(self) -> None:
        await self.send(m.GenerationStarted())
        while True:
            await asyncio.sleep(self.tick_interval)
            self.billed += 1
            await self.send(m.GenerationTick(self.billed))

    async def _error_later(self, delay: float, message: str) -> None:
        await asyncio.sleep(delay)
        self.events.add("fault", self.conn, fault="error_after", message=message)
        await self.send(m.Error(message))
        await self.end("error", code=1011)

    async def _end_later(self, delay: float, reason: str) -> None:
        await asyncio.sleep(delay)
        self.events.add("limit", self.conn, reason=reason, after=delay)
        await self.end(reason)

    async def _drop_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.drop()


def _decode_b64_image(data: str) -> Any:
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    return decode_image(raw)
