"""One connection attempt of a session: its control socket, media transport, tasks and waits.

A :class:`Link` lives from the socket's opening to its teardown; a reconnect makes a new one, so
nothing of a dead attempt (a late answer, a stale track) can reach the next. Its waits end early
when the link fails (:meth:`Link.race`); :meth:`Link.room_info` is the LiveKit era's queue-aware
wait for the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from decart_cli.core.stats import StatsCounter, StatsSnapshot
from decart_cli.errors import AckTimeout, ConnectionFailed, DecartError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from decart_cli.config import Timeouts
    from decart_cli.core import messages as msg
    from decart_cli.core.catalog import Resolved as Model
    from decart_cli.core.session import Resolved
    from decart_cli.realtime.transport import Control, MediaTransport
    from decart_cli.transport.signaling import SignalingChannel

__all__ = ["FIRST_FRAME_ALLOWANCE", "AckWaits", "AttemptControl", "Link", "pause"]

logger = logging.getLogger(__name__)

FIRST_FRAME_ALLOWANCE = 3  # × media_stall before the first remote frame of an attempt


class AckWaits:
    """Futures for the tickets the core hands out, resolved by its ``Resolved`` actions.

    A ticket is registered before its message is sent (:meth:`expect`), so an ack that arrives
    before anybody waits for it (the LiveKit era's state right behind the join) is not lost.
    """

    def __init__(self) -> None:
        self._futures: dict[int, asyncio.Future[Resolved]] = {}

    def expect(self, ticket: int) -> asyncio.Future[Resolved]:
        """The future of ``ticket`` (created on first use)."""
        return self._futures.setdefault(ticket, asyncio.get_running_loop().create_future())

    def resolve(self, action: Resolved) -> None:
        """Hand the core's answer to whoever waits for its ticket."""
        future = self._futures.get(action.ticket)
        if future is not None and not future.done():
            future.set_result(action)

    async def wait(self, ticket: int, deadline: float, what: str) -> Resolved:
        """Wait for ``ticket`` at most ``deadline`` seconds.

        Raises:
            AckTimeout: naming ``what``.
        """
        future = self.expect(ticket)
        try:
            async with asyncio.timeout(deadline):
                return await asyncio.shield(future)
        except TimeoutError as exc:
            raise AckTimeout(
                f"{what} did not arrive within {deadline:g} s", hint="the server may be overloaded; try again"
            ) from exc
        finally:
            self._futures.pop(ticket, None)


@dataclass(eq=False)
class Link:
    """One connection attempt (see the module docstring). Create on the running loop."""

    channel: SignalingChannel | None = None
    transport: MediaTransport | None = None
    failed: asyncio.Future[DecartError] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    room: asyncio.Future[msg.LivekitRoomInfo] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    queue_changed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stats: StatsCounter = field(default_factory=lambda: StatsCounter(time.monotonic()))
    last_frame: float = field(default_factory=time.monotonic)
    initial: int = 0  # ticket of the initial state's ack
    deadline: asyncio.Timeout | None = None  # the attempt's connect deadline (paused while queued)
    closing: bool = False

    def fail(self, exc: DecartError) -> None:
        """The attempt failed with ``exc`` (the first failure wins)."""
        if not self.failed.done():
            self.failed.set_result(exc)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task of this link (cancelled by :meth:`close`)."""
        self.tasks.append(asyncio.ensure_future(coro))

    async def race(self, aw: Coroutine[Any, Any, Any]) -> Any:
        """Await ``aw`` unless the link fails first (server error, socket closed): then raise that."""
        task = asyncio.ensure_future(aw)
        try:
            done, _ = await asyncio.wait({task, self.failed}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            raise self.failed.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def settle_reader(self) -> None:
        """Give the socket reader (the first task) up to 1 s to process what arrived before a close,
        so the server's own error ("Invalid API key") is reported, not "socket closed" (J.13)."""
        if self.tasks:
            waits: list[asyncio.Future[Any]] = [self.tasks[0], self.failed]
            await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)

    async def room_info(self, timeouts: Timeouts, queue: Callable[[], tuple[int, int] | None]) -> msg.LivekitRoomInfo:
        """Wait for ``livekit_room_info``: ``Timeouts.room_info`` at first, paused while queued.

        The Python SDK fails after a fixed 15 s even while the server reports a queue position
        (decart-protocol-2026-11.md §3.2), so a queued client gives up just before its turn. Here
        the first ``queue_position`` or ``status`` pauses that deadline and the attempt's connect
        deadline; the wait is then bounded only by ``Timeouts.queue_wait`` in total (the position
        is shown meanwhile, a closed socket or a server error still ends it at once, and the user
        can stop at any time). Room info re-arms the connect deadline for the media part.

        Args:
            timeouts: the deadlines.
            queue: returns the latest ``(position, size)`` or ``None`` (named when giving up).

        Raises:
            DecartError: the link failed, or a deadline passed.
        """
        queued_since: float | None = None
        while not self.room.done():
            if queued_since is None:
                limit = timeouts.room_info
            else:
                limit = timeouts.queue_wait - (time.monotonic() - queued_since)
            self.queue_changed.clear()
            changed = asyncio.ensure_future(self.queue_changed.wait())
            waits: set[asyncio.Future[Any]] = {self.room, self.failed, changed}
            try:
                done, _ = await asyncio.wait(waits, timeout=max(0.0, limit), return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
            if self.failed.done():
                raise self.failed.result()
            if self.room.done():
                break
            if changed in done:
                if queued_since is None:
                    queued_since = time.monotonic()
                    if self.deadline is not None:
                        self.deadline.reschedule(None)
                continue
            if queued_since is None:
                raise ConnectionFailed(
                    f"no livekit_room_info within {timeouts.room_info:g} s of livekit_join",
                    hint="the service may be overloaded; try again",
                )
            where = queue()
            at = f" (position {where[0]} of {where[1]})" if where else ""
            raise ConnectionFailed(
                f"still waiting for capacity after {timeouts.queue_wait:g} s{at}", hint="try again later"
            )
        if self.deadline is not None:
            self.deadline.reschedule(asyncio.get_running_loop().time() + timeouts.connect)
        return self.room.result()

    async def run_media(self, control: Control, lost: Callable[[DecartError], None]) -> None:
        """Run the transport's frame pumps; a failure in them is a loss (``lost``), never a silent death."""
        assert self.transport is not None
        try:
            await self.transport.run(control)
        except DecartError as exc:
            lost(exc)
        except Exception as exc:
            logger.exception("media task failed")
            lost(ConnectionFailed(f"media failed: {type(exc).__name__}: {exc}"))

    async def watch(
        self,
        stall: float,
        *,
        live: Callable[[], bool],
        lost: Callable[[DecartError], None],
        report: Callable[[StatsSnapshot], None],
    ) -> None:
        """Once a second: transport stats to ``report``; and the media watchdog: no remote frame for
        ``stall`` seconds while ``live()`` is a loss (``lost``).

        Before the attempt's first remote frame the allowance is :data:`FIRST_FRAME_ALLOWANCE` times
        longer: on LiveKit the output track only appears once the server has subscribed to the input
        and started generating.
        """
        step = min(1.0, stall / 4)
        next_stats = time.monotonic() + 1.0
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            limit = stall if self.stats.frames_received else FIRST_FRAME_ALLOWANCE * stall
            if live() and now - self.last_frame > limit:
                lost(ConnectionFailed(f"no video from the server for {now - self.last_frame:.1f} s"))
                return
            if now >= next_stats and self.transport is not None:
                next_stats = now + 1.0
                with contextlib.suppress(Exception):
                    t = await self.transport.stats()
                    if t is not None:
                        self.stats.transport(
                            now, bytes_sent=t.bytes_sent, bytes_received=t.bytes_received, rtt_ms=t.rtt_ms, loss=t.loss
                        )
                report(self.stats.snapshot(now))

    async def close(self, deadline: float) -> None:
        """Cancel the tasks, close the media and the socket (never raises).

        Waiting for the tasks uses :func:`asyncio.wait`, which never swallows a cancellation of
        the caller: a reconnect cancelled in here stops at once instead of going on to its backoff.
        """
        self.closing = True
        self.fail(ConnectionFailed("the connection was closed"))
        current = asyncio.current_task()
        others = [task for task in self.tasks if task is not current]
        for task in others:
            task.cancel()
        try:
            if self.transport is not None:
                with contextlib.suppress(Exception):
                    await self.transport.aclose()
            if self.channel is not None:
                await self.channel.aclose()
            if others:
                await asyncio.wait(others, timeout=deadline)
        finally:
            for task in others:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: the tasks report their own failures


@dataclass(frozen=True)
class AttemptControl:
    """The driver as one attempt's transport sees it (:class:`~decart_cli.realtime.transport.Control`),
    built by the driver from its own callables."""

    link: Link
    model_of: Callable[[], Model]
    ack: Callable[[], Awaitable[None]]
    offer: Callable[[str], Awaitable[None]]
    room: Callable[[], Awaitable[msg.LivekitRoomInfo]]
    connected: Callable[[], None]
    lost: Callable[[DecartError], None]
    received: Callable[[Any], None]

    @property
    def model(self) -> Model:
        """The model of this attempt."""
        return self.model_of()

    async def initial_ack(self) -> None:
        """Wait for the initial state's ack."""
        await self.ack()

    async def send_offer(self, sdp: str) -> None:
        """Send the SDP offer on the control socket."""
        await self.offer(sdp)

    async def room_info(self) -> msg.LivekitRoomInfo:
        """Wait for ``livekit_room_info`` (queue-aware, :meth:`Link.room_info`)."""
        return await self.room()

    def media_connected(self) -> None:
        """Media is up."""
        self.connected()

    def media_lost(self, reason: str) -> None:
        """Media failed or closed on its own."""
        self.lost(ConnectionFailed(reason))

    def frame_sent(self) -> None:
        """One local frame went to the encoder."""
        self.link.stats.frame_sent(time.monotonic())

    def frame_received(self, frame: Any) -> None:
        """One decoded remote frame."""
        self.received(frame)


async def pause(sleep: Callable[[float], Awaitable[None]], delay: float, stopping: asyncio.Event) -> bool:
    """The backoff sleep; False, at once, when ``stopping`` is (or gets) set (a disconnect)."""
    if stopping.is_set():
        return False
    sleeper = asyncio.ensure_future(sleep(delay))
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({sleeper, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stop):
            task.cancel()
    return not stopping.is_set()
