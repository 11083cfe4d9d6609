"""What feeds a running :class:`~decart_cli.runtime.StreamRunner`: prompt updates and the input line.

:class:`UpdatePump` sends the prompt queue's due updates to the session, one at a time, and plays
``--prompts``. :class:`CommandHandler` turns keys into line edits (typed text becomes a debounced
prompt) and submitted lines into actions.

A submitted line that does not start with ``/`` is a prompt (sent at once). Commands:

    /image PATH        set the reference image together with the current prompt (one atomic set)
    /image off         clear the reference image
    /enhance on|off    prompt enhancement
    /model NAME        switch model: reconnects (each model runs on its own pipeline)
    /camera SPEC       switch camera (front|back|N|/dev/videoN|test): reconnects with the new track
    /reconnect         reconnect now (e.g. after automatic reconnection gave up)
    /quit              end the session cleanly
    /help              list the commands

Prompt and image changes never reconnect (the seed: "connect once, update prompts"). An unknown
command or a bad argument only shows a message in the panel; nothing is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from decart_cli.core import catalog
from decart_cli.core.image_header import read_header
from decart_cli.core.prompt_queue import PromptState
from decart_cli.core.prompts_file import TimedPrompt
from decart_cli.errors import DecartError
from decart_cli.ui.keys import Key

if TYPE_CHECKING:
    from decart_cli.media.source import SourceSpec
    from decart_cli.runtime.host import RunnerHost

_QUESTION = Key.of("?")

__all__ = [
    "COMMANDS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "CommandHandler",
    "UpdatePump",
    "decode_size",
    "image_kind",
    "load_image",
    "parse_command",
    "update_message",
]

COMMANDS = ("/image", "/enhance", "/model", "/camera", "/reconnect", "/quit", "/help")
HELP = "commands: /image PATH|off · /enhance on|off · /model NAME · /camera SPEC · /reconnect · /quit"
SHORT_INPUT = 2  # typed text this short is sent on Enter only (never debounced)


MAX_IMAGE_BYTES = 10 * 1024 * 1024  # reference images above 10 MiB are refused before sending
# Declared sizes above these are refused from the header, before decoding (a 0.7 MB PNG can declare
# 16000×16000 = 256 megapixels: ~800 MB to decode). 50 MP still takes any phone or camera photo.
MAX_IMAGE_PIXELS = 50_000_000
MAX_IMAGE_SIDE = 16_384


def image_kind(data: bytes) -> str | None:
    """``"png"``/``"jpeg"``/``"webp"`` when ``data`` has a well-formed header of that format, else ``None``.

    Checks the signature and the header that carries the picture size (PNG IHDR with a non-zero
    size, a JPEG start-of-frame marker, a WebP VP8/VP8L/VP8X chunk), so a renamed text file or an
    empty file is caught cheaply; :func:`decode_size` then decodes it for real.
    """
    header = read_header(data)
    return header.kind if header is not None else None


def load_image(path: str, *, option: str = "--image") -> bytes:
    """Read a reference image and check it before anything is sent.

    Raises:
        UsageError: missing or unreadable file, over :data:`MAX_IMAGE_BYTES`, not a PNG, JPEG or
            WebP image, declaring more than :data:`MAX_IMAGE_PIXELS` (checked from the header, before
            decoding), or one that does not decode (truncated, corrupt).
    """
    from decart_cli.errors import UsageError

    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if file.is_dir():
            raise UsageError(f"{option} {path!r} is a directory", hint="give a PNG, JPEG or WebP file")
        if size > MAX_IMAGE_BYTES:
            raise UsageError(
                f"{option} {path!r} is {size / 1024 / 1024:.1f} MiB, over the 10 MiB limit",
                hint="use a smaller image (the model works at about 1 megapixel)",
            )
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path!r} cannot be read: {exc.strerror}") from exc
    header = read_header(data)
    if header is None:
        raise UsageError(f"{option} {path!r} is not a PNG, JPEG or WebP image", hint="give a PNG, JPEG or WebP file")
    if header.width * header.height > MAX_IMAGE_PIXELS or max(header.width, header.height) > MAX_IMAGE_SIDE:
        raise UsageError(
            f"{option} {path!r} is {header.width}×{header.height} ({header.megapixels:.0f} megapixels), over the "
            f"{MAX_IMAGE_PIXELS // 1_000_000}-megapixel / {MAX_IMAGE_SIDE}-pixel limit",
            hint="scale it down first (the model works at about 1 megapixel)",
        )
    if decode_size(data) is None:
        raise UsageError(f"{option} {path!r} cannot be decoded (truncated or corrupt image)")
    return data


def decode_size(data: bytes) -> tuple[int, int] | None:
    """Decode the first picture of an image file with PyAV; ``(width, height)`` or ``None`` if it fails."""
    import io

    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            frame = next(container.decode(video=0))
            return int(frame.width), int(frame.height)
    except (av.FFmpegError, StopIteration, ValueError, OSError):
        return None


def parse_command(line: str) -> tuple[str, str]:
    """Split ``"/name  args"`` into ``("/name", "args")`` (name lower-cased, args stripped)."""
    head, _, rest = line.strip().partition(" ")
    return head.lower(), rest.strip()


def update_message(update: PromptState, server: PromptState) -> Literal["prompt", "set_image"]:
    """Which message an update goes out as, given what the ``server`` holds.

    A change that leaves the reference image as it is goes out as a bare ``prompt``: it keeps the
    image on the server (a ``set_image`` with ``image_data: null`` would clear it, and re-sending the
    image costs megabytes; the C++ SDK does the same, decart-protocol-2026-11.md §8). A new or
    cleared image (``/image``) is ONE ``set_image`` carrying the image and the current prompt.
    """
    if update.image != server.image or update.prompt is None:
        return "set_image"
    return "prompt"


class UpdatePump:
    """Sends the runner's prompt-queue updates: at most one in flight, only while connected."""

    def __init__(self, runner: RunnerHost) -> None:
        self.runner = runner
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """The queue or the connection state changed: look again."""
        self._wake.set()

    def _session_live(self) -> bool:
        from decart_cli.core.session import ConnectionState

        session = self.runner.session
        return session is not None and session.state in (ConnectionState.CONNECTED, ConnectionState.GENERATING)

    async def run(self) -> None:
        """Forever: send what is due, else sleep until the queue's next deadline or a wake-up.

        While the session is not live nothing is due: the runner wakes the pump on every state change.
        """
        queue = self.runner.queue
        while True:
            self._wake.clear()
            now = time.monotonic()
            live = self._session_live()
            update = queue.next_due(now) if live else None
            if update is not None:
                await self.send(update)
                continue
            wake = queue.wake_at() if live else None
            timeout = None if wake is None else max(0.0, wake - now)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def send(self, update: PromptState) -> None:
        """Send one update (marked in flight by the queue) and record how it ended."""
        r = self.runner
        assert r.session is not None
        image_name = update.image_name or ("image" if update.image is not None else None)
        via = update_message(update, r.queue.applied)
        r.emit({"event": "update", "prompt": update.prompt, "enhance": update.enhance, "image": image_name, "via": via})
        r.redraw()
        try:
            if via == "set_image":
                # One atomic set_image with the image (or null: cleared) and the current prompt.
                await r.session.set(prompt=update.prompt, image=update.image, enhance=update.enhance)
            elif update.prompt is not None:
                await r.session.set_prompt(update.prompt, enhance=update.enhance)
            r.queue.finish(success=True)
        except DecartError as exc:
            from decart_cli.core import events as ev
            from decart_cli.ui.events_out import describe

            r.queue.finish(success=False)
            r.view.last_error = f"update failed: {exc.message}"
            record = describe(ev.ErrorEvent(exc.message, False, "update", exc.hint))
            assert record is not None  # every ErrorEvent has a record
            r.emit(record)
        r.redraw()

    async def play_script(self, script: Sequence[TimedPrompt]) -> None:
        """``--prompts``: submit each entry at its offset from the moment the session was ready."""
        await self.runner.ready.wait()
        start = time.monotonic()
        for entry in script:
            delay = start + entry.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.runner.queue.submit_prompt(entry.text, time.monotonic())
            self.runner.wake_pump()


class CommandHandler:
    """The input line: keys edit it (typed text is a debounced prompt), submitted lines act on ``runner``.

    ``?`` on an empty line and F1 toggle the help (any other key closes it); Esc clears the line;
    input of 1–2 characters is not debounced (it waits for Enter, so a stray ``q`` or ``?`` never
    becomes the prompt); Tab completes ``/`` commands, ``/model`` names and ``/image`` paths. The
    history holds submitted lines and every prompt the session applied (debounced ones too) and is
    kept between runs (``config.history_path()``).
    """

    def __init__(self, runner: RunnerHost) -> None:
        from decart_cli.config import read_history
        from decart_cli.ui.line_editor import LineEditor

        self.runner = runner
        self.editor = LineEditor(read_history())
        self.show_help = False
        self._switching = False
        self._last_applied = runner.queue.applied.prompt

    def on_key(self, key: Key) -> None:
        """One key from the terminal (called on the loop)."""
        from decart_cli.ui.keys import KeyName

        r = self.runner
        if key.name is KeyName.EOF and not self.editor.text:
            r.request_stop("quit")
            return
        if key.name is KeyName.F1 or (key == _QUESTION and not self.editor.text):
            self.show_help = not self.show_help
            r.redraw()
            return
        if self.show_help:
            self.show_help = False
            if key.name is KeyName.ESCAPE:
                r.redraw()
                return
        if key.name is KeyName.TAB:
            self._complete()
            return
        if key.name is KeyName.ESCAPE:
            r.view.message = None
        result = self.editor.handle(key)
        if result.submitted is not None:
            self.submit(result.submitted)
        elif result.changed:
            text = self.editor.text
            if not text.lstrip().startswith("/"):  # a command being typed is never sent as a prompt
                # 1–2 characters wait for Enter: a stray key must not restyle the stream.
                r.queue.type_prompt(text if len(text.strip()) > SHORT_INPUT else "", time.monotonic())
                r.view.message = None
        r.wake_pump()

    def _complete(self) -> None:
        from decart_cli.ui.line_editor import complete

        done = complete(self.editor.text, commands=COMMANDS, models=catalog.offered_names())
        self.editor.set_text(done.text)
        self._say("  ".join(done.candidates) if done.candidates else None)

    def sync_history(self) -> None:
        """Add the prompt the session now holds to the history (debounced prompts too); save it."""
        applied = self.runner.queue.applied.prompt
        if applied and applied != self._last_applied:
            self._last_applied = applied
            if self.editor.remember(applied):
                self.save_history()

    def save_history(self) -> None:
        """Write the history to the config directory (0600; lines holding a secret are left out)."""
        from decart_cli.config import write_history

        write_history(self.editor.history)

    def _say(self, message: str | None) -> None:
        self.runner.view.message = message
        self.runner.redraw()

    def submit(self, line: str) -> None:
        """Handle one submitted input line."""
        r = self.runner
        text = line.strip()
        if not text:
            return
        self.save_history()
        if text == "?":
            self.show_help = True
            r.redraw()
            return
        if text.lower() == "q":
            self._say("'q' is not sent as a prompt: /quit leaves (q or Esc in the video window closes it)")
            return
        if not text.startswith("/"):
            r.queue.submit_prompt(text, time.monotonic())
            self._say(None)
            r.wake_pump()
            return
        name, arg = parse_command(text)
        handler = {
            "/image": self._image,
            "/enhance": self._enhance,
            "/model": self._model,
            "/camera": self._camera,
            "/reconnect": self._reconnect,
            "/quit": self._quit,
            "/exit": self._quit,
            "/help": self._help,
        }.get(name)
        if handler is None:
            self._say(f"unknown command {name} — {HELP}")
            return
        try:
            handler(arg)
        except DecartError as exc:
            self._say(exc.message + (f" ({exc.hint})" if exc.hint else ""))

    def _help(self, arg: str) -> None:
        self.show_help = True
        self._say(HELP)

    def _quit(self, arg: str) -> None:
        self._say("quitting…")
        self.runner.request_stop("quit")

    def _image(self, arg: str) -> None:
        if not arg:
            self._say("usage: /image PATH (or /image off)")
            return
        if arg.lower() in ("off", "none", "clear"):
            self.runner.queue.submit_image(None, time.monotonic())
            self._say("clearing the reference image")
        else:
            model = self.runner.model.model
            if not model.reference_image:
                self._say(f"{model.name} takes no reference image (switch with /model lucy-2.1)")
                return
            data = load_image(arg, option="/image")
            self.runner.queue.submit_image(data, time.monotonic(), name=Path(arg).name)
            self._say(f"sending {Path(arg).name} with the current prompt")
        self.runner.wake_pump()

    def _enhance(self, arg: str) -> None:
        value = arg.lower()
        if value not in ("on", "off"):
            self._say("usage: /enhance on|off")
            return
        self.runner.queue.submit_enhance(value == "on", time.monotonic())
        self._say(f"prompt enhancement {value}")
        self.runner.wake_pump()

    def _model(self, arg: str) -> None:
        if not arg:
            self._say(f"usage: /model NAME (now {self.runner.model.wire_name})")
            return
        resolved = catalog.resolve(arg)
        if self.runner.queue.desired.image is not None and not resolved.model.reference_image:
            self._say(f"{resolved.model.name} takes no reference image: /image off first")
            return
        self._start_switch(f"switching to {resolved.model.name}…", model=resolved)

    def _camera(self, arg: str) -> None:
        from decart_cli.media.source import SourceSpec

        if not arg:
            self._say("usage: /camera front|back|N|/dev/videoN|test")
            return
        spec = SourceSpec.parse(arg, None)
        self._start_switch(f"switching camera to {arg}…", spec=spec)

    def _reconnect(self, arg: str) -> None:
        self._start_switch("reconnecting…")

    def _start_switch(
        self, message: str, *, model: catalog.Resolved | None = None, spec: SourceSpec | None = None
    ) -> None:
        if self._switching:
            self._say("a reconnect is already in progress")
            return
        self._switching = True
        self._say(message)
        self.runner.spawn(self._switch(model, spec), "switch")

    async def _switch(self, model: catalog.Resolved | None, spec: SourceSpec | None) -> None:
        """Reconnect, with a new source when the camera or the model's frame size changes."""
        r = self.runner
        assert r.session is not None
        new_source = None
        old_info = r.view.source_info
        try:
            target = model or r.model
            new_spec = spec or r.spec
            if spec is not None or target.model.size != r.model.model.size:
                new_source = await r.open_source(new_spec, target)
            await r.session.reconnect(model=model, video=new_source)
            if new_source is not None:
                old, r.source, r.spec = r.source, new_source, new_spec
                new_source = None
                if old is not None:
                    await asyncio.to_thread(old.close)
                    r.sent_by_old_sources += old.frames_sent
            if model is not None:
                r.model = model
                self._say(f"now streaming to {model.wire_name}")
            elif spec is not None:
                self._say(f"camera switched to {r.source.info.name if r.source else spec.camera}")
            else:
                self._say("reconnected")
        except DecartError as exc:
            if new_source is not None:
                r.view.source_info = old_info
            r.view.last_error = exc.message
            self._say(f"reconnect failed: {exc.message}")
        finally:
            self._switching = False
            if new_source is not None:
                await asyncio.to_thread(new_source.close)
