"""StreamRunner: one ``decart stream`` session, from opening the source to the summary line.

The only place that creates tasks for a stream. Life of a run:

1. open the frame source (off the loop), the recorder and the window; start the panel / key reader;
2. connect the :class:`~decart_cli.realtime.RealtimeSession` with the initial prompt state, over
   the chosen media transport (LiveKit by default, or the direct aiortc path);
3. run until the first *ending* task finishes (``asyncio.wait(FIRST_COMPLETED)``): ``--duration``,
   a stop request (``/quit``, SIGINT/SIGTERM, window closed), the source ending, or the session
   ending for good (on a TTY a dead session instead waits for ``/reconnect``), or the server ending
   it at the token's session limit (a clean end);
   background tasks meanwhile pump prompt updates, play ``--prompts``, emit stats and redraw;
4. shut down in reverse order, every step bounded: cancel tasks → disconnect → close the source
   (releases the camera) → finalise the recording → close the window → stop the panel and restore
   the terminal; then report the error that ended the run (once, in words, with the next step)
   and end with the summary / ``done`` line, and return the outcome.

A first SIGINT/SIGTERM starts that shutdown (it finishes within ~2 s); a second one restores the
terminal and leaves at once with ``os._exit``. Prompt updates and the
interactive input line live in :mod:`decart_cli.runtime.input`; both, and :mod:`.view`, see the
runner only through :class:`~decart_cli.runtime.host.RunnerHost`. The runner also uses, and is
never imported by: :mod:`.options` (StreamOptions, StreamOutcome), :mod:`.outputs` (the window and
the recording), :mod:`.endings` (the waits that end a run) and :mod:`.leave` (signals, ``os._exit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from decart_cli.core import events as ev
from decart_cli.core.catalog import Resolved
from decart_cli.core.prompt_queue import PromptQueue
from decart_cli.errors import DecartError, ExitStatus, Interrupted
from decart_cli.media.source import FrameSource, SourceSpec
from decart_cli.runtime.endings import drain_output, duration, first_ending
from decart_cli.runtime.input import CommandHandler, UpdatePump
from decart_cli.runtime.leave import force_exit, install_stop_signals, leave, livekit_ran, remove_stop_signals
from decart_cli.runtime.native_stderr import NativeStderr
from decart_cli.runtime.options import ENDED_TEXT, LATENCY_MODES, StreamOptions, StreamOutcome, ending_error
from decart_cli.runtime.outputs import Outputs
from decart_cli.runtime.report import FinalError
from decart_cli.runtime.view import View
from decart_cli.ui.console import Streams
from decart_cli.ui.events_out import EventSink, JsonEvents, NullSink, PlainLog, describe

if TYPE_CHECKING:
    from decart_cli.media.latency import LatencyMeter
    from decart_cli.media.recorder import Recorder
    from decart_cli.media.window_thread import WindowThread
    from decart_cli.realtime import RealtimeSession
    from decart_cli.ui.keys import KeyReader
    from decart_cli.ui.live import LivePanel

__all__ = ["LATENCY_MODES", "StreamOptions", "StreamOutcome", "StreamRunner"]

logger = logging.getLogger(__name__)

STATS_INTERVAL = 1.0
REFRESH_INTERVAL = 0.25  # elapsed time and rates; events and keys redraw at once


class StreamRunner:
    """Runs one stream. Create, then ``await run()`` once.

    Args:
        options: the validated options.
        streams: stdout/stderr (``--json`` records go to stdout, humans to stderr).
        open_source: opens a :class:`FrameSource` (tests may inject a fake camera through it).
    """

    def __init__(
        self,
        options: StreamOptions,
        streams: Streams,
        open_source: Callable[..., FrameSource] | None = None,
        sink: EventSink | None = None,
    ) -> None:
        from decart_cli.media.source import open_source as default_open

        self.options = options
        self.streams = streams
        self._open_source = open_source or default_open
        self._t0 = time.monotonic()
        self.model = options.model
        self.spec = options.spec
        self.queue = PromptQueue(options.initial, debounce=options.debounce)
        self.view = View(mirror=options.mirror.value, record=options.record)
        self.sink: EventSink = sink or (
            JsonEvents(streams) if options.ui == "json" else PlainLog(streams) if options.ui == "plain" else NullSink()
        )
        self.source: FrameSource | None = None
        self.session: RealtimeSession | None = None
        self.outputs = Outputs(options.record, options.window)  # the window and the recording
        self.panel: LivePanel | None = None
        self.keys: KeyReader | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()  # the session reached connected/generating at least once
        self._generating = asyncio.Event()  # generation started at least once
        self._revived = asyncio.Event()  # /reconnect brought a dead session back (TTY mode)
        self._reason: str | None = None
        self._signal: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ready_at: float | None = None
        self._reconnects = 0
        self.updates = UpdatePump(self)
        self.commands: CommandHandler | None = None  # live mode only
        self.ended_at: float | None = None
        self._hung_up = False
        self._final_error = FinalError(self.sink.emit, json_mode=options.ui == "json")
        self.latency: LatencyMeter | None = None  # glass-to-glass, for the current source
        self._native = NativeStderr()
        self._flush_announced = False  # "finishing recording…" said once (plain / JSON modes)
        self._crash: BaseException | None = None
        self.sent_by_old_sources = 0  # frames sent by sources replaced by /camera or /model
        self.force_exit_hooks: list[Callable[[], None]] = []  # run before os._exit on a second Ctrl-C

    @property
    def recorder(self) -> Recorder | None:
        """The recording (``--record``), once the media is open."""
        return self.outputs.recorder

    @property
    def window(self) -> WindowThread | None:
        """The preview window (``--window``), once open; ``None`` without a display."""
        return self.outputs.window

    # --- small helpers ---------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since the runner was created (the ``t`` of every record)."""
        return time.monotonic() - self._t0

    def emit(self, record: dict[str, Any]) -> None:
        """Send a record to the sink, stamped with ``t``."""
        self.sink.emit({**record, "t": round(self.now(), 3)})

    def request_stop(self, reason: str) -> None:
        """End the run (first reason wins)."""
        if self._reason is None:
            self._reason = reason
            self.ended_at = time.monotonic()
        self._stop.set()

    def notice(self, message: str) -> None:
        """Something worth knowing that is not an error: a ``notice`` record, or the panel's message line."""
        self.emit({"event": "notice", "message": message})
        if self.options.ui == "live":
            self.view.message = message

    def wake_pump(self) -> None:
        """The prompt queue changed: let the sender look at it."""
        self.updates.wake()
        self.redraw()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task owned by the runner (cancelled at shutdown)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """A crashed background task (a bug, not a DecartError) ends the run instead of dying silently."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, DecartError) and self._crash is None:
            self._crash = exc
            self.request_stop("error")

    def frames_sent(self) -> int:
        """Frames handed to the encoder over the whole run (all sources)."""
        current = self.source.frames_sent if self.source is not None else 0
        return self.sent_by_old_sources + current

    def redraw(self) -> None:
        """Refresh the panel and the window title now; every change of model, prompt or state calls it."""
        self.sync_title()
        if self.commands is not None:
            self.commands.sync_history()
        if self.panel is not None and not self._hung_up:
            self.panel.update(self.view.snapshot(self))
            self.panel.refresh()

    def sync_title(self) -> None:
        """The window's title follows the model and the prompt the session holds (a /model switch,
        prompt updates: both end in :meth:`redraw`)."""
        self.outputs.set_title(self.model.wire_name, self.queue.applied.prompt)

    # --- the run ---------------------------------------------------------------------------------

    async def run(self) -> StreamOutcome:
        """Run the stream to its end; always cleans up.

        Returns:
            The outcome; a :class:`DecartError` that ended the run is in ``outcome.error``.

        Raises:
            Exception: only a bug (a task failing with something other than a DecartError), after
                the same cleanup.
        """
        error: DecartError | None = None
        if self.options.transport == "livekit":
            # libwebrtc prints to fd 2 (codec warnings): into the log, not across the panel.
            self._native.start()
        try:
            if self.options.install_signals:
                install_stop_signals(self._on_signal)
            await self._open_media()
            await self._connect()
            if self._reason is None:
                error = await self._main_phase()
        except DecartError as exc:
            error = exc
            self.request_stop("error")
        finally:
            await self._shutdown()
        try:
            outcome = self._outcome(error)
        finally:
            self._native.stop()
        if self._crash is not None:
            raise self._crash  # the error boundary reports it (traceback with --debug)
        if self.options.exit_process and livekit_ran():  # the native SDK ran in this process
            # Said and saved: skip the interpreter's teardown, where libwebrtc aborts (see .leave).
            leave(int(outcome.exit_status), self.force_exit_hooks, logger)
        return outcome

    async def _open_media(self) -> None:
        from decart_cli.realtime.transport import preload

        # The media stack's import (~0.35 s) overlaps the source opening instead of delaying connect.
        warm = asyncio.ensure_future(asyncio.to_thread(preload, self.options.transport))
        try:
            self.source = await self.open_source(self.spec, self.model)
        finally:
            with contextlib.suppress(Exception):
                await warm
        await self.outputs.open(
            fps=self.model.model.fps, model=self.model.wire_name, prompt=self.queue.applied.prompt, notice=self.notice
        )
        if self.options.ui == "live":
            self._start_interactive()

    async def open_source(self, spec: SourceSpec, model: Resolved) -> FrameSource:
        """Open a frame source at ``model``'s size (off the loop) and announce it.

        With ``options.stamps_marker`` every frame carries the latency marker, which ``decart serve``
        copies to its output; with ``options.frame_timing`` the server echoes capture timestamps. Either
        way the glass-to-glass latency of received frames is measured (:class:`LatencyMeter`).
        """
        from decart_cli.media.latency import LatencyMeter

        m = model.model
        source = await asyncio.to_thread(
            self._open_source,
            spec,
            width=m.width,
            height=m.height,
            fps=m.fps,
            mirror=self.options.mirror,
            stall_timeout=self.options.settings.timeouts.camera_stall,
            stamp_marker=self.options.stamps_marker,
        )
        self.latency = LatencyMeter(source, marker=self.options.stamps_marker, frame_timing=self.options.frame_timing)
        self.view.source_info = source.info
        info = source.info.to_json()
        self.emit({"event": "source", **{k: v for k, v in info.items() if k != "mode_note"}, "note": info["mode_note"]})
        return source

    def _start_interactive(self) -> None:
        from decart_cli.ui.keys import KeyReader
        from decart_cli.ui.live import LivePanel

        self.commands = CommandHandler(self)
        self.panel = LivePanel(self.streams.console(stderr=True), self.view.snapshot(self))
        self.panel.start()
        if _isatty(sys.stdin):
            self.keys = KeyReader(self.commands.on_key, sys.stdin.fileno())
            self.keys.open()

    async def _connect(self) -> None:
        from decart_cli.realtime import RealtimeSession

        assert self.source is not None
        transport = self.options.transport
        config = self.options.session_config(self.model, self.queue.desired)
        self.session = RealtimeSession(config, self.source, on_event=self._on_event, on_frame=self._on_frame)
        codec = self.session.codec
        self.view.transport = f"{transport} · {codec}"
        self.emit({"event": "transport", "transport": transport, "codec": codec, "speed": self.options.speed})
        connect = asyncio.ensure_future(self.session.connect())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({connect, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not connect.done():
                connect.cancel()
                with contextlib.suppress(asyncio.CancelledError, DecartError):
                    await connect
        if connect.done() and not connect.cancelled():
            connect.result()  # raises the connect error
            self._mark_ready()

    @property
    def ready(self) -> asyncio.Event:
        """Set once the session reached connected/generating."""
        return self._ready

    def _mark_ready(self) -> None:
        if self.ready_at is None:
            self.ready_at = time.monotonic()
        self._ready.set()
        self.wake_pump()

    async def _main_phase(self) -> DecartError | None:
        spawn = self.spawn
        spawn(self.updates.run(), "updates")
        spawn(self._emit_stats(), "stats")
        if self.options.script:
            spawn(self.updates.play_script(self.options.script), "script")
        if self.panel is not None:
            spawn(self._refresh_panel(), "panel")
        ending = {
            spawn(self._stop.wait(), "stop"),
            spawn(self._watch_session(), "session"),
            spawn(self._watch_source(), "source"),
        }
        if self.options.duration is not None:
            ending.add(spawn(self._run_duration(self.options.duration), "duration"))
        if self.window is not None:
            ending.add(spawn(self._pump_window(), "window"))
        return await first_ending(ending)

    async def _run_duration(self, seconds: float) -> None:
        """``--duration``, counted from the first generated output (:func:`.endings.duration`)."""
        await duration(seconds, self._generating)
        self.request_stop("duration")

    async def _watch_session(self) -> DecartError | None:
        """Returns (ending the run) when the session is gone for good; on a TTY waits for /reconnect."""
        assert self.session is not None
        while True:
            error: DecartError | None = None
            try:
                await self.session.wait_closed()
            except DecartError as exc:
                error = exc
            if self.panel is None or error is None:
                self.request_stop("session_error" if error else "session_closed")
                return error
            self.view.last_error = error.message
            self.view.message = "disconnected — type /reconnect to try again, /quit to leave"
            self._revived.clear()
            self.redraw()
            await self._revived.wait()

    async def _watch_source(self) -> DecartError | None:
        while True:
            source = self.source
            assert source is not None
            await source.wait_finished()
            if source is not self.source:
                continue  # replaced by /camera or /model
            if source.error is not None:
                self.request_stop("source_error")
                return source.error
            await drain_output(lambda: self.view.frames_received, self.frames_sent, self._ready)
            self.request_stop("input_end")
            return None

    async def _pump_window(self) -> None:
        """The window paints on its own thread (frames go to it in :meth:`_on_frame`); watch for its close."""
        assert self.window is not None
        await self.outputs.window_closed.wait()
        self.request_stop("window_closed")

    # --- periodic output -------------------------------------------------------------------------

    async def _emit_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            if self.session is not None:
                self.view.stats = self.session.stats()
                if self.latency is not None:
                    self.view.latency_ms = self.latency.median_ms()
                    self.view.latency_source = self.latency.source
                self.emit({"event": "stats", **self.view.stats_record(self)})

    async def _refresh_panel(self) -> None:
        while True:
            self.redraw()
            await asyncio.sleep(REFRESH_INTERVAL)

    # --- callbacks from the session and the keyboard ----------------------------------------------

    def _on_event(self, event: ev.Event) -> None:
        from decart_cli.core.session import ConnectionState

        self.view.apply(event)
        if isinstance(event, ev.StateChanged):
            if event.new in (ConnectionState.CONNECTED, ConnectionState.GENERATING):
                self._mark_ready()
                self._revived.set()
            if event.new is ConnectionState.GENERATING:
                self._generating.set()
            self.updates.wake()
        elif isinstance(event, ev.Reconnected):
            self._reconnects += 1
        elif isinstance(event, ev.StatsUpdated):
            return
        elif isinstance(event, ev.GenerationEnded) and event.final and event.reason == "timeout":
            self.request_stop("session_limit")  # the token's session limit: a clean end, never a reconnect
        record = describe(event)
        if record is not None and not self._final_error.hold(event, {**record, "t": round(self.now(), 3)}):
            self.emit(record)  # (an error that ends the session is said once, at the end)
        self.redraw()

    def _on_frame(self, frame: Any) -> None:
        self.view.frames_received += 1
        self.view.received_size = (frame.width, frame.height)
        if self.latency is not None:
            self.latency.on_frame(frame)
        self.outputs.show(frame)  # into the recording; the newest frame into the window thread's slot

    # --- signals ---------------------------------------------------------------------------------

    def _on_signal(self, name: str) -> None:
        if name == "SIGHUP":
            # The terminal is gone: stop drawing (writes would fail), then shut down cleanly.
            self._hung_up = True
        if self._signal is not None:
            self._force_exit()
        self._signal = name
        self.view.message = f"{name}: stopping… (press Ctrl-C again to quit at once)"
        self.request_stop("signal")
        self.redraw()

    def _force_exit(self) -> None:
        """Second Ctrl-C: restore the terminal and leave now (the recording may be cut short)."""
        force_exit(
            int(Interrupted(self._signal or "SIGINT").exit_status),
            self.force_exit_hooks,
            fd=self._native.terminal_fd if self._native.terminal_fd is not None else 2,
            show_cursor=self.panel is not None,
            note=self.outputs.cut_short(),
        )

    # --- shutdown --------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        timeouts = self.options.settings.timeouts
        if self.session is not None:
            with contextlib.suppress(DecartError, TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(timeouts.disconnect + 0.5):
                    await self.session.disconnect()
        if self.keys is not None:
            self.keys.close()
        if self.source is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.source.close)
        await self.outputs.finish_recording(self._recording_progress)
        if self.panel is not None and (self.view.message or "").startswith("finishing recording"):
            self.view.message = None
        await self.outputs.close_window()
        if self.panel is not None:
            self.view.ended = ENDED_TEXT.get(self._reason or "", self._reason or "error")
            self.redraw()
            with contextlib.suppress(OSError):  # a closed terminal
                self.panel.stop()
        if self.options.install_signals:
            with contextlib.suppress(Exception):
                remove_stop_signals()

    def _recording_progress(self, queued: int) -> None:
        """The recording is still being encoded: "finishing recording… N frames queued" (on the panel, or once)."""
        text = f"finishing recording {self.options.record}… {queued} frames queued"
        if self.panel is not None:
            self.view.message = text
            self.redraw()
        elif queued and not self._flush_announced and not self._hung_up:
            self._flush_announced = True
            self.streams.info(text)

    def _outcome(self, error: DecartError | None) -> StreamOutcome:
        reason = self._reason or ("error" if error else "session_closed")
        error = ending_error(reason, error, self._signal)
        loss = self.outputs.loss(self.view.frames_received)
        if loss is not None:
            if error is None:
                error = loss  # an empty or short recording is never a silent success (exit 4)
            elif not self._hung_up:
                self.streams.warn(loss.message)
        status = ExitStatus.OK if error is None else error.exit_status
        summary = self.view.summary(self, reason=reason, status=status, reconnects=self._reconnects)
        message, hint = self._final_error.words(error)
        summary["error"] = message  # always present: null on success (the JSON contract)
        if message is not None and not self._hung_up:
            self.streams.error(message, hint)  # once, before the closing line
        self.emit(summary)
        if self.options.ui == "live":
            from decart_cli.ui.events_out import plain_line

            line = plain_line({**summary, "t": round(self.now(), 3)})
            if line is not None and not self._hung_up:
                self.streams.info(line)
        return StreamOutcome(reason, error, summary)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
