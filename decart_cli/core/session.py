"""The realtime session protocol without I/O (decart-protocol.md §2–§5; decart-protocol-2026-11.md §3).

Like websockets' ``protocol.py``: the driver (:mod:`decart_cli.realtime`) feeds what happened —
frames through :meth:`SessionCore.receive_message`, lifecycle facts through ``begin_attempt`` /
``peer_connected`` / ``start_reconnecting`` / ``finish`` — and collects what to do:
:meth:`SessionCore.data_to_send` (text frames), :meth:`SessionCore.events_received` (public
:mod:`~decart_cli.core.events`) and :meth:`SessionCore.actions` (work for the driver: apply an
answer, add a remote candidate, resolve a waiting call). No asyncio, sockets or clocks.

Acks carry little to match on (§2.4): a ``prompt_ack`` echoes the prompt text, so waits are kept
FIFO *per text* (two identical prompts in flight do not collide as in the Python SDK); a
``set_image_ack`` carries nothing, so waits are resolved in request order. A server ``error``
fails every pending wait at once with its text.

Two eras share this core; only how media gets connected differs (``transport``):

* ``"webrtc"`` (direct): initial state → its ack → SDP ``offer`` → ``answer`` / ``ice-candidate``
  (actions :class:`ApplyAnswer`, :class:`AddCandidate`).
* ``"livekit"``: ``livekit_join`` followed at once by the initial state (see :meth:`SessionCore.send_initial`
  for why), then ``queue_position`` / ``status`` while waiting for capacity (events :class:`~ev.Queued`,
  :class:`~ev.ServiceStatus`), then ``livekit_room_info`` (action :class:`JoinRoom`).

``generation_ended`` with a final reason (``timeout``: the token's session limit; no credits;
moderation) produces the action :class:`Ended`: the driver ends the session instead of reconnecting.
Server errors reach the events already explained in words (:mod:`decart_cli.core.server_errors`).

The core keeps the user's *latest desired* state (prompt, enhance, image) and sends it as the
initial state of every (re)connection. Both official SDKs get this wrong: JS replays the
connect-time state and Python falls back to passthrough, so a prompt set after connect is lost on
the first network blip (§4.3).
"""

from __future__ import annotations

import base64
import enum
import logging
from collections import deque
from dataclasses import dataclass, replace
from typing import Literal

from decart_cli.core import events as ev
from decart_cli.core import messages as msg
from decart_cli.core.server_errors import Explained, explain, explain_end
from decart_cli.errors import InvalidState, ProtocolError, UsageError

__all__ = [
    "AddCandidate",
    "ApplyAnswer",
    "ConnectionState",
    "DesiredState",
    "Ended",
    "JoinRoom",
    "Resolved",
    "TransportKind",
    "SessionCore",
    "full_state_message",
    "initial_message",
]

logger = logging.getLogger(__name__)

TransportKind = Literal["livekit", "webrtc"]


class ConnectionState(enum.Enum):
    """The session's state, the same five as both SDKs (§4)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    GENERATING = "generating"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


_LIVE = (ConnectionState.CONNECTED, ConnectionState.GENERATING)


@dataclass(frozen=True)
class DesiredState:
    """What the user wants the model to do.

    Attributes:
        prompt: the text prompt, or ``None``.
        enhance: let the server enhance the prompt (``enhance_prompt``).
        image: raw reference image bytes (PNG/JPEG/WebP), or ``None``. ``prompt`` and ``image``
            both ``None`` means passthrough (the output echoes the input).
    """

    prompt: str | None = None
    enhance: bool = True
    image: bytes | None = None

    @property
    def passthrough(self) -> bool:
        """True when neither a prompt nor an image is set."""
        return self.prompt is None and self.image is None

    def __repr__(self) -> str:  # never dump megabytes of image into a log line
        image = "None" if self.image is None else f"<{len(self.image)} bytes>"
        return f"DesiredState(prompt={self.prompt!r}, enhance={self.enhance!r}, image={image})"


# --- work for the driver ------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyAnswer:
    """Call ``setRemoteDescription`` with this SDP answer."""

    sdp: str


@dataclass(frozen=True)
class AddCandidate:
    """Add this remote ICE candidate (``{candidate, sdpMid, sdpMLineIndex}``), queued until the answer."""

    candidate: dict[str, object]


@dataclass(frozen=True)
class JoinRoom:
    """LiveKit era: connect the media to this room (``livekit_room_info``; its ``token`` is a secret)."""

    info: msg.LivekitRoomInfo


@dataclass(frozen=True)
class Ended:
    """The server ended the session for good (``generation_ended`` with a final reason).

    ``clean`` marks an end that is not an error (``timeout``: the token's session limit); otherwise
    ``explained`` says why it failed. The driver must not reconnect.
    """

    reason: str
    explained: Explained
    clean: bool


@dataclass(frozen=True)
class Resolved:
    """The wait behind ``ticket`` is over.

    ``success`` false means ``error`` says why; ``ack`` marks an answer from an ack (a rejection
    when ``success`` is false); ``server`` marks an ``error`` message from the server; ``deferred``
    means the connection dropped but the request is part of the desired state and will be applied
    by the reconnect. Otherwise the wait was ended locally (socket lost, superseded, closed).
    """

    ticket: int
    success: bool
    error: str | None = None
    server: bool = False
    deferred: bool = False
    ack: bool = False


Action = ApplyAnswer | AddCandidate | JoinRoom | Ended | Resolved


def _b64(image: bytes | None) -> str | None:
    return None if image is None else base64.b64encode(image).decode("ascii")


def initial_message(desired: DesiredState) -> msg.SetImage | msg.Prompt:
    """The initial-state message exactly as the Python SDK sends it (§2.3 step 4).

    Image → ``set_image{image_data, prompt?, enhance_prompt}``; prompt only → ``prompt{prompt,
    enhance_prompt}``; neither → passthrough ``set_image{image_data: null, prompt: null}``.
    """
    if desired.image is not None:
        prompt: str | msg.Omit = msg.OMIT if desired.prompt is None else desired.prompt
        return msg.SetImage(_b64(desired.image), prompt, desired.enhance)
    if desired.prompt is not None:
        return msg.Prompt(desired.prompt, desired.enhance)
    return msg.SetImage(None, None)


def full_state_message(desired: DesiredState) -> msg.SetImage:
    """One ``set_image`` that establishes ``desired`` completely (image ``null`` clears it)."""
    if desired.passthrough:
        return msg.SetImage(None, None)
    prompt: str | msg.Omit = msg.OMIT if desired.prompt is None else desired.prompt
    return msg.SetImage(_b64(desired.image), prompt, desired.enhance)


class SessionCore:
    """State machine and ack bookkeeping of one realtime session, across reconnects.

    Args:
        desired: the initial desired state (sent as the initial state of the first connection).
        transport: ``"webrtc"`` (SDP on the socket) or ``"livekit"`` (a LiveKit room).
        client_token: the credential is a client token (server refusals then name the token).
        model: the model asked for (named in explanations).
        frame_timing: LiveKit: the join asks for capture timestamps echoed on output frames
            (``client_capabilities: {"frame_timing": true}``, decart-protocol-2026-11.md §6).
    """

    def __init__(
        self,
        desired: DesiredState | None = None,
        *,
        transport: TransportKind = "webrtc",
        client_token: bool = False,
        model: str | None = None,
        frame_timing: bool = False,
    ) -> None:
        self.transport: TransportKind = transport
        self.frame_timing = frame_timing
        self.client_token = client_token
        self.model = model
        self._state = ConnectionState.DISCONNECTED
        self._desired = desired or DesiredState()
        self._sent_initial: DesiredState | None = None
        self.session_id: str | None = None
        self.server_error: str | None = None  # first server error of the current attempt (raw text)
        self.queue: tuple[int, int] | None = None  # (position, size) while waiting for capacity
        self._reported: set[str] = set()  # error messages already emitted (each is reported once)
        self._tick: float = 0  # this server session's cumulative seconds
        self._tick_base: float = 0  # seconds of previous server sessions
        self._next_ticket = 0
        self._prompts: dict[str, deque[int]] = {}
        self._images: deque[int] = deque()
        self._out: list[str] = []
        self._events: list[ev.Event] = []
        self._actions: list[Action] = []

    # --- outputs ---------------------------------------------------------------------------------

    def data_to_send(self) -> list[str]:
        """Text frames to send, in order; the list is emptied."""
        out, self._out = self._out, []
        return out

    def events_received(self) -> list[ev.Event]:
        """Public events produced since the last call, in order; the list is emptied."""
        out, self._events = self._events, []
        return out

    def actions(self) -> list[Action]:
        """Driver work produced since the last call, in order; the list is emptied."""
        out, self._actions = self._actions, []
        return out

    # --- properties ------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._state

    @property
    def live(self) -> bool:
        """The media is up: ``connected`` or ``generating``."""
        return self._state in _LIVE

    @property
    def desired(self) -> DesiredState:
        """The latest state the user asked for (re-sent on every reconnect)."""
        return self._desired

    @property
    def total_seconds(self) -> float:
        """Billed seconds over every server session so far."""
        return self._tick_base + self._tick

    @property
    def pending(self) -> int:
        """How many acks are awaited."""
        return len(self._images) + sum(len(q) for q in self._prompts.values())

    def _set_state(self, new: ConnectionState) -> None:
        """The one setter: emits :class:`StateChanged` for every change; ``generating`` is sticky."""
        old = self._state
        if old is new:
            return
        if old is ConnectionState.GENERATING and new not in (
            ConnectionState.DISCONNECTED,
            ConnectionState.RECONNECTING,
        ):
            return
        self._state = new
        self._events.append(ev.StateChanged(old, new))
        if old is ConnectionState.RECONNECTING and new in _LIVE:
            self._catch_up()

    # --- lifecycle (called by the driver) --------------------------------------------------------

    def begin_attempt(self) -> None:
        """A new connection attempt starts: ``connecting`` (or stays ``reconnecting``).

        Per-attempt data is reset; the ticks of the previous server session are folded into the
        running total.
        """
        self._fail_pending("superseded by a new connection attempt")
        self.session_id = None
        self.server_error = None
        self.queue = None
        self._sent_initial = None
        self._tick_base += self._tick
        self._tick = 0
        if self._state is not ConnectionState.RECONNECTING:
            self._set_state(ConnectionState.CONNECTING)

    def send_initial(self) -> int:
        """Queue the opening messages of an attempt for the latest desired state; returns the ticket
        of the initial state's ack.

        Direct: the initial state alone; the driver waits for its ack before creating the offer
        (decart-protocol.md §2.3: ack before offer).

        LiveKit: ``{"type": "livekit_join", "passthrough": <bool>}`` (plus ``client_capabilities:
        {"frame_timing": true}`` when asked, as the JS SDK) and, right behind it, the
        initial state as its own ``set_image``/``prompt`` (the JS SDK's variant and order,
        decart-protocol-2026-11.md §3.3). Why this variant: the state reaches the server before
        the room exists, so the model has the prompt and image before the first frame (the C++
        SDK's reason for its ordering) without the extra round trip the Python SDK spends waiting
        for room info first; a separate state message is acknowledged like every later update
        (whether an ``initial_state`` embedded in the join is acknowledged is not documented);
        and ``passthrough`` tells the server what to do with frames that beat the state. The
        passthrough case still sends ``set_image{null, null}`` (the Python SDK's kick-off), so every
        attempt has exactly one ack to wait for, as on the direct path.
        """
        self._sent_initial = self._desired
        if self.transport == "livekit":
            caps: dict[str, object] | msg.Omit = {"frame_timing": True} if self.frame_timing else msg.OMIT
            self._out.append(
                msg.encode(msg.LivekitJoin(passthrough=self._desired.passthrough, client_capabilities=caps))
            )
        return self._send(initial_message(self._desired))

    def send_offer(self, sdp: str) -> None:
        """Queue the SDP offer."""
        self._out.append(msg.encode(msg.Offer(sdp)))

    def peer_connected(self) -> None:
        """The peer connection reached ``connected``: state ``connected`` (unless generating)."""
        if self._state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            self._set_state(ConnectionState.CONNECTED)

    def start_reconnecting(self, reason: str) -> bool:
        """An established connection was lost; returns False if a reconnect is already under way.

        Only the first of several outage signals (socket closed, peer failed, media stall) gets
        True, so the driver runs one reconnect loop. Pending requests are resolved as
        ``deferred``: they are part of the desired state, which the reconnect re-sends.
        """
        if self._state not in _LIVE:
            return False
        logger.info("connection lost (%s); reconnecting", reason)
        self._set_state(ConnectionState.RECONNECTING)
        self._resolve_all(Resolved(0, True, None, deferred=True))
        return True

    def attempt_failed(self, error: str) -> None:
        """A (re)connection attempt failed: pending waits fail with ``error``, state unchanged."""
        self._fail_pending(self.server_error or error)

    def note(self, event: ev.Event) -> None:
        """Record a driver-made event (reconnect progress, stats) so ordering is kept."""
        self._events.append(event)

    def finish(
        self, error: str | None = None, *, permanent: bool = False, source: str = "connection", hint: str | None = None
    ) -> None:
        """The session is over: ``disconnected``, pending waits fail, one ``ErrorEvent`` if ``error``.

        An error already reported (the server's ``error`` that ended the session) is not reported
        again: every error reaches the user once.
        """
        self._fail_pending(error or "session closed")
        self._set_state(ConnectionState.DISCONNECTED)
        if error is not None:
            self._report(ev.ErrorEvent(error, permanent, source, hint))

    def explain(self, text: str) -> Explained:
        """A server text in words, for this session's credential kind and model."""
        return explain(text, client_token=self.client_token, model=self.model)

    def _report(self, event: ev.ErrorEvent) -> None:
        if event.message not in self._reported:
            self._reported.add(event.message)
            self._events.append(event)

    # --- user requests ---------------------------------------------------------------------------

    def set(self, *, prompt: str | None = None, image: bytes | None = None, enhance: bool = True) -> int | None:
        """Replace the whole state with one ``set_image`` message; returns the ticket to await.

        ``image=None`` sends ``image_data: null``, which **clears** the reference image (as the
        SDKs' ``set()``); ``prompt=None`` omits the prompt, so the server keeps its current one and
        the desired state keeps it too. While reconnecting, the state is only stored (returns
        ``None``) and the reconnect applies it.

        Raises:
            UsageError: neither prompt nor image, an empty prompt, or an empty image.
            InvalidState: not connected and not reconnecting.
        """
        if prompt is None and image is None:
            raise UsageError("set() needs a prompt or an image", hint="give --prompt TEXT or --image FILE")
        _check_prompt(prompt)
        if image is not None and not image:
            raise UsageError("the reference image is empty (0 bytes)", hint="choose a PNG, JPEG or WebP file")
        self._guard()
        kept = self._desired.prompt if prompt is None else prompt
        self._desired = DesiredState(prompt=kept, enhance=enhance, image=image)
        if self._state is ConnectionState.RECONNECTING:
            return None
        wire_prompt: str | msg.Omit = msg.OMIT if prompt is None else prompt
        return self._send(msg.SetImage(_b64(image), wire_prompt, enhance))

    def set_prompt(self, text: str, enhance: bool = True) -> int | None:
        """Change only the prompt with a ``prompt`` message (keeps the image); returns the ticket.

        While reconnecting, the prompt is only stored (returns ``None``).

        Raises:
            UsageError: empty prompt.
            InvalidState: not connected and not reconnecting.
        """
        _check_prompt(text)
        self._guard()
        self._desired = replace(self._desired, prompt=text, enhance=enhance)
        if self._state is ConnectionState.RECONNECTING:
            return None
        return self._send(msg.Prompt(text, enhance))

    def _guard(self) -> None:
        if self._state not in (*_LIVE, ConnectionState.RECONNECTING):
            raise InvalidState(
                f"cannot send: connection is {self._state.value}", hint="wait for the session to connect"
            )

    # --- incoming frames -------------------------------------------------------------------------

    def receive_message(self, data: str | bytes) -> None:
        """Feed one frame from the server. Malformed or unknown frames are logged and ignored."""
        if self._state is ConnectionState.DISCONNECTED:
            logger.debug("frame after disconnect ignored")
            return
        try:
            message = msg.decode_server(data)
        except ProtocolError as exc:
            logger.warning("ignored server frame: %s", exc)
            return
        match message:
            case msg.SessionId():
                self._session_started(message.session_id)
            case msg.LivekitRoomInfo() if self.transport == "livekit":
                self.queue = None
                self._session_started(message.session_id)
                self._actions.append(JoinRoom(message))
            case msg.QueuePosition():
                self.queue = (message.position, message.queue_size)
                self._events.append(ev.Queued(message.position, message.queue_size))
            case msg.Status():
                self._events.append(ev.ServiceStatus(message.status))
            case msg.Answer() if self.transport == "webrtc":
                self._actions.append(ApplyAnswer(message.sdp))
            case msg.IceCandidate() if self.transport == "webrtc":
                if message.candidate and message.candidate.get("candidate"):
                    self._actions.append(AddCandidate(dict(message.candidate)))
            case msg.GenerationEnded():
                self._on_ended(message)
            case msg.PromptAck():
                self._on_prompt_ack(message)
            case msg.SetImageAck():
                self._on_image_ack(message)
            case msg.GenerationStarted():
                self._set_state(ConnectionState.GENERATING)
                self._events.append(ev.GenerationStarted())
            case msg.GenerationTick():
                self._tick = message.seconds
                self._events.append(ev.Tick(message.seconds, self.total_seconds))
            case msg.Error():
                self._on_error(message.error)
            case _:  # the legacy ready; the other era's media messages
                logger.debug("server %s ignored", message.type)

    def _session_started(self, session_id: str) -> None:
        # LiveKit-era servers may still send the legacy session_id besides the room info: one event.
        if session_id != self.session_id:
            self.session_id = session_id
            self._events.append(ev.SessionStarted(session_id))

    def _on_prompt_ack(self, ack: msg.PromptAck) -> None:
        self._events.append(ev.Ack("prompt", ack.prompt, ack.success, ack.error))
        queue = self._prompts.get(ack.prompt)
        if not queue:
            logger.debug("prompt_ack for a prompt nobody waits for: %r", ack.prompt)
            return
        ticket = queue.popleft()
        if not queue:
            del self._prompts[ack.prompt]
        error = None if ack.success else ack.error or "Failed to send prompt"
        self._actions.append(Resolved(ticket, ack.success, error, ack=True))

    def _on_image_ack(self, ack: msg.SetImageAck) -> None:
        self._events.append(ev.Ack("set_image", None, ack.success, ack.error))
        if not self._images:
            logger.debug("set_image_ack nobody waits for")
            return
        ticket = self._images.popleft()
        error = None if ack.success else ack.error or "Failed to set image"
        self._actions.append(Resolved(ticket, ack.success, error, ack=True))

    def _on_error(self, text: str) -> None:
        if self.server_error is None:
            self.server_error = text
        self._resolve_all(Resolved(0, False, text, server=True))
        said = self.explain(text)
        self._report(ev.ErrorEvent(said.message, said.permanent, "server", said.hint))

    def _on_ended(self, ended: msg.GenerationEnded) -> None:
        """``generation_ended``: unreliable as a signal (never sent on drops), final for some reasons."""
        final = explain_end(ended.reason, ended.seconds)
        self._tick = max(self._tick, ended.seconds)
        self._events.append(ev.GenerationEnded(ended.seconds, ended.reason, final is not None))
        if final is not None:
            self._actions.append(Ended(ended.reason, final, clean=not final.permanent))

    # --- helpers ---------------------------------------------------------------------------------

    def _send(self, message: msg.SetImage | msg.Prompt) -> int:
        self._next_ticket += 1
        ticket = self._next_ticket
        if isinstance(message, msg.Prompt):
            self._prompts.setdefault(message.prompt, deque()).append(ticket)
        else:
            self._images.append(ticket)
        self._out.append(msg.encode(message))
        return ticket

    def _catch_up(self) -> None:
        # A set()/set_prompt() stored while the reconnect was already past its initial state.
        if self._sent_initial is not None and self._sent_initial != self._desired:
            self._sent_initial = self._desired
            self._send(full_state_message(self._desired))

    def _resolve_all(self, template: Resolved) -> None:
        tickets = [*self._images, *(t for q in self._prompts.values() for t in q)]
        self._images.clear()
        self._prompts.clear()
        for ticket in sorted(tickets):
            self._actions.append(replace(template, ticket=ticket))

    def _fail_pending(self, error: str) -> None:
        self._resolve_all(Resolved(0, False, error))


def _check_prompt(prompt: str | None) -> None:
    if prompt is not None and not prompt.strip():
        raise UsageError("the prompt is empty", hint="type some text, or omit --prompt for passthrough")
