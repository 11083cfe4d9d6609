"""One accepted ``/v1/stream`` WebSocket of either era: state, acks, ticks, faults, shutdown.

Behaviour (decart-protocol.md §2, §11.2; decart-protocol-2026-11.md §3), in the order a client sees it:

1. ``session_id`` right away (``server_ip`` ``127.0.0.1``, ``server_port`` the emulator's port); the
   LiveKit-era SDKs log and ignore it, and its id is the one ``livekit_room_info`` repeats.
2. Every ``prompt`` → one ``prompt_ack`` echoing the exact text; every ``set_image`` → exactly one
   ``set_image_ack``; in arrival order, before or after the offer or join. Acks go through one queue
   so ``--ack-delay`` never reorders them. An undecodable image → ``success: false, error: "invalid_image"``.
3. The first ``offer`` or ``livekit_join`` picks the era for the connection (the other one is then
   ignored): ``offer`` → :class:`~decart_cli.emulator.direct.DirectMedia` (aiortc answerer on this
   socket); ``livekit_join`` → :class:`~decart_cli.emulator.livekit_era.LiveKitMedia` (queue,
   ``livekit_room_info``, a room of the stand-in).
4. First output frame → ``generation_started``; then ``generation_tick`` every ``tick_interval``
   seconds, each reporting one more billed second (``tick_interval`` compresses time in tests).
5. Server-side end (shutdown, token ``maxSessionDuration``, ``--error-after``) →
   ``generation_ended {seconds, reason}`` then a close frame (and the LiveKit room is closed).
   ``--drop-after`` instead aborts the TCP connection and the media without any goodbye, like a
   network loss.

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
from decart_cli.emulator.direct import DirectMedia
from decart_cli.emulator.events import EventLog, shorten
from decart_cli.emulator.faults import Faults, garbage_frames
from decart_cli.emulator.livekit_era import LiveKitMedia, LiveKitSettings
from decart_cli.emulator.model import FrameModel, RenderState, decode_image
from decart_cli.errors import ProtocolError

if TYPE_CHECKING:
    import av

    from decart_cli.emulator.livekit.room import RoomHub

__all__ = ["Session"]

logger = logging.getLogger("decart_cli.emulator")

INVALID_IMAGE: Final = "invalid_image"
CLOSE_TIMEOUT: Final = 3.0  # seconds to wait for the client's close frame after ours
MEDIA_CLOSE_TIMEOUT: Final = 8.0  # seconds for the peers (and a LiveKit room) to close


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
        hub: RoomHub,
        livekit: LiveKitSettings,
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
        self.hub = hub
        self.livekit = livekit
        self.session_id = secrets.token_hex(8)
        self.render_state = RenderState()
        self.source_size: tuple[int, int] | None = None  # what the client publishes at (LiveKit era)
        self.media: DirectMedia | LiveKitMedia | None = None
        self.executor: Executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"emu-model-{conn}")
        self.frames_in = 0
        self.frames_out = 0
        self.frames_skipped = 0
        self.billed = 0
        self._send_lock = asyncio.Lock()
        self._acks: asyncio.Queue[tuple[float, m.Message]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._garbage = garbage_frames() if faults.garbage else None
        self._started = False
        self._states = 0  # state changes so far (the first is the initial state)
        self._ending = False
        self._close_code: int | None = None
        self._dropped = False
        self._input_size: tuple[int, int] | None = None
        self._closer: asyncio.Task[Any] | None = None
        self.done = asyncio.Event()  # set when the session has fully cleaned up (peer closed)
        self.viewers: set[asyncio.Queue[av.VideoFrame | None]] = set()  # /subscribe/{session_id} viewers

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the client or the emulator closes it; always cleans up."""
        try:
            await self.send(m.SessionId(self.session_id, "127.0.0.1", self.server_port))
            self.spawn(self._ack_sender())
            if self.faults.error_after is not None:
                self.spawn(self._error_later(*self.faults.error_after))
            if self.max_duration is not None:
                self.spawn(self._end_later(self.max_duration, "timeout"))
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
        self._dropped = True
        self._close_code = 1006
        self.events.add("fault", self.conn, fault="drop", detail="socket and media aborted")
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
        if self.media is not None:
            # shielded: even if this handler is cancelled (server shutdown), the close runs to its end
            close = (
                self.media.aclose(dropped=self._dropped)
                if isinstance(self.media, LiveKitMedia)
                else self.media.aclose()
            )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(close), MEDIA_CLOSE_TIMEOUT)
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

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task of this session (cancelled when the session ends)."""
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
        # the LiveKit access token of livekit_room_info is a secret: never in an event or a log line
        fields = {k: ("***" if k == "token" else v) for k, v in vars(message).items() if k != "type"}
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
        elif isinstance(message, m.LivekitJoin):
            self.events.add("message", self.conn, type="livekit_join", data=_join_fields(message))
            await self._on_join(message)
        elif isinstance(message, m.Offer):
            self.events.add("message", self.conn, type="offer", data={"sdp": f"<{len(message.sdp)} chars>"})
            if (direct := self._direct()) is not None:
                await direct.offer(message.sdp)
        elif isinstance(message, m.IceCandidate):
            self.events.add("message", self.conn, type="ice-candidate", data={"candidate": message.candidate})
            if (direct := self._direct()) is not None:
                await direct.candidate(message.candidate)
        else:  # a client "answer": only meaningful if the server had sent an offer, which it never does
            self.events.add("ignored", self.conn, reason=f"unexpected {message.type!r} from a client")

    async def _on_prompt(self, message: m.Prompt) -> None:
        error = self._apply_prompt(message)
        self._ack(m.PromptAck(message.prompt, error is None, error))

    async def _on_set_image(self, message: m.SetImage) -> None:
        error = await self._apply_set_image(message)
        self._ack(m.SetImageAck(error is None, error))

    def _apply_prompt(self, message: m.Prompt) -> str | None:
        if not message.prompt.strip():
            return "prompt must not be empty"
        # A bare prompt keeps the reference image (open question 5: inference "it keeps it").
        self._set_state(RenderState(message.prompt, self.render_state.image))
        return None

    async def _apply_set_image(self, message: m.SetImage) -> str | None:
        image = None
        if message.image_data is not None:
            image = await asyncio.get_running_loop().run_in_executor(None, _decode_b64_image, message.image_data)
            if image is None:
                return INVALID_IMAGE
        # set_image replaces the image; the prompt only when the field is present (§2.1 table).
        prompt = self.render_state.prompt if message.prompt is m.OMIT else message.prompt
        self._set_state(RenderState(prompt, image))
        return None

    async def _on_join(self, message: m.LivekitJoin) -> None:
        if self.media is not None:
            era = "a second livekit_join" if isinstance(self.media, LiveKitMedia) else "livekit_join after an offer"
            self.events.add("ignored", self.conn, reason=f"{era} (one era and one join per connection)")
            return
        media = LiveKitMedia(self, self.hub, self.livekit, session_id=self.session_id)
        self.media = media
        # The join's initial state applies at once and is not acked (see livekit_era.py).
        initial = message.initial_state
        if isinstance(initial, m.Prompt):
            error = self._apply_prompt(initial)
        elif isinstance(initial, m.SetImage):
            error = await self._apply_set_image(initial)
        else:
            error = None
            if message.passthrough is True:
                self._set_state(RenderState())
        if error is not None:
            self.events.add("ignored", self.conn, reason=f"livekit_join initial_state: {error}")
        await media.join(message)

    def _direct(self) -> DirectMedia | None:
        """The direct era's media, started by this offer or candidate; ``None`` in the LiveKit era."""
        if self.media is None:
            self.media = DirectMedia(self)
        if isinstance(self.media, DirectMedia):
            return self.media
        self.events.add("ignored", self.conn, reason="offer / ice-candidate in the LiveKit era")
        return None

    def schedule_drop(self) -> None:
        """Arm ``--drop-after`` if this session is one of those to drop (called once media is set up)."""
        delay = self.claim_drop()
        if delay is not None:
            self.events.add("fault", self.conn, fault="drop_scheduled", after=delay)
            self.spawn(self._drop_later(delay))

    def _set_state(self, state: RenderState) -> None:
        old, self.render_state = self.render_state, state
        if isinstance(self.media, LiveKitMedia):
            self.media.on_state(old, state)
        self._states += 1
        self.events.add(
            "state",
            self.conn,
            initial=self._states == 1,
            prompt=state.prompt,
            image=None if state.image is None else f"{state.image.shape[1]}x{state.image.shape[0]}",
            passthrough=state.passthrough,
        )

    # -- frames (called from the output track, on the loop) -------------------------------------

    def note_input(self, frame: av.VideoFrame) -> None:
        """Count an input frame and keep it for :meth:`Emulator.input_frames`."""
        self.frames_in += 1
        self.inputs.append(frame)
        size = (frame.width, frame.height)
        if size != self._input_size:  # the first frame, and every change (simulcast layers, a new camera)
            self._input_size = size
            self.events.add("input", self.conn, width=frame.width, height=frame.height, published=self.source_size)

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
            self.spawn(self._ticks())

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


def _join_fields(message: m.LivekitJoin) -> dict[str, Any]:
    """The join's fields for the event log (an initial image shortened to its length)."""
    fields: dict[str, Any] = {}
    if message.passthrough is not m.OMIT:
        fields["passthrough"] = message.passthrough
    if message.initial_state is not m.OMIT:
        state = message.initial_state
        fields["initial_state"] = (
            None if state is None else shorten({k: v for k, v in vars(state).items() if v is not m.OMIT})
        )
    if message.client_capabilities is not m.OMIT:
        fields["client_capabilities"] = message.client_capabilities
    return fields


def _decode_b64_image(data: str) -> Any:
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    return decode_image(raw)
