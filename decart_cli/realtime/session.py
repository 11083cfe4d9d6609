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
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from decart_cli.config import register_secret
from decart_cli.core import catalog
from decart_cli.core import events as ev
from decart_cli.core.backoff import backoff
from decart_cli.core.session import (
    AddCandidate,
    ApplyAnswer,
    ConnectionState,
    DesiredState,
    Ended,
    JoinRoom,
    Resolved,
    SessionCore,
)
from decart_cli.core.stats import StatsCounter, StatsSnapshot
from decart_cli.errors import ConnectionFailed, DecartError, InvalidState, ServerError
from decart_cli.realtime.config import SessionConfig
from decart_cli.realtime.failures import (
    ended_error,
    is_capacity_failure,
    is_permanent_failure,
    server_exception,
    source_of,
)
from decart_cli.realtime.link import AckWaits, AttemptControl, Link, pause
from decart_cli.realtime.transport import VideoInput, create
from decart_cli.transport.signaling import ChannelClosed, SignalingChannel, build_url

__all__ = ["RealtimeSession"]

logger = logging.getLogger(__name__)


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
        self._options = config.transport_options()
        self._core = SessionCore(
            config.initial,
            transport=config.transport,
            client_token=config.credential.kind == "client token",
            model=config.model.wire_name,
            frame_timing=self._options.frame_timing,
        )
        self._link: Link | None = None
        self._acks = AckWaits()
        self._send_lock = asyncio.Lock()
        self._set_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._stopping = asyncio.Event()  # set by disconnect(): interrupts backoff sleeps at once
        self._final_error: DecartError | None = None
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
    def _closing(self) -> bool:
        """:meth:`disconnect` was called (the user is leaving: nothing is reconnected or reported)."""
        return self._stopping.is_set()

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._core.state

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
                delay = next(delays, None) if is_capacity_failure(exc) else None
                if delay is None or self._closing:
                    self._finish(exc)
                    raise
                self._note(ev.Reconnecting(attempt, self._config.max_retries, delay, str(exc)))
                if not await pause(self._sleep, delay, self._stopping):
                    self._finish(exc)
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

        The switch is all or nothing: when every attempt fails, the session keeps its former model and
        video (the caller may close the new video then), so a later :meth:`reconnect` goes back to them.

        Raises:
            DecartError: the final error if every attempt failed (the session is then closed).
            InvalidState: after :meth:`disconnect`.
        """
        if self._closing or not self._started:
            raise InvalidState(f"cannot reconnect: session is {self.state.value}", hint="call connect() first")
        before = self._model, self._video
        self._model, self._video = model or self._model, video or self._video
        self._core.model = self._model.wire_name
        await self._cancel_reconnect()
        if not self._core.start_reconnecting("reconnect requested"):
            self._core.begin_attempt()  # from disconnected after a give-up: start afresh
        self._dispatch()
        self._final_error = None
        self._closed.clear()
        await self._reconnect_loop("reconnect requested", immediate=True)
        if self._final_error is not None:
            self._model, self._video = before
            self._core.model = self._model.wire_name
            raise self._final_error

    async def disconnect(self) -> None:
        """Close everything (media, socket, tasks) within ``Timeouts.disconnect``; idempotent.

        Stops a reconnect in whatever step it is (a backoff sleep included) at once.
        """
        if self._closing:
            return
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
        link = self._link = Link()
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
        control = self._control(link)
        assert link.transport is not None
        link.spawn(link.run_media(control, lambda exc: self._lost(link, exc)))
        link.spawn(
            link.watch(
                self._config.timeouts.media_stall,
                live=lambda: self._core.live,
                lost=lambda exc: self._lost(link, exc),
                report=lambda snapshot: self._note(ev.StatsUpdated(snapshot)),
            )
        )

    async def _handshake(self, link: Link, url: str) -> None:
        """Socket, opening messages, then the transport until its media is connected."""
        timeouts = self._config.timeouts
        link.channel = await SignalingChannel.open(url, deadline=timeouts.ws_open, client_token=self._core.client_token)
        link.spawn(self._read(link))
        link.initial = self._core.send_initial()
        self._acks.expect(link.initial)  # the ack may arrive before anybody waits for it
        await self._flush(link)
        link.transport = create(self._config.transport, self._video, self._options)
        await link.race(link.transport.connect(self._control(link)))

    async def _initial_ack(self, link: Link) -> None:
        """Wait for the initial state's ack (the transport decides when it needs it)."""
        timeouts = self._config.timeouts
        desired = self._core.desired
        if desired.image is None and desired.prompt is not None:
            deadline, what = timeouts.initial_prompt_ack, "initial prompt acknowledgement"
        else:
            deadline, what = timeouts.initial_image_ack, "initial state acknowledgement"
        result = await link.race(self._wait(None, link.initial, deadline, what))
        if not result.success:
            raise self._rejected(result, "the server rejected the initial state")

    def _control(self, link: Link) -> AttemptControl:
        """What this attempt's transport may ask of the driver."""

        async def send_offer(sdp: str) -> None:
            self._core.send_offer(sdp)
            await self._flush(link)

        return AttemptControl(
            link,
            model_of=lambda: self._model,
            ack=lambda: self._initial_ack(link),
            offer=send_offer,
            room=lambda: link.room_info(self._config.timeouts, lambda: self._core.queue),
            connected=lambda: self._media_connected(link),
            lost=lambda exc: self._lost(link, exc),
            received=lambda frame: self._frame(link, frame),
        )

    def _media_connected(self, link: Link) -> None:
        if link is not self._link or link.closing:
            return
        if self.connected_after is None:
            self.connected_after = time.monotonic() - self._connect_started
        self._core.peer_connected()
        self._dispatch(link)
        self._spawn_flush(link)

    async def _real_error(self, link: Link, exc: DecartError) -> DecartError:
        """The socket closed under a send: the server's own error if it sent one before closing."""
        await link.settle_reader()
        if self._core.server_error is not None:
            return self._server_exc(self._core.server_error)
        return link.failed.result() if link.failed.done() else exc

    async def _wait(self, link: Link | None, ticket: int, deadline: float, what: str) -> Resolved:
        self._acks.expect(ticket)
        if link is not None:
            await self._flush(link)
        return await self._acks.wait(ticket, deadline, what)

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
            exc.permanent = True  # bad input: retrying cannot help (J.7)
            return exc
        link = self._link
        if link is not None and link.failed.done():
            return link.failed.result()
        return ConnectionFailed(text)

    def _server_exc(self, text: str) -> DecartError:
        return server_exception(self._core, text, reconnecting=self._reconnecting)

    # --- pumps -----------------------------------------------------------------------------------

    async def _read(self, link: Link) -> None:
        """Feed every frame into the core; hand media actions to the transport; report the socket's end."""
        assert link.channel is not None
        try:
            while True:
                data = await link.channel.recv()
                self._core.receive_message(data)
                actions = self._dispatch(link)
                if self._core.server_error is not None and self._setting_up(link):
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

    def _frame(self, link: Link, frame: Any) -> None:
        """A decoded remote frame: stats, the stall watchdog, ``on_frame``."""
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

    # --- loss, reconnect, teardown ---------------------------------------------------------------

    def _lost(self, link: Link, exc: DecartError) -> None:
        """A loss signal (socket end, media failed, stall). Only the first one per link counts."""
        if link is not self._link or link.closing or self._closing:
            return
        if self._core.server_error is not None:
            exc = self._server_exc(self._core.server_error)  # the real reason, not "socket closed" (J.13)
        if self._setting_up(link):
            link.fail(exc)  # the attempt in progress raises it
            self._core.attempt_failed(str(exc))
            self._dispatch()
            return
        link.closing = True
        if not self._config.reconnect or is_permanent_failure(exc):
            self._background_task(self._end(exc))
            return
        if self._core.start_reconnecting(str(exc)):
            self._dispatch()
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop(str(exc)))

    def _setting_up(self, link: Link) -> bool:
        """``link`` is the attempt being set up: open (hence the current one), its media not up yet."""
        return not link.closing and not self._core.live

    def _ended(self, link: Link, ended: Ended) -> None:
        """``generation_ended`` with a final reason: end the session here, never reconnect."""
        if link is not self._link or link.closing or self._closing:
            return
        error = ended_error(ended)
        if self._setting_up(link):
            link.fail(error or ConnectionFailed(ended.explained.message))
            return
        link.closing = True
        self._background_task(self._end(error))

    async def _end(self, exc: DecartError | None) -> None:
        await self._teardown()
        self._finish(exc)

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
                if not await pause(self._sleep, delay, self._stopping) or self._closing:
                    return
                try:
                    await self._attempt()
                except DecartError as exc:
                    last = exc
                    reason = str(exc)
                    self._core.attempt_failed(reason)
                    await self._teardown()
                    if is_permanent_failure(exc):
                        break
                    continue
                self._note(ev.Reconnected(attempt))
                return
        finally:
            self._reconnecting = False
        if not self._closing:
            self._finish(last, give_up=True)

    async def _cancel_reconnect(self) -> None:
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def _teardown(self) -> None:
        """Close the current link: tasks, media, socket (idempotent, never raises; see :meth:`Link.close`)."""
        link, self._link = self._link, None
        if link is None:
            return
        try:
            await link.close(self._config.timeouts.disconnect)
        finally:
            self._last_stats = link.stats

    def _finish(self, exc: DecartError | None, *, give_up: bool = False) -> None:
        """The session is over: cleanly (``exc`` None) or with ``exc``, reported with the source
        :func:`source_of` gives it (``reconnect`` when the reconnect loop gave up)."""
        if self._closed.is_set():
            return
        if self._closing:  # the user disconnected: whatever failed meanwhile is not an error
            exc = None
        if exc is not None:
            self._final_error = exc
            message = str(exc)
            if give_up:
                message = f"gave up reconnecting: {message}"
            source = "reconnect" if give_up else source_of(exc)
            self._core.finish(message, permanent=is_permanent_failure(exc) or give_up, source=source, hint=exc.hint)
        else:
            self._core.finish(None)
        self._dispatch()
        self._closed.set()

    # --- plumbing --------------------------------------------------------------------------------

    def _dispatch(self, link: Link | None = None) -> list[ApplyAnswer | AddCandidate]:
        """Route the core's actions and deliver its events; returns the transport's actions."""
        media: list[ApplyAnswer | AddCandidate] = []
        for action in self._core.actions():
            if isinstance(action, Resolved):
                self._acks.resolve(action)
            elif isinstance(action, JoinRoom):
                register_secret(action.info.token)  # the LiveKit token never reaches a log line
                if link is not None and not link.room.done():
                    link.room.set_result(action.info)
            elif isinstance(action, Ended):
                if link is not None:
                    self._ended(link, action)
            else:
                media.append(action)
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

    async def _flush(self, link: Link) -> None:
        """Send the core's outbox in order (one sender at a time).

        Raises:
            ChannelClosed: the socket is closed (at once, no waiting).
        """
        async with self._send_lock:
            for text in self._core.data_to_send():
                if link.channel is None or link is not self._link:
                    raise ChannelClosed("cannot send: the signaling connection is closed")
                await link.channel.send(text)

    def _spawn_flush(self, link: Link) -> None:
        async def flush() -> None:
            with contextlib.suppress(DecartError):
                await self._flush(link)

        link.spawn(flush())

    def _background_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
