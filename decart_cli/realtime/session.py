"""RealtimeSession: the asyncio driver around :class:`~decart_cli.core.session.SessionCore`.

A thin pump (websockets' ``asyncio/connection.py`` is the model): frames from the signaling
socket go into the core; the core's outbox goes to the socket, its actions to the peer
connection, its events to ``on_event``. Every wait has a deadline from
:class:`~decart_cli.config.Timeouts`; a server ``error`` fails the pending wait at once.

Callbacks are registered in the constructor, so events are delivered synchronously as they
happen, including those emitted while :meth:`RealtimeSession.connect` runs: no buffering is
needed (the SDKs buffer because their handlers are attached after ``connect()``, J.11).

Reliability ("Staying alive"): an unexpected drop — socket closed, peer connection failed or
closed, or no remote frame for ``Timeouts.media_stall`` seconds while connected (aioice takes
~30 s to notice a dead path) — starts ONE reconnect loop however many signals report it. Delays
come from :func:`~decart_cli.core.backoff.backoff` (1, 2, 4, 8, 10 s, ±10 %), at most
``max_retries`` attempts; permanent errors stop it. Each new connection starts from the LATEST
desired state (both official SDKs replay the first connect's state or passthrough instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from decart_cli.config import Secret, Timeouts
from decart_cli.core import catalog
from decart_cli.core import events as ev
from decart_cli.core.backoff import backoff
from decart_cli.core.session import (
    AddCandidate,
    ApplyAnswer,
    ConnectionState,
    DesiredState,
    Resolved,
    SessionCore,
    is_capacity,
    is_permanent,
)
from decart_cli.core.stats import StatsCounter, StatsSnapshot
from decart_cli.errors import AckTimeout, AuthError, ConnectionFailed, DecartError, InvalidState, ServerError
from decart_cli.transport.rtc import DEFAULT_ICE_SERVERS, PeerConnection, next_frame
from decart_cli.transport.signaling import ChannelClosed, SignalingChannel, build_url, is_loopback

if TYPE_CHECKING:
    import av
    from aiortc import MediaStreamTrack

__all__ = ["RealtimeSession", "SessionConfig"]

logger = logging.getLogger(__name__)

_LIVE = (ConnectionState.CONNECTED, ConnectionState.GENERATING)
_AUTH_MARKERS = ("401", "invalid api key", "unauthorized", "permission denied", "invalid session")


@dataclass(frozen=True)
class SessionConfig:
    """Everything a session needs (contracts.md §1).

    ``ice_servers=None`` means: none when ``realtime_url`` is loopback (nothing to discover and no
    packet may leave the machine), else Google STUN as the SDKs.
    """

    realtime_url: str
    credential: Secret
    model: catalog.Resolved
    initial: DesiredState = DesiredState()
    codec: Literal["vp8", "h264"] = "vp8"
    reconnect: bool = True
    max_retries: int = 5
    timeouts: Timeouts = field(default_factory=Timeouts)
    resolution: str | None = None
    ice_servers: tuple[str, ...] | None = None


@dataclass(eq=False)
class _Link:
    """One connection attempt: socket, peer connection and their tasks."""

    channel: SignalingChannel | None = None
    pc: PeerConnection | None = None
    established: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Future[DecartError] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    rtc: list[ApplyAnswer | AddCandidate] = field(default_factory=list)
    stats: StatsCounter = field(default_factory=lambda: StatsCounter(time.monotonic()))
    last_frame: float = field(default_factory=time.monotonic)
    closing: bool = False

    def fail(self, exc: DecartError) -> None:
        if not self.failed.done():
            self.failed.set_result(exc)


def _permanent(exc: BaseException) -> bool:
    return isinstance(exc, AuthError) or bool(getattr(exc, "permanent", False)) or is_permanent(str(exc))


class RealtimeSession:
    """One realtime session with a Decart model (or the emulator), reconnecting on drops.

    Args:
        config: where and how to connect.
        track: the local video track (camera); never stopped by the session.
        on_event: receives every :data:`~decart_cli.core.events.Event`, synchronously, on the loop.
        on_frame: receives every decoded remote frame. Both callbacks must not block.
        sleep: the backoff sleep (tests inject a fast one).
        rng: jitter source for the backoff.
    """

    def __init__(
        self,
        config: SessionConfig,
        track: MediaStreamTrack,
        on_event: Callable[[ev.Event], None] | None = None,
        on_frame: Callable[[av.VideoFrame], None] | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._model = config.model
        self._track = track
        self._on_event = on_event
        self._on_frame = on_frame
        self._sleep = sleep
        self._rng = rng
        self._core = SessionCore(config.initial)
        self._link: _Link | None = None
        self._waiters: dict[int, asyncio.Future[Resolved]] = {}
        self._send_lock = asyncio.Lock()
        self._set_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._final_error: DecartError | None = None
        self._closing = False
        self._started = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._connect_started = 0.0
        self._reconnecting = False
        self._last_stats: StatsCounter | None = None
        self.first_frame_after: float | None = None  # seconds from connect() to the first remote frame

    # --- public API ------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._core.state

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
        """Connect: initial state, ack, offer, answer, until the peer connection is connected.

        Only capacity refusals are retried here (with the reconnect backoff); other failures are
        reported at once so a typo in a URL or key does not cost 25 s.

        Raises:
            AuthError: the credential was rejected.
            ServerError: the server sent an ``error`` (text verbatim) or rejected the initial state.
            AckTimeout: the initial state was not acknowledged in time.
            ConnectionFailed: the socket or peer connection failed, or the connect deadline passed.
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
                delay = next(delays, None) if is_capacity(str(exc), getattr(exc, "code", None)) else None
                if delay is None or self._closing:
                    self._finish(exc, source=_source(exc))
                    raise
                self._note(ev.Reconnecting(attempt, self._config.max_retries, delay, str(exc)))
                await self._sleep(delay)

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
        """Send a ``prompt`` and wait for the ``prompt_ack`` echoing it (``Timeouts.prompt_ack``).

        While reconnecting the prompt is stored and this returns at once. Raises as :meth:`set`.
        """
        ticket = self._core.set_prompt(text, enhance)
        await self._request(ticket, self._config.timeouts.prompt_ack, f"prompt_ack for {text!r}")

    async def reconnect(self, *, model: catalog.Resolved | None = None, track: MediaStreamTrack | None = None) -> None:
        """User-initiated reconnect (switch model or camera), keeping the desired state.

        Raises:
            DecartError: the final error if every attempt failed (the session is then closed).
            InvalidState: after :meth:`disconnect`.
        """
        if self._closing or not self._started:
            raise InvalidState(f"cannot reconnect: session is {self.state.value}", hint="call connect() first")
        self._model = model or self._model
        self._track = track or self._track
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
        """Close everything (peer, socket, tasks) within ``Timeouts.disconnect``; idempotent."""
        if self._closing:
            return
        self._closing = True
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
        """One connection, from socket open to peer connected. Raises a DecartError on failure."""
        cfg, timeouts = self._config, self._config.timeouts
        link = self._link = _Link()
        self._core.begin_attempt()
        self._dispatch()
        url = build_url(cfg.realtime_url, cfg.credential, self._model.wire_name, resolution=cfg.resolution)
        try:
            async with asyncio.timeout(timeouts.connect):
                await self._handshake(link, url)
        except TimeoutError as exc:
            raise ConnectionFailed(
                f"could not connect within {timeouts.connect:g} s (peer connection not established)",
                hint="check UDP connectivity with 'decart netcheck'",
            ) from exc
        except ChannelClosed as exc:
            real = await self._real_error(link, exc)
            if real is exc:
                raise
            raise real from exc
        link.last_frame = time.monotonic()
        self._spawn(link, self._frames(link))
        self._spawn(link, self._monitor(link))

    async def _handshake(self, link: _Link, url: str) -> None:
        """Socket, initial state and its ack, offer, answer, until the peer connection is up."""
        cfg, timeouts = self._config, self._config.timeouts
        link.channel = await SignalingChannel.open(url, deadline=timeouts.ws_open)
        self._spawn(link, self._read(link))
        desired = self._core.desired
        ticket = self._core.send_initial()
        if desired.image is None and desired.prompt is not None:
            deadline, what = timeouts.initial_prompt_ack, "initial prompt acknowledgement"
        else:
            deadline, what = timeouts.initial_image_ack, "initial state acknowledgement"
        result = await self._wait(link, ticket, deadline, what)
        if not result.success:
            raise self._rejected(result, "the server rejected the initial state")
        ice = cfg.ice_servers
        if ice is None:
            ice = () if is_loopback(cfg.realtime_url) else DEFAULT_ICE_SERVERS
        link.pc = PeerConnection(
            ice_servers=ice,
            codec=cfg.codec,
            on_state=lambda state: self._on_pc_state(link, state),
            on_frame_sent=link.stats.frame_sent,
        )
        self._core.send_offer(await link.pc.create_offer(self._track))
        await self._flush(link)
        await self._race(link, link.established.wait())

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
            task.cancel()

    async def _wait(self, link: _Link | None, ticket: int, deadline: float, what: str) -> Resolved:
        future = self._waiters.setdefault(ticket, asyncio.get_running_loop().create_future())
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
            exc = ServerError(f"{context}: {text}")
            exc.permanent = True  # type: ignore[attr-defined]  # bad input: retrying cannot help (J.7)
            return exc
        link = self._link
        if link is not None and link.failed.done():
            return link.failed.result()
        return ConnectionFailed(text)

    def _server_exc(self, text: str) -> DecartError:
        if any(marker in text.lower() for marker in _AUTH_MARKERS):
            if self._config.credential.kind == "client token" and self._reconnecting:
                return AuthError(
                    f"the client token was rejected on reconnect ({text}): it has probably expired",
                    hint="mint a new one with 'decart token' and start the stream again",
                )
            return AuthError(text, hint="check the API key (DECART_API_KEY or --api-key-file)")
        hint = "the service is busy; try again in a minute" if is_capacity(text) else None
        return ServerError(text, hint=hint)

    # --- pumps -----------------------------------------------------------------------------------

    async def _read(self, link: _Link) -> None:
        """Feed every frame into the core; apply answers/candidates; report the end of the socket."""
        assert link.channel is not None
        try:
            while True:
                data = await link.channel.recv()
                self._core.receive_message(data)
                self._dispatch(link)
                if self._core.server_error is not None and not link.established.is_set():
                    link.fail(self._server_exc(self._core.server_error))
                while link.rtc:
                    action = link.rtc.pop(0)
                    if link.pc is None:
                        continue
                    if isinstance(action, ApplyAnswer):
                        await link.pc.apply_answer(action.sdp)
                    else:
                        await link.pc.add_candidate(action.candidate)
                await self._flush(link)
        except DecartError as exc:
            self._lost(link, exc)
        except Exception as exc:  # a bug here must still end the link visibly
            logger.exception("signaling reader failed")
            self._lost(link, ConnectionFailed(f"signaling reader failed: {type(exc).__name__}: {exc}"))

    async def _frames(self, link: _Link) -> None:
        """Deliver every remote frame to ``on_frame``; feeds the stats and the stall watchdog."""
        assert link.pc is not None
        track = await link.pc.remote_track
        while (frame := await next_frame(track)) is not None:
            now = time.monotonic()
            link.last_frame = now
            link.stats.frame_received(now)
            if self.first_frame_after is None:
                self.first_frame_after = now - self._connect_started
            if self._on_frame is not None:
                try:
                    self._on_frame(frame)
                except Exception:  # a UI bug must not end the session
                    logger.exception("on_frame callback failed")

    async def _monitor(self, link: _Link) -> None:
        """Once a second: stats; and the media watchdog (no remote frame for ``media_stall`` s)."""
        stall = self._config.timeouts.media_stall
        step = min(1.0, stall / 4)
        next_stats = time.monotonic() + 1.0
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            if self.state in _LIVE and now - link.last_frame > stall:
                self._lost(link, ConnectionFailed(f"no video from the server for {now - link.last_frame:.1f} s"))
                return
            if now >= next_stats and link.pc is not None:
                next_stats = now + 1.0
                with contextlib.suppress(Exception):
                    t = await link.pc.stats()
                    link.stats.transport(
                        now, bytes_sent=t.bytes_sent, bytes_received=t.bytes_received, rtt_ms=t.rtt_ms, loss=t.loss
                    )
                self._note(ev.StatsUpdated(link.stats.snapshot(now)))

    def _on_pc_state(self, link: _Link, state: str) -> None:
        if link is not self._link or link.closing:
            return
        if state == "connected":
            self._core.peer_connected()
            self._dispatch(link)
            self._spawn_flush(link)
        elif state in ("failed", "closed"):
            self._lost(link, ConnectionFailed(f"the WebRTC connection {state}"))

    # --- loss, reconnect, teardown ---------------------------------------------------------------

    def _lost(self, link: _Link, exc: DecartError) -> None:
        """A loss signal (socket end, peer failed, stall). Only the first one per link counts."""
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

    async def _end(self, exc: DecartError) -> None:
        await self._teardown()
        self._finish(exc, source=_source(exc))

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
                await self._sleep(delay)
                if self._closing:
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
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _teardown(self) -> None:
        """Close the current link: tasks, peer connection, socket (idempotent, never raises)."""
        link, self._link = self._link, None
        if link is None:
            return
        link.closing = True
        link.fail(ConnectionFailed("the connection was closed"))
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        if link.pc is not None:
            await link.pc.aclose()
        if link.channel is not None:
            await link.channel.aclose()
        for task in link.tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
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
            self._core.finish(message, permanent=_permanent(exc) or give_up, source=source)
        else:
            self._core.finish(None)
        self._dispatch()
        self._closed.set()

    # --- plumbing --------------------------------------------------------------------------------

    def _dispatch(self, link: _Link | None = None) -> None:
        """Route the core's actions (resolve waits, queue rtc work) and deliver its events."""
        for action in self._core.actions():
            if isinstance(action, Resolved):
                future = self._waiters.get(action.ticket)
                if future is not None and not future.done():
                    future.set_result(action)
            elif link is not None:
                link.rtc.append(action)
        if link is not None and self._core.state in _LIVE:
            link.established.set()
        for event in self._core.events_received():
            if self._on_event is not None:
                try:
                    self._on_event(event)
                except Exception:  # a UI bug must not end the session
                    logger.exception("on_event callback failed")

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
