"""RealtimeSession: the one asyncio driver around :class:`~decart_cli.core.session.SessionCore`.

A thin pump (websockets' ``asyncio/connection.py`` is the model): frames from the control socket go
into the core; the core's outbox goes to the socket, its actions to the media transport or to the
waiting calls, its events to ``on_event``. How media is connected is the business of a
:class:`~decart_cli.realtime.transport.MediaTransport` (direct aiortc or LiveKit), created afresh
for every attempt; this module imports no media library. Every wait has a deadline from
:class:`~decart_cli.config.Timeouts`; a server ``error`` fails the pending wait at once.

Callbacks are registered in the constructor, so events are delivered synchronously as they
happen, including those emitted while :meth:`RealtimeSession.connect` runs.

Reliability ("Staying alive"): an unexpected drop — socket closed, media failed or closed, or no
remote frame for ``Timeouts.media_stall`` seconds while connected — starts ONE reconnect loop
however many signals report it. Delays come from :func:`~decart_cli.core.backoff.backoff` (1, 2, 4,
8, 10 s, ±10 %), at most ``max_retries`` attempts; permanent errors stop it, and a capacity refusal
gets the same backoff however it arrives (``error`` text, close 1013, HTTP 503 at the upgrade), on
the first connect too. Each new connection starts from the LATEST desired state, prompt and image
(both official SDKs replay the first connect's state or passthrough instead). A ``generation_ended``
with a final reason (``timeout``: the token's session limit) ends the session without a reconnect,
which would defeat the limit. :meth:`RealtimeSession.disconnect` stops a reconnect at once, in
whatever step it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from decart_cli.config import Secret, Timeouts, register_secret
from decart_cli.core import catalog
from decart_cli.core import events as ev
from decart_cli.core.backoff import backoff
from decart_cli.core.server_errors import KEY_HINT, TOKEN_HINT
from decart_cli.core.session import (
    AddCandidate,
    ApplyAnswer,
    ConnectionState,
    DesiredState,
    Ended,
    JoinRoom,
    Resolved,
    SessionCore,
    TransportKind,
    is_capacity,
    is_permanent,
)
from decart_cli.core.stats import StatsCounter, StatsSnapshot
from decart_cli.errors import AckTimeout, AuthError, ConnectionFailed, DecartError, InvalidState, ServerError
from decart_cli.realtime.transport import MediaTransport, TransportOptions, VideoInput, create
from decart_cli.transport.rtc import DEFAULT_ICE_SERVERS
from decart_cli.transport.signaling import ChannelClosed, SignalingChannel, build_url, is_loopback

if TYPE_CHECKING:
    from decart_cli.core import messages as msg

__all__ = ["DEFAULT_CODECS", "RealtimeSession", "SessionConfig", "is_client_token"]

logger = logging.getLogger(__name__)

_LIVE = (ConnectionState.CONNECTED, ConnectionState.GENERATING)
FIRST_FRAME_ALLOWANCE = 3  # × media_stall before the first remote frame of an attempt
# H264 on LiveKit as every LiveKit-era SDK; VP8 on the direct path as the direct-era SDKs.
DEFAULT_CODECS: dict[str, str] = {"livekit": "h264", "webrtc": "vp8"}
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def is_client_token(credential: Secret) -> bool:
    """True for a client token: ``ek_…`` or a signed JWT (three base64url parts), not an API key."""
    value = credential.reveal()
    return value.startswith("ek_") or bool(_JWT.match(value))


@dataclass(frozen=True)
class SessionConfig:
    """Everything a session needs.

    Attributes:
        realtime_url: the realtime base (``wss://api.decart.ai``; the path is added).
        credential: API key or client token (goes into ``api_key=``).
        model: the resolved model.
        initial: the initial desired state.
        transport: ``"livekit"`` (today's media path) or ``"webrtc"`` (direct offer/answer).
        codec: ``None`` for the transport's default (:data:`DEFAULT_CODECS`).
        speed: ``"fast"`` for the higher-compute tier (``speed=fast``), else ``None``.
        client_token: whether the credential is a client token; ``None`` guesses from its shape.
        ice_servers: direct transport only; ``None`` means none on loopback (nothing to discover,
            and no packet may leave the machine), else Google STUN as the SDKs.
    """

    realtime_url: str
    credential: Secret
    model: catalog.Resolved
    initial: DesiredState = DesiredState()
    transport: TransportKind = "livekit"
    codec: str | None = None
    speed: str | None = None
    reconnect: bool = True
    max_retries: int = 5
    timeouts: Timeouts = field(default_factory=Timeouts)
    resolution: str | None = None
    client_token: bool | None = None
    ice_servers: tuple[str, ...] | None = None


@dataclass(eq=False)
class _Link:
    """One connection attempt: socket, media transport, their tasks and waits."""

    channel: SignalingChannel | None = None
    transport: MediaTransport | None = None
    established: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Future[DecartError] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    room: asyncio.Future[msg.LivekitRoomInfo] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    queue_changed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stats: StatsCounter = field(default_factory=lambda: StatsCounter(time.monotonic()))
    last_frame: float = field(default_factory=time.monotonic)
    frames: int = 0  # remote frames received on this link
    initial: int = 0  # ticket of the initial state's ack
    deadline: asyncio.Timeout | None = None  # the attempt's connect deadline (paused while queued)
    closing: bool = False

    def fail(self, exc: DecartError) -> None:
        if not self.failed.done():
            self.failed.set_result(exc)


def _permanent(exc: BaseException) -> bool:
    return isinstance(exc, AuthError) or bool(getattr(exc, "permanent", False)) or is_permanent(str(exc))


def _capacity(exc: BaseException) -> bool:
    if getattr(exc, "capacity", False):
        return True
    return is_capacity(str(exc), getattr(exc, "code", None), getattr(exc, "status", None))


class _Control:
    """The driver as one attempt's transport sees it (:class:`~decart_cli.realtime.transport.Control`)."""

    def __init__(self, session: RealtimeSession, link: _Link) -> None:
        self._session = session
        self._link = link

    @property
    def model(self) -> catalog.Resolved:
        return self._session._model

    async def initial_ack(self) -> None:
        await self._session._initial_ack(self._link)

    async def send_offer(self, sdp: str) -> None:
        self._session._core.send_offer(sdp)
        await self._session._flush(self._link)

    async def room_info(self) -> msg.LivekitRoomInfo:
        return await self._session._room_info(self._link)

    def media_connected(self) -> None:
        self._session._media_connected(self._link)

    def media_lost(self, reason: str) -> None:
        self._session._lost(self._link, ConnectionFailed(reason))

    def frame_sent(self) -> None:
        self._link.stats.frame_sent(time.monotonic())

    def frame_received(self, frame: Any) -> None:
        self._session._frame(self._link, frame)


class RealtimeSession:
    """One realtime session with a Decart model (or the emulator), reconnecting on drops.

    Args:
        config: where and how to connect.
        video: the outgoing video (:class:`~decart_cli.realtime.transport.VideoInput`); never
            stopped by the session.
        on_event: receives every :data:`~decart_cli.core.events.Event`, synchronously, on the loop.
        on_frame: receives every decoded remote frame (``av.VideoFrame``). Both callbacks must not block.
        sleep: the backoff sleep (tests inject a fast one).
        rng: jitter source for the backoff.
    """

    def __init__(
        self,
        config: SessionConfig,
        video: VideoInput,
        on_event: Callable[[ev.Event], None] | None = None,
        on_frame: Callable[[Any], None] | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._model = config.model
        self._video = video
        self._on_event = on_event
        self._on_frame = on_frame
        self._sleep = sleep
        self._rng = rng
        client_token = is_client_token(config.credential) if config.client_token is None else config.client_token
        self._core = SessionCore(
            config.initial, transport=config.transport, client_token=client_token, model=config.model.wire_name
        )
        loopback = is_loopback(config.realtime_url)
        ice = config.ice_servers
        if ice is None:
            ice = () if loopback else DEFAULT_ICE_SERVERS
        self._options = TransportOptions(
            codec=config.codec or DEFAULT_CODECS[config.transport], ice_servers=ice, loopback=loopback
        )
        self._link: _Link | None = None
        self._waiters: dict[int, asyncio.Future[Resolved]] = {}
        self._send_lock = asyncio.Lock()
        self._set_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._stopping = asyncio.Event()  # set by disconnect(): interrupts backoff sleeps at once
        self._final_error: DecartError | None = None
        self._closing = False
        self._started = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._connect_started = 0.0
        self._reconnecting = False
        self._last_stats: StatsCounter | None = None
        self.first_frame_after: float | None = None  # seconds from connect() to the first remote frame
        self.connected_after: float | None = None  # seconds from connect() to media connected

    # --- public API ------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._core.state

    @property
    def transport(self) -> TransportKind:
        """Which media transport the session uses (``"livekit"`` or ``"webrtc"``)."""
        return self._config.transport

    @property
    def codec(self) -> str:
        """The video codec in use."""
        return self._options.codec

    @property
    def desired(self) -> DesiredState:
        """The latest state the user asked for (re-sent as the initial state of every reconnect)."""
        return self._core.desired

    @property
    def session_id(self) -> str | None:
        """The server's session id of the current connection, once received."""
        return self._core.session_id

    @property
    def total_seconds(self) -> float:
        """Billed seconds across every server session (reconnects included)."""
        return self._core.total_seconds

    def stats(self) -> StatsSnapshot:
        """Media figures of the current connection (zeros before the first connect)."""
        now = time.monotonic()
        counter = self._link.stats if self._link is not None else self._last_stats
        return counter.snapshot(now) if counter is not None else StatsCounter(now).snapshot(now)

    async def connect(self) -> None:
        """Connect: control socket, initial state, media, until the media is connected.

        Only capacity refusals are retried here (with the reconnect backoff); other failures are
        reported at once so a typo in a URL or key does not cost 25 s.

        Raises:
            AuthError: the credential was rejected.
            ServerError: the server sent an ``error`` (explained) or rejected the initial state.
            AckTimeout: the initial state was not acknowledged in time.
            ConnectionFailed: the socket or the media failed, or a deadline passed.
            InvalidState: called twice.
        """
        if self._started:
            raise InvalidState(f"connect() already called (state {self.state.value})", hint="create a new session")
        self._started = True
        self._connect_started = time.monotonic()
        delays = backoff(self._config.max_retries if self._config.reconnect else 0, rng=self._rng)
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._attempt()
                return
            except DecartError as exc:
                self._core.attempt_failed(str(exc))
                await self._teardown()
                delay = next(delays, None) if _capacity(exc) else None
                if delay is None or self._closing:
                    self._finish(exc, source=_source(exc))
                    raise
                self._note(ev.Reconnecting(attempt, self._config.max_retries, delay, str(exc)))
                if not await self._pause(delay):
                    self._finish(exc, source=_source(exc))
                    raise

    async def set(self, *, prompt: str | None = None, image: bytes | None = None, enhance: bool = True) -> None:
        """Replace the whole state with ONE ``set_image`` and wait for its ack (``Timeouts.set_ack``).

        ``image=None`` sends ``image_data: null``, which clears the reference image (as the SDKs);
        ``prompt=None`` keeps the server's current prompt. Calls are serialised (one in flight).
        While reconnecting the state is stored and this returns at once: the reconnect applies it.

        Raises:
            UsageError: nothing to set, or an empty prompt/image.
            InvalidState: not connected.
            ServerError: rejected (``success: false``) or a server ``error`` arrived meanwhile.
            AckTimeout: no ``set_image_ack`` in time.
            ConnectionFailed: the socket is closed.
        """
        async with self._set_lock:
            ticket = self._core.set(prompt=prompt, image=image, enhance=enhance)
            await self._request(ticket, self._config.timeouts.set_ack, "set_image_ack")

    async def set_prompt(self, text: str, enhance: bool = True) -> None:
        """Send a bare ``prompt`` (keeps the reference image) and wait for its ``prompt_ack``.

        While reconnecting the prompt is stored and this returns at once. Raises as :meth:`set`.
        """
        ticket = self._core.set_prompt(text, enhance)
        await self._request(ticket, self._config.timeouts.prompt_ack, f"prompt_ack for {text!r}")

    async def reconnect(self, *, model: catalog.Resolved | None = None, video: VideoInput | None = None) -> None:
        """User-initiated reconnect (switch model or camera), keeping the desired state.

        Raises:
            DecartError: the final error if every attempt failed (the session is then closed).
            InvalidState: after :meth:`disconnect`.
        """
        if self._closing or not self._started:
            raise InvalidState(f"cannot reconnect: session is {self.state.value}", hint="call connect() first")
        self._model = model or self._model
        self._core.model = self._model.wire_name
        self._video = video or self._video
        await self._cancel_reconnect()
        if not self._core.start_reconnecting("reconnect requested"):
            self._core.begin_attempt()  # from disconnected after a give-up: start afresh
        self._dispatch()
        self._final_error = None
        self._closed.clear()
        await self._reconnect_loop("reconnect requested", immediate=True)
        if self._final_error is not None:
            raise self._final_error

    async def disconnect(self) -> None:
        """Close everything (media, socket, tasks) within ``Timeouts.disconnect``; idempotent.

        Stops a reconnect in whatever step it is (a backoff sleep included) at once.
        """
        if self._closing:
            return
        self._closing = True
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.timeouts.disconnect):
                await self._cancel_reconnect()
                await self._teardown()
        self._finish(None)

    async def wait_closed(self) -> None:
        """Return once the session is over; raise its final error if it ended by failure."""
        await self._closed.wait()
        if self._final_error is not None:
            raise self._final_error

    # --- connection attempt ----------------------------------------------------------------------

    async def _attempt(self) -> None:
        """One connection, from socket open to media connected. Raises a DecartError on failure."""
        cfg, timeouts = self._config, self._config.timeouts
        link = self._link = _Link()
        self._core.begin_attempt()
        self._dispatch()
        url = build_url(
            cfg.realtime_url, cfg.credential, self._model.wire_name, resolution=cfg.resolution, speed=cfg.speed
        )
        try:
            async with asyncio.timeout(timeouts.connect) as deadline:
                link.deadline = deadline
                await self._handshake(link, url)
        except TimeoutError as exc:
            raise ConnectionFailed(
                f"could not connect within {timeouts.connect:g} s (media not established over {cfg.transport})",
                hint="check UDP connectivity with 'decart netcheck'",
            ) from exc
        except ChannelClosed as exc:
            real = await self._real_error(link, exc)
            if real is exc:
                raise
            raise real from exc
        link.last_frame = time.monotonic()
        control = _Control(self, link)
        assert link.transport is not None
        self._spawn(link, self._run_media(link, link.transport, control))
        self._spawn(link, self._monitor(link))

    async def _handshake(self, link: _Link, url: str) -> None:
        """Socket, opening messages, then the transport until its media is connected."""
        timeouts = self._config.timeouts
        token = self._core.client_token
        link.channel = await SignalingChannel.open(
            url,
            deadline=timeouts.ws_open,
            credential="client token" if token else "API key",
            auth_hint=TOKEN_HINT if token else KEY_HINT,
        )
        self._spawn(link, self._read(link))
        link.initial = self._core.send_initial()
        self._expect(link.initial)  # the ack may arrive before anybody waits for it
        await self._flush(link)
        link.transport = create(self._config.transport, self._video, self._options)
        await self._race(link, link.transport.connect(_Control(self, link)))

    async def _initial_ack(self, link: _Link) -> None:
        """Wait for the initial state's ack (the transport decides when it needs it)."""
        timeouts = self._config.timeouts
        desired = self._core.desired
        if desired.image is None and desired.prompt is not None:
            deadline, what = timeouts.initial_prompt_ack, "initial prompt acknowledgement"
        else:
            deadline, what = timeouts.initial_image_ack, "initial state acknowledgement"
        result = await self._race(link, self._wait(None, link.initial, deadline, what))
        if not result.success:
            raise self._rejected(result, "the server rejected the initial state")

    async def _room_info(self, link: _Link) -> msg.LivekitRoomInfo:
        """Wait for ``livekit_room_info``: ``Timeouts.room_info`` at first, paused while queued.

        The Python SDK fails after a fixed 15 s even while the server reports a queue position
        (decart-protocol-2026-11.md §3.2), so a queued client gives up just before its turn. Here
        the first ``queue_position`` or ``status`` pauses that deadline and the attempt's connect
        deadline; the wait is then bounded only by ``Timeouts.queue_wait`` in total (the position
        is shown meanwhile, a closed socket or a server error still ends it at once, and the user
        can stop at any time). Room info re-arms the connect deadline for the media part.
        """
        timeouts = self._config.timeouts
        loop = asyncio.get_running_loop()
        queued_since: float | None = None
        while not link.room.done():
            if queued_since is None:
                limit = timeouts.room_info
            else:
                limit = timeouts.queue_wait - (time.monotonic() - queued_since)
            link.queue_changed.clear()
            changed = asyncio.ensure_future(link.queue_changed.wait())
            waits: set[asyncio.Future[Any]] = {link.room, link.failed, changed}
            try:
                done, _ = await asyncio.wait(waits, timeout=max(0.0, limit), return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
            if link.failed.done():
                raise link.failed.result()
            if link.room.done():
                break
            if changed in done:
                if queued_since is None:
                    queued_since = time.monotonic()
                    if link.deadline is not None:
                        link.deadline.reschedule(None)
                continue
            if queued_since is None:
                raise ConnectionFailed(
                    f"no livekit_room_info within {timeouts.room_info:g} s of livekit_join",
                    hint="the service may be overloaded; try again",
                )
            where = f" (position {self._core.queue[0]} of {self._core.queue[1]})" if self._core.queue else ""
            raise ConnectionFailed(
                f"still waiting for capacity after {timeouts.queue_wait:g} s{where}", hint="try again later"
            )
        if link.deadline is not None:
            link.deadline.reschedule(loop.time() + timeouts.connect)
        return link.room.result()

    def _media_connected(self, link: _Link) -> None:
        if link is not self._link or link.closing:
            return
        if self.connected_after is None:
            self.connected_after = time.monotonic() - self._connect_started
        self._core.peer_connected()
        self._dispatch(link)
        self._spawn_flush(link)

    async def _real_error(self, link: _Link, exc: DecartError) -> DecartError:
        """The socket closed under a send: let the reader process what arrived before the close,
        so the server's own error ("Invalid API key") is reported, not "socket closed" (J.13)."""
        reader = link.tasks[0] if link.tasks else None
        if reader is not None:
            waits: list[asyncio.Future[Any]] = [reader, link.failed]
            await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        if self._core.server_error is not None:
            return self._server_exc(self._core.server_error)
        return link.failed.result() if link.failed.done() else exc

    async def _race(self, link: _Link, aw: Coroutine[Any, Any, Any]) -> Any:
        """Await ``aw`` unless the link fails first (server error, socket closed)."""
        task = asyncio.ensure_future(aw)
        try:
            done, _ = await asyncio.wait({task, link.failed}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            raise link.failed.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _expect(self, ticket: int) -> asyncio.Future[Resolved]:
        return self._waiters.setdefault(ticket, asyncio.get_running_loop().create_future())

    async def _wait(self, link: _Link | None, ticket: int, deadline: float, what: str) -> Resolved:
        future = self._expect(ticket)
        try:
            if link is not None:
                await self._flush(link)
            async with asyncio.timeout(deadline):
                return await asyncio.shield(future)
        except TimeoutError as exc:
            raise AckTimeout(
                f"{what} did not arrive within {deadline:g} s", hint="the server may be overloaded; try again"
            ) from exc
        finally:
            self._waiters.pop(ticket, None)

    async def _request(self, ticket: int | None, deadline: float, what: str) -> None:
        if ticket is None:  # reconnecting: stored in the desired state, applied by the reconnect
            self._dispatch()
            return
        result = await self._wait(self._link, ticket, deadline, what)
        if not result.success and not result.deferred:
            raise self._rejected(result, "the server rejected the update")

    def _rejected(self, result: Resolved, context: str) -> DecartError:
        text = result.error or "unknown error"
        if result.server:
            return self._server_exc(text)
        if result.ack:
            said = self._core.explain(text)
            exc = ServerError(f"{context}: {said.message}", hint=said.hint)
            exc.permanent = True  # type: ignore[attr-defined]  # bad input: retrying cannot help (J.7)
            return exc
        link = self._link
        if link is not None and link.failed.done():
            return link.failed.result()
        return ConnectionFailed(text)

    def _server_exc(self, text: str) -> DecartError:
        """A server text as an exception, explained (the same words as its ``ErrorEvent``)."""
        said = self._core.explain(text)
        message, hint = said.message, said.hint
        if said.auth and self._reconnecting and self._core.client_token and "expired" not in message:
            message = f"{message} on reconnect: it has probably expired"
        exc: DecartError = AuthError(message, hint=hint) if said.auth else ServerError(message, hint=hint)
        exc.permanent = said.permanent  # type: ignore[attr-defined]
        exc.capacity = said.capacity  # type: ignore[attr-defined]
        return exc

    # --- pumps -----------------------------------------------------------------------------------

    async def _read(self, link: _Link) -> None:
        """Feed every frame into the core; hand media actions to the transport; report the socket's end."""
        assert link.channel is not None
        try:
            while True:
                data = await link.channel.recv()
                self._core.receive_message(data)
                actions = self._dispatch(link)
                if self._core.server_error is not None and not link.established.is_set():
                    link.fail(self._server_exc(self._core.server_error))
                for action in actions:
                    if link.transport is not None:
                        await link.transport.apply(action)
                await self._flush(link)
        except DecartError as exc:
            self._lost(link, exc)
        except Exception as exc:  # a bug here must still end the link visibly
            logger.exception("signaling reader failed")
            self._lost(link, ConnectionFailed(f"signaling reader failed: {type(exc).__name__}: {exc}"))

    def _frame(self, link: _Link, frame: Any) -> None:
        """A decoded remote frame: stats, the stall watchdog, ``on_frame``."""
        now = time.monotonic()
        link.last_frame = now
        link.frames += 1
        link.stats.frame_received(now)
        if self.first_frame_after is None:
            self.first_frame_after = now - self._connect_started
        if self._on_frame is not None:
            try:
                self._on_frame(frame)
            except Exception:  # a UI bug must not end the session
                logger.exception("on_frame callback failed")

    async def _run_media(self, link: _Link, transport: MediaTransport, control: _Control) -> None:
        """Run the transport's frame pumps; a failure in them is a loss of this link, never a silent death."""
        try:
            await transport.run(control)
        except DecartError as exc:
            self._lost(link, exc)
        except Exception as exc:
            logger.exception("media task failed")
            self._lost(link, ConnectionFailed(f"media failed: {type(exc).__name__}: {exc}"))

    async def _monitor(self, link: _Link) -> None:
        """Once a second: stats; and the media watchdog (no remote frame for ``media_stall`` s).

        Before the attempt's first remote frame the allowance is three times longer: on LiveKit
        the output track only appears once the server has subscribed to the input and started
        generating.
        """
        stall = self._config.timeouts.media_stall
        step = min(1.0, stall / 4)
        next_stats = time.monotonic() + 1.0
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            limit = stall if link.frames else FIRST_FRAME_ALLOWANCE * stall
            if self.state in _LIVE and now - link.last_frame > limit:
                self._lost(link, ConnectionFailed(f"no video from the server for {now - link.last_frame:.1f} s"))
                return
            if now >= next_stats and link.transport is not None:
                next_stats = now + 1.0
                with contextlib.suppress(Exception):
                    t = await link.transport.stats()
                    if t is not None:
                        link.stats.transport(
                            now, bytes_sent=t.bytes_sent, bytes_received=t.bytes_received, rtt_ms=t.rtt_ms, loss=t.loss
                        )
                self._note(ev.StatsUpdated(link.stats.snapshot(now)))

    # --- loss, reconnect, teardown ---------------------------------------------------------------

    def _lost(self, link: _Link, exc: DecartError) -> None:
        """A loss signal (socket end, media failed, stall). Only the first one per link counts."""
        if link is not self._link or link.closing or self._closing:
            return
        if self._core.server_error is not None:
            exc = self._server_exc(self._core.server_error)  # the real reason, not "socket closed" (J.13)
        if not link.established.is_set():
            link.fail(exc)  # the attempt in progress raises it
            self._core.attempt_failed(str(exc))
            self._dispatch()
            return
        link.closing = True
        if not self._config.reconnect or _permanent(exc):
            self._background_task(self._end(exc))
            return
        if self._core.start_reconnecting(str(exc)):
            self._dispatch()
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop(str(exc)))

    def _ended(self, link: _Link, ended: Ended) -> None:
        """``generation_ended`` with a final reason: end the session here, never reconnect."""
        if link is not self._link or link.closing or self._closing:
            return
        said = ended.explained
        error: DecartError | None = None
        if not ended.clean:
            error = ServerError(said.message, hint=said.hint)
            error.permanent = True  # type: ignore[attr-defined]
        if not link.established.is_set():
            link.fail(error or ConnectionFailed(said.message))
            return
        link.closing = True
        self._background_task(self._end(error))

    async def _end(self, exc: DecartError | None) -> None:
        await self._teardown()
        if exc is None:
            self._finish(None)
        else:
            self._finish(exc, source=_source(exc))

    async def _pause(self, delay: float) -> bool:
        """The backoff sleep; False (at once) when :meth:`disconnect` is called meanwhile."""
        if self._stopping.is_set():
            return False
        sleep = asyncio.ensure_future(self._sleep(delay))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sleep, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleep, stop):
                task.cancel()
        return not self._stopping.is_set()

    async def _reconnect_loop(self, reason: str, *, immediate: bool = False) -> None:
        """Reconnect with backoff; on failure the session ends with the last error."""
        await self._teardown()
        retries = self._config.max_retries if self._config.reconnect else 0
        delays = list(backoff(retries, rng=self._rng))
        if immediate:
            delays = [0.0, *delays][: max(1, retries)]
        last: DecartError = ConnectionFailed(reason)
        self._reconnecting = True
        try:
            for attempt, delay in enumerate(delays, start=1):
                self._note(ev.Reconnecting(attempt, len(delays), round(delay, 3), reason))
                if not await self._pause(delay) or self._closing:
                    return
                try:
                    await self._attempt()
                except DecartError as exc:
                    last = exc
                    reason = str(exc)
                    self._core.attempt_failed(reason)
                    await self._teardown()
                    if _permanent(exc):
                        break
                    continue
                self._note(ev.Reconnected(attempt))
                return
        finally:
            self._reconnecting = False
        if not self._closing:
            self._finish(last, source="reconnect", give_up=True)

    async def _cancel_reconnect(self) -> None:
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def _teardown(self) -> None:
        """Close the current link: tasks, media, socket (idempotent, never raises).

        Waiting for the link's tasks uses :func:`asyncio.wait`, which never swallows a
        cancellation of the caller: a reconnect cancelled in here stops at once instead of going
        on to its backoff sleep.
        """
        link, self._link = self._link, None
        if link is None:
            return
        link.closing = True
        link.fail(ConnectionFailed("the connection was closed"))
        current = asyncio.current_task()
        others = [task for task in link.tasks if task is not current]
        for task in others:
            task.cancel()
        try:
            if link.transport is not None:
                with contextlib.suppress(Exception):
                    await link.transport.aclose()
            if link.channel is not None:
                await link.channel.aclose()
            if others:
                await asyncio.wait(others, timeout=self._config.timeouts.disconnect)
        finally:
            for task in others:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: the tasks report their own failures
            self._last_stats = link.stats

    def _finish(self, exc: DecartError | None, *, source: str = "connection", give_up: bool = False) -> None:
        if self._closed.is_set():
            return
        if self._closing:  # the user disconnected: whatever failed meanwhile is not an error
            exc = None
        if exc is not None:
            self._final_error = exc
            message = str(exc)
            if give_up:
                message = f"gave up reconnecting: {message}"
            self._core.finish(message, permanent=_permanent(exc) or give_up, source=source, hint=exc.hint)
        else:
            self._core.finish(None)
        self._dispatch()
        self._closed.set()

    # --- plumbing --------------------------------------------------------------------------------

    def _dispatch(self, link: _Link | None = None) -> list[ApplyAnswer | AddCandidate]:
        """Route the core's actions and deliver its events; returns the transport's actions."""
        media: list[ApplyAnswer | AddCandidate] = []
        for action in self._core.actions():
            if isinstance(action, Resolved):
                future = self._waiters.get(action.ticket)
                if future is not None and not future.done():
                    future.set_result(action)
            elif isinstance(action, JoinRoom):
                register_secret(action.info.token)  # the LiveKit token never reaches a log line
                if link is not None and not link.room.done():
                    link.room.set_result(action.info)
            elif isinstance(action, Ended):
                if link is not None:
                    self._ended(link, action)
            else:
                media.append(action)
        if link is not None and self._core.state in _LIVE:
            link.established.set()
        for event in self._core.events_received():
            if link is not None and isinstance(event, ev.Queued | ev.ServiceStatus):
                link.queue_changed.set()
            if self._on_event is not None:
                try:
                    self._on_event(event)
                except Exception:  # a UI bug must not end the session
                    logger.exception("on_event callback failed")
        return media

    def _note(self, event: ev.Event) -> None:
        self._core.note(event)
        self._dispatch()

    async def _flush(self, link: _Link) -> None:
        """Send the core's outbox in order (one sender at a time).

        Raises:
            ChannelClosed: the socket is closed (at once, no waiting).
        """
        async with self._send_lock:
            for text in self._core.data_to_send():
                if link.channel is None or link is not self._link:
                    raise ChannelClosed("cannot send: the signaling connection is closed")
                await link.channel.send(text)

    def _spawn_flush(self, link: _Link) -> None:
        async def flush() -> None:
            with contextlib.suppress(DecartError):
                await self._flush(link)

        self._spawn(link, flush())

    def _spawn(self, link: _Link, coro: Coroutine[Any, Any, None]) -> None:
        link.tasks.append(asyncio.ensure_future(coro))

    def _background_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _source(exc: BaseException) -> str:
    if isinstance(exc, AckTimeout):
        return "timeout"
    if isinstance(exc, ServerError):
        return "server"
    return "connection"
