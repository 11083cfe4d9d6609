"""``decart serve``: Decart's realtime API on loopback — ``/v1/stream``, REST tokens and a LiveKit stand-in on one port.

Public API (contracts.md §2)::

    async with Emulator(EmulatorConfig(port=0)) as emu:      # in the current event loop
        emu.ws_url, emu.http_url, emu.port, emu.events, emu.connections
    with EmulatorThread(garbage=True) as emu:                 # own loop in a background thread
        token = emu.issue_token(expires_in=30, allowed_models=["lucy-2.1"])
        frames = emu.input_frames(1)                          # recent input frames (BGR arrays)

Connection checks, in order (each failure sends ``{"type":"error","error":...}`` then closes):
``--reject-first`` capacity (close 1013), key or token (``Invalid API key``; expired tokens
``Invalid API key: token expired``), model (``Invalid model: X``), the token's ``allowedModels``
(``Model X not allowed for this token``), ``resolution`` (``720p`` default or ``1080p``; else
``Invalid resolution: X``) and ``allowedOrigins`` (``Origin not allowed``, only when an
``Origin`` header is present), ``speed`` (``fast`` or absent; else ``Invalid speed: X``; a model
without the tier ignores it, as the service does). Policy rejections close with 1008. The session
itself is :class:`decart_cli.emulator.session.Session`. Accepted and only logged:
``livekit_early_room_info`` (its effect is unknown, 2026-11 §1), ``user_agent``.

The LiveKit stand-in (:mod:`decart_cli.emulator.livekit`) serves ``/rtc``, ``/rtc/v1`` and their
``/validate`` on the same port, so ``livekit_room_info.livekit_url`` is ``ws://HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from decart_cli.core import catalog
from decart_cli.core import messages as m
from decart_cli.emulator.events import EventLog
from decart_cli.emulator.faults import CAPACITY_CLOSE_CODE, CAPACITY_ERROR, FaultPlan
from decart_cli.emulator.livekit.room import RoomHub
from decart_cli.emulator.livekit.rtc import RtcEndpoints
from decart_cli.emulator.livekit_era import LiveKitSettings
from decart_cli.emulator.names import resolve_model
from decart_cli.emulator.options import EmulatorConfig, merge_config, output_size
from decart_cli.emulator.session import Session
from decart_cli.emulator.tokens import Access, TokenError, TokenStore
from decart_cli.emulator.viewer import Viewer

if TYPE_CHECKING:
    import av
    import numpy.typing as npt

__all__ = ["Emulator", "EmulatorConfig", "EmulatorThread"]

MAX_MSG_SIZE: Final = 32 * 1024 * 1024  # set_image frames carry multi-MB base64 (§1.5); ≥ 16 MiB
POLICY_CLOSE_CODE: Final = 1008  # RFC 6455 §7.4.1 policy violation: bad key, model, origin
INPUT_FRAMES_KEPT: Final = 5
INPUT_CONNECTIONS_KEPT: Final = 8  # connections whose recent input frames input_frames() can still return
SHUTDOWN_TIMEOUT: Final = 5.0


class Emulator:
    """The emulator in the current event loop. ``async with Emulator(cfg) as emu:`` or start()/stop().

    Args:
        config: the configuration; keyword ``overrides`` set single fields on top of it.
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        self.config = merge_config(config, overrides)
        self.tokens = TokenStore(self.config.api_key)
        self._events = EventLog()
        self._faults = FaultPlan(
            reject_first=self.config.reject_first,
            drop_after=self.config.drop_after,
            drop_connections=self.config.drop_connections,
            ack_delay_ms=self.config.ack_delay_ms,
            no_ack=self.config.no_ack,
            error_after=self.config.error_after,
            garbage=self.config.garbage,
        )
        self.rooms = RoomHub(self._events)
        self._rtc = RtcEndpoints(self.rooms, self._events, single_pc=self.config.lk_single_pc)
        self._counter = itertools.count(1)
        self._connections = 0
        self._inputs: dict[int, deque[av.VideoFrame]] = {}  # insertion-ordered: oldest first
        self._sessions: set[Session] = set()
        self._by_id: dict[str, Session] = {}
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port = 0

    # -- properties -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (valid after :meth:`start`)."""
        return self._port

    @property
    def http_url(self) -> str:
        """``http://HOST:PORT``: the REST base URL."""
        return f"http://{self.config.host}:{self._port}"

    @property
    def ws_url(self) -> str:
        """``ws://HOST:PORT``: the realtime base URL (``/v1/stream`` is appended by clients)."""
        return f"ws://{self.config.host}:{self._port}"

    @property
    def events(self) -> list[dict[str, Any]]:
        """A copy of every session event so far."""
        return self._events.snapshot()

    @property
    def connections(self) -> int:
        """WebSocket connections accepted so far (including rejected ones)."""
        return self._connections

    def input_frames(self, conn: int) -> list[npt.NDArray[Any]]:
        """The last few input frames of connection ``conn`` as BGR arrays (oldest first)."""
        source = self._inputs.get(conn, deque())
        for _ in range(10):  # the loop thread may append meanwhile; a copy is retried, never locked
            try:
                frames = list(source)
                break
            except RuntimeError:
                continue
        else:
            frames = []
        return [f.to_ndarray(format="bgr24") for f in frames]

    def issue_token(
        self,
        expires_in: int = 60,
        allowed_models: list[str] | None = None,
        *,
        allowed_origins: list[str] | None = None,
        max_session_duration: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Issue a client token exactly as ``POST /v1/client/tokens`` would (no key needed).

        Raises:
            ValueError: the same validation failures the REST endpoint answers with 400.
        """
        body: dict[str, Any] = {"expiresIn": expires_in}
        if allowed_models is not None:
            body["allowedModels"] = allowed_models
        if allowed_origins is not None:
            body["allowedOrigins"] = allowed_origins
        if max_session_duration is not None:
            body["constraints"] = {"realtime": {"maxSessionDuration": max_session_duration}}
        if metadata is not None:
            body["metadata"] = metadata
        try:
            return self.tokens.issue_from_body(body)
        except TokenError as exc:
            raise ValueError(exc.message) from exc

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving. After this, :attr:`port` is the real port."""
        if self.config.loopback_only:
            from decart_cli.transport.ice import offer_loopback_only

            offer_loopback_only()  # process-wide: every aiortc peer in this process offers 127.0.0.1
        app = web.Application(client_max_size=MAX_MSG_SIZE)
        app.router.add_get("/v1/stream", self._handle_stream)
        app.router.add_get("/subscribe/{session_id}", self._handle_subscribe)
        app.router.add_post("/v1/client/tokens", self._handle_tokens)
        app.router.add_get("/api/auth/jwks", self._handle_jwks)
        app.router.add_get("/", self._handle_root)
        self._rtc.add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self._site = site
        server = site._server  # aiohttp exposes the bound sockets only here
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1]) if sockets else self.config.port
        self._events.add("listening", url=self.http_url)

    async def stop(self) -> None:
        """End every session (``generation_ended`` + close), then stop listening. Idempotent."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        if self._site is not None:
            await self._site.stop()  # no new connections while the sessions wind down
        sessions = list(self._sessions)
        if sessions:

            async def finish(session: Session) -> None:
                await session.end("disconnect", code=1001)
                await session.done.wait()  # its peer connection is closed, not just its socket

            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(finish(s) for s in sessions), return_exceptions=True), SHUTDOWN_TIMEOUT
                )
        await runner.cleanup()
        self._events.add("stopped")

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- handlers -------------------------------------------------------------------------------

    async def _handle_root(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"service": "decart serve", "stream": "/v1/stream", "tokens": "/v1/client/tokens", "livekit": "/rtc"}
        )

    async def _handle_jwks(self, request: web.Request) -> web.Response:
        """The public key the client tokens' JWTs are signed with (the platform serves its own here)."""
        return web.json_response(self.tokens.jwks())

    async def _handle_tokens(self, request: web.Request) -> web.Response:
        key = request.headers.get("X-API-KEY")  # CIMultiDict: the header name is case-insensitive
        try:
            body = await request.json()
        except ValueError:
            body = None
        try:
            if body is None:
                self.tokens.check_key(key)  # a bad key wins over a bad body (401 before 400)
                raise TokenError(400, "request body must be a JSON object")
            response = self.tokens.create(key, body)
        except TokenError as exc:
            self._events.add("token_rejected", status=exc.status, error=exc.message)
            return web.json_response({"error": exc.message}, status=exc.status)
        self._events.add(
            "token_issued",
            expires_at=response["expiresAt"],
            permissions=response.get("permissions"),
            constraints=response.get("constraints"),
        )
        return web.json_response(response)

    async def _handle_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MSG_SIZE, timeout=3.0, heartbeat=None)
        await ws.prepare(request)
        self._connections += 1
        conn = next(self._counter)
        query = {k: ("***" if k == "api_key" else v) for k, v in request.query.items()}
        wire_model = request.query.get("model", "")
        self._events.add("connect", conn, model=wire_model, query=query, origin=request.headers.get("Origin"))
        faults = self._faults.for_connection(conn)

        async def reject(text: str, code: int, kind: str) -> web.WebSocketResponse:
            self._events.add("rejected", conn, reason=kind, error=text)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(m.encode(m.Error(text)))
                self._events.add("sent", conn, type="error", error=text)
                await ws.close(code=code, message=text.encode()[:120])
            self._events.add("close", conn, code=code)
            return ws

        if faults.reject:
            self._events.add("fault", conn, fault="reject_first")
            return await reject(CAPACITY_ERROR, CAPACITY_CLOSE_CODE, "capacity")
        try:
            access: Access = self.tokens.check_key(request.query.get("api_key"))
        except TokenError as exc:
            return await reject(exc.message, POLICY_CLOSE_CODE, "auth")
        model = resolve_model(wire_model) if wire_model else None
        if model is None:
            return await reject(f"Invalid model: {wire_model}", POLICY_CLOSE_CODE, "model")
        size = output_size(model, request.query.get("resolution"))
        if size is None:
            return await reject(
                f"Invalid resolution: {request.query.get('resolution')}", POLICY_CLOSE_CODE, "resolution"
            )
        speed = request.query.get("speed")
        if speed not in (None, "", *catalog.SPEEDS):
            return await reject(f"Invalid speed: {speed}", POLICY_CLOSE_CODE, "speed")
        if speed and speed not in model.speeds:
            self._events.add("note", conn, detail=f"speed={speed} ignored: {model.name} has no such tier")
        try:
            self.tokens.check_model(access, model.name)
            self.tokens.check_origin(access, request.headers.get("Origin"))
        except TokenError as exc:
            return await reject(exc.message, POLICY_CLOSE_CODE, "token")

        inputs: deque[av.VideoFrame] = deque(maxlen=INPUT_FRAMES_KEPT)
        self._inputs[conn] = inputs
        # Keep the recent frames of the last few connections only: a long-running `decart serve`
        # (the soak drops the connection every minute for 10 minutes) must not grow per connection.
        while len(self._inputs) > INPUT_CONNECTIONS_KEPT:
            del self._inputs[next(iter(self._inputs))]
        session = Session(
            conn=conn,
            ws=ws,
            request=request,
            size=size,
            faults=faults,
            events=self._events,
            inputs=inputs,
            server_port=self._port,
            tick_interval=self.config.tick_interval,
            max_duration=access.max_session_duration,
            claim_drop=self._faults.claim_drop,
            hub=self.rooms,
            livekit=LiveKitSettings(
                livekit_url=f"ws://{request.host}" if request.host else self.ws_url,
                queue=self.config.queue,
                queue_interval=self.config.queue_interval,
                republish_after=self.config.republish_after,
                drop_after=self.config.lk_drop_after,
            ),
        )
        self._events.add(
            "session",
            conn,
            model=model.name,
            size=f"{model.width}x{model.height}",
            credential="client token" if access.token else "api key",
        )
        self._sessions.add(session)
        self._by_id[session.session_id] = session
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            self._by_id.pop(session.session_id, None)
        return ws

    async def _handle_subscribe(self, request: web.Request) -> web.WebSocketResponse:
        """A receive-only viewer of a running session (decart-protocol.md §2.6); see ``viewer.py``."""
        ws = web.WebSocketResponse(max_msg_size=MAX_MSG_SIZE, timeout=3.0, heartbeat=None)
        await ws.prepare(request)
        self._connections += 1
        conn = next(self._counter)
        session_id = request.match_info["session_id"]
        query = {k: ("***" if k == "api_key" else v) for k, v in request.query.items()}
        self._events.add("connect", conn, subscribe=session_id, query=query, origin=request.headers.get("Origin"))
        error: str | None = None
        try:
            self.tokens.check_key(request.query.get("api_key"))
        except TokenError as exc:
            error = exc.message
        producer = self._by_id.get(session_id)
        if error is None and producer is None:
            error = "Invalid session"  # "invalid session" is permanent for the SDKs
        if error is not None or producer is None:
            self._events.add("rejected", conn, reason="subscribe", error=error)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(m.encode(m.Error(error or "Invalid session")))
                await ws.close(code=POLICY_CLOSE_CODE)
            self._events.add("close", conn, code=POLICY_CLOSE_CODE)
            return ws
        await Viewer(conn=conn, ws=ws, producer=producer, events=self._events).run()
        return ws


class EmulatorThread:
    """The emulator on its own event loop in a daemon thread: ``with EmulatorThread(cfg) as emu:``.

    Exposes the same ``port``/``http_url``/``ws_url``/``events``/``connections``/``input_frames``/
    ``issue_token`` as :class:`Emulator`; all are safe to call from the caller's thread.
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        self.emulator = Emulator(config, **overrides)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until the port is bound.

        Raises:
            RuntimeError: the emulator did not start (the cause is chained).
        """
        self._thread = threading.Thread(target=self._run, name="decart-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"emulator did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"emulator failed to start: {self._error}") from self._error

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the emulator (sessions end cleanly) and join the thread. Idempotent."""
        if self._loop is not None and self._stop is not None and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.emulator.start()
        except BaseException as exc:  # reported to start() in the caller's thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.emulator.stop()

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the Emulator API, from any thread ------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        """The configuration in use."""
        return self.emulator.config

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self.emulator.port

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.emulator.http_url

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT``."""
        return self.emulator.ws_url

    @property
    def events(self) -> list[dict[str, Any]]:
        """A copy of every session event so far."""
        return self.emulator.events

    @property
    def connections(self) -> int:
        """WebSocket connections accepted so far."""
        return self.emulator.connections

    def input_frames(self, conn: int) -> list[npt.NDArray[Any]]:
        """See :meth:`Emulator.input_frames`."""
        return self.emulator.input_frames(conn)

    def issue_token(
        self, expires_in: int = 60, allowed_models: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """See :meth:`Emulator.issue_token`."""
        return self.emulator.issue_token(expires_in, allowed_models, **kwargs)
