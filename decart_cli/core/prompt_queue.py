"""Debounced, coalescing prompt updates: latest wins, never more than one update in flight.

Pure logic, fed explicit timestamps (seconds, any monotonic origin); the caller owns the clock and
the sending. Typical use by the stream runner::

    queue = PromptQueue(PromptState(prompt="anime"), debounce=0.5)
    queue.type_prompt("cyber", now)          # the user typed: send after a pause
    queue.submit_prompt("cyberpunk", now)    # Enter: send at once
    update = queue.next_due(now)             # -> PromptState to send, or None
    ...await session.set_prompt(...)
    queue.finish(success=True)               # the ack arrived (or failed)
    queue.wake_at()                          # when to call next_due() again (None = nothing to do)

Rules (client-behaviour.md C "Debounce" proposal, and J.19 "serialise set calls"):

* Typed edits are trailing-debounced: each edit pushes the send time to ``now + debounce``.
* Submitted updates (Enter, ``/image``, ``/enhance``, scripted prompts) are due at once.
* Each of the two pending slots (submitted, typed) keeps only its newest value (coalescing), so a
  burst of edits while an update awaits its acknowledgement ends in one more update carrying the
  latest text; a submission is never replaced by keys typed after it.
* At most one update is in flight: :meth:`next_due` returns ``None`` until :meth:`finish` is called.
* An update equal to what the server already holds (the last acknowledged state, or the one in
  flight) is dropped instead of sent.
* Empty or whitespace-only prompts are never sent (the SDKs reject them too, J.17).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["DEFAULT_DEBOUNCE", "PromptQueue", "PromptState"]

DEFAULT_DEBOUNCE = 0.5  # seconds of typing pause before a typed prompt is sent


@dataclass(frozen=True)
class PromptState:
    """The whole generation state the server should hold (``set()`` replaces all of it).

    Attributes:
        prompt: the prompt text, or ``None`` for none.
        enhance: let the server expand the prompt (``enhance_prompt``).
        image: reference image bytes, or ``None``. When present every update must carry it
            together with the prompt (an atomic ``set``), because a prompt-only ``set`` clears it.
        image_name: a display name for the image (file name), not sent.
    """

    prompt: str | None = None
    enhance: bool = True
    image: bytes | None = None
    image_name: str | None = None

    @property
    def sendable(self) -> bool:
        """True when there is something to send: a non-blank prompt or an image."""
        return self.image is not None or (self.prompt is not None and self.prompt.strip() != "")

    def __repr__(self) -> str:  # image bytes can be megabytes: never print them
        size = "None" if self.image is None else f"<{len(self.image)} bytes>"
        return f"PromptState(prompt={self.prompt!r}, enhance={self.enhance}, image={size})"


class PromptQueue:
    """The coalescing update slots between the input line and the session.

    Two slots, each holding only its latest value: *submitted* (due at once: Enter, ``/image``,
    ``/enhance``, a scripted prompt) and *typed* (due after the pause). A submission is never
    overwritten by keys typed after it: it goes out first, the typed text after its pause.

    Args:
        initial: the state the session was opened with (assumed applied by the initial handshake).
        debounce: seconds of inactivity after the last typed edit before it is sent.
    """

    def __init__(self, initial: PromptState | None = None, *, debounce: float = DEFAULT_DEBOUNCE) -> None:
        if debounce < 0:
            raise ValueError(f"debounce must be >= 0, got {debounce}")
        self._debounce = debounce
        self._applied = initial or PromptState()
        self._desired = self._applied
        self._submitted: PromptState | None = None
        self._submitted_at = 0.0
        self._typed: PromptState | None = None
        self._typed_due = 0.0
        self._in_flight: PromptState | None = None
        self.sent = 0  # updates handed out by next_due()
        self.failed = 0  # updates that finished with success=False

    # -- what the caller reads ----------------------------------------------------------------------

    @property
    def desired(self) -> PromptState:
        """The latest state the user asked for (pending, in flight or applied)."""
        return self._desired

    @property
    def applied(self) -> PromptState:
        """The last state the server acknowledged."""
        return self._applied

    @property
    def in_flight(self) -> PromptState | None:
        """The update awaiting its acknowledgement, if any."""
        return self._in_flight

    @property
    def pending(self) -> PromptState | None:
        """The newest update waiting to be sent (typed text in its pause, or a queued submission)."""
        return self._typed or self._submitted

    def wake_at(self) -> float | None:
        """When :meth:`next_due` may next return an update; ``None`` when nothing can be sent now.

        ``None`` is returned while an update is in flight (call again after :meth:`finish`) and when
        nothing is pending.
        """
        if self._in_flight is not None:
            return None
        if self._submitted is not None:
            return self._submitted_at
        return self._typed_due if self._typed is not None else None

    # -- what the user does -------------------------------------------------------------------------

    def type_prompt(self, text: str, now: float) -> None:
        """The input line changed to ``text``: send it once typing pauses for ``debounce`` seconds.

        Blank text cancels the typed update (nothing is sent for an empty line); a submission
        already queued still goes out.
        """
        if not text.strip():
            if self._typed is not None:
                self._typed = None
                self._desired = self._submitted or self._in_flight or self._applied
            return
        state = replace(self._desired, prompt=text)
        self._desired = state
        if state == (self._submitted or self._server()) or not state.sendable:
            self._typed = None  # back to what is (or is about to be) on the server
            return
        self._typed, self._typed_due = state, now + self._debounce

    def submit_prompt(self, text: str, now: float) -> bool:
        """Send ``text`` as the prompt at once (Enter, scripted prompt). Returns False when blank."""
        if not text.strip():
            return False
        self._submit(replace(self._desired, prompt=text), now)
        return True

    def submit_image(self, image: bytes | None, now: float, *, name: str | None = None) -> None:
        """Set (or clear, with ``None``) the reference image together with the current prompt, at once."""
        self._submit(replace(self._desired, image=image, image_name=name if image is not None else None), now)

    def submit_enhance(self, enhance: bool, now: float) -> None:
        """Change prompt enhancement; re-sends the current state at once when it changes."""
        self._submit(replace(self._desired, enhance=enhance), now)

    # -- what the sender does -----------------------------------------------------------------------

    def next_due(self, now: float) -> PromptState | None:
        """The update to send now, marked in flight; ``None`` when nothing is due or one is in flight.

        After a non-``None`` return the caller must call :meth:`finish` exactly once.
        """
        if self._in_flight is not None:
            return None
        update: PromptState | None = None
        if self._submitted is not None:
            update, self._submitted = self._submitted, None
        elif self._typed is not None and now >= self._typed_due:
            update, self._typed = self._typed, None
        if update is None or update == self._applied:
            return None
        self._in_flight = update
        self.sent += 1
        return update

    def finish(self, *, success: bool) -> PromptState:
        """The in-flight update was acknowledged (``success``) or failed. Returns that update.

        Raises:
            RuntimeError: nothing is in flight (a caller bug).
        """
        if self._in_flight is None:
            raise RuntimeError("finish() called with no update in flight")
        update, self._in_flight = self._in_flight, None
        if success:
            self._applied = update
        else:
            self.failed += 1
            if self.pending is None:
                # Nothing newer is queued: the desired state falls back to what the server holds,
                # so the panel shows the truth and the next edit starts from it.
                self._desired = self._applied
        return update

    # -- internals ----------------------------------------------------------------------------------

    def _server(self) -> PromptState:
        """What the server holds once the in-flight update (if any) is acknowledged."""
        return self._in_flight or self._applied

    def _submit(self, state: PromptState, now: float) -> None:
        self._desired = state
        self._typed = None  # the submission was built from the typed text: it supersedes it
        if state == self._server() or not state.sendable:
            self._submitted = None
            return
        self._submitted, self._submitted_at = state, now
