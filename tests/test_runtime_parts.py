"""The runner's helper modules on their own: options, outputs, endings (no session, no network)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from decart_cli.config import Secret, Settings
from decart_cli.core import catalog
from decart_cli.errors import ConnectionFailed, DecartError, ExitStatus, Interrupted, MediaError
from decart_cli.media.source import SourceSpec
from decart_cli.runtime.endings import drain_output, first_ending
from decart_cli.runtime.options import ENDING_OK, StreamOptions, ending_error
from decart_cli.runtime.outputs import Outputs


def _options(url: str, **changes: object) -> StreamOptions:
    settings = Settings(realtime_url=url, api_key=Secret("test-key-123456"))
    base: dict[str, object] = {
        "settings": settings,
        "model": catalog.resolve("lucy-2.1"),
        "spec": SourceSpec.parse("test", None),
    }
    base.update(changes)
    return StreamOptions(**base)  # type: ignore[arg-type]


def test_latency_marker_is_stamped_for_a_local_server_or_when_asked() -> None:
    """--latency auto stamps the marker only against a loopback server; marker always; frame-timing never."""
    local, cloud = "ws://127.0.0.1:8765", "wss://api3.decart.ai"
    assert _options(local).stamps_marker and not _options(cloud).stamps_marker
    assert _options(cloud, latency="marker").stamps_marker
    assert not _options(local, latency="frame-timing").stamps_marker


def test_frame_timing_is_asked_on_livekit_only() -> None:
    """Frame timing is requested with --latency auto or frame-timing, and only over LiveKit."""
    url = "wss://api3.decart.ai"
    assert _options(url).frame_timing and _options(url, latency="frame-timing").frame_timing
    assert not _options(url, transport="webrtc").frame_timing
    assert not _options(url, latency="marker").frame_timing


def test_session_config_carries_the_options() -> None:
    """The session config holds the URL, model, initial prompt state, transport and latency request."""
    from decart_cli.core.prompt_queue import PromptState

    opts = _options("ws://127.0.0.1:8765", transport="webrtc", codec="vp8", reconnect=False)
    config = opts.session_config(opts.model, PromptState(prompt="anime", enhance=False))
    assert config.realtime_url == "ws://127.0.0.1:8765" and config.model is opts.model
    assert (config.initial.prompt, config.initial.enhance) == ("anime", False)
    assert (config.transport, config.codec, config.reconnect, config.frame_timing) == ("webrtc", "vp8", False, False)


def test_ending_error_signal_first_then_the_error_then_a_surprise_end() -> None:
    """A signal's Interrupted wins; an error passes through; an unclean end without one is ConnectionFailed."""
    lost = ConnectionFailed("gone")
    assert isinstance(ending_error("error", lost, "SIGTERM"), Interrupted)
    assert ending_error("session_error", lost, None) is lost
    surprise = ending_error("session_closed", None, None)
    assert isinstance(surprise, ConnectionFailed) and surprise.exit_status is ExitStatus.ERROR
    for reason in ENDING_OK:
        assert ending_error(reason, None, None) is None, reason


async def test_outputs_without_a_display_stream_on_and_say_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--window with no display opens no window, says why once, and still opens the recorder."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    said: list[str] = []
    out = Outputs(tmp_path / "out.mp4", window=True)
    await out.open(fps=20, model="lucy-2.1", prompt="anime", notice=said.append)
    assert out.window is None and out.recorder is not None
    assert said == [
        "no video window: no display (DISPLAY / WAYLAND_DISPLAY unset); streaming on (--no-window silences this)"
    ]
    out.set_title("lucy-2.1", "neon")  # no window: nothing to retitle, no error
    await out.finish_recording(said.append)
    loss = out.loss(frames_received=3)
    assert isinstance(loss, MediaError) and "is empty: 3 frame(s) received, none written" in loss.message
    assert out.cut_short() == ""  # closed: nothing left to cut short


def test_outputs_without_a_recording_lose_nothing() -> None:
    """No --record: no recorder, no loss to report, no note for a forced exit."""
    out = Outputs(None, window=False)
    assert out.recorder is None and out.loss(frames_received=10) is None and out.cut_short() == ""


async def test_first_ending_returns_the_error_a_task_raised_or_returned() -> None:
    """The first ending task's DecartError, raised or returned, ends the run; a plain end gives None."""

    async def fails() -> None:
        raise ConnectionFailed("lost")

    async def returns() -> DecartError:
        return MediaError("camera gone")

    async def idle() -> None:
        await asyncio.sleep(30)

    for coro, expected in ((fails, ConnectionFailed), (returns, MediaError)):
        slow = asyncio.ensure_future(idle())
        error = await first_ending({asyncio.ensure_future(coro()), slow})
        slow.cancel()
        assert isinstance(error, expected)
    assert await first_ending({asyncio.ensure_future(asyncio.sleep(0))}) is None


async def test_drain_output_waits_for_frames_in_flight_until_all_came_back() -> None:
    """After an input file ends, the wait lasts until every sent frame came back (not its limit)."""
    received = [7]
    ready = asyncio.Event()
    ready.set()

    async def arrive() -> None:
        for _ in range(3):
            await asyncio.sleep(0.02)
            received[0] += 1

    feeder = asyncio.ensure_future(arrive())
    async with asyncio.timeout(30):
        # quiet and limit far beyond the deadline: only "every frame came back" can end this wait in time
        await drain_output(lambda: received[0], lambda: 10, ready, quiet=1000.0, limit=1000.0)
    assert received[0] == 10
    await feeder


async def test_drain_output_does_not_wait_without_a_session_or_frames() -> None:
    """No session ever ready, or nothing coming back for ``quiet`` s: the drain returns."""
    never = asyncio.Event()
    async with asyncio.timeout(30):  # quiet and limit beyond the deadline: only "never ready" ends it in time
        await drain_output(lambda: 0, lambda: 10, never, quiet=1000.0, limit=1000.0)
    ready = asyncio.Event()
    ready.set()
    async with asyncio.timeout(30):  # the limit beyond the deadline: only the quiet spell ends it in time
        await drain_output(lambda: 0, lambda: 10, ready, quiet=0.1, limit=1000.0)


def test_the_cli_offers_exactly_the_latency_modes_the_runner_knows() -> None:
    """--latency's values (commands/_options, kept light for --help) are the runner's LATENCY_MODES."""
    from decart_cli.commands._options import LATENCY_VALUES
    from decart_cli.runtime.options import LATENCY_MODES

    assert LATENCY_VALUES == LATENCY_MODES


def test_each_transport_default_codec_is_one_the_cli_accepts_for_it() -> None:
    """--codec's per-transport lists (commands/_options) cover both transports and hold each one's default."""
    from decart_cli.commands._options import CODECS_BY_TRANSPORT, codec_for
    from decart_cli.realtime.config import DEFAULT_CODECS

    assert set(CODECS_BY_TRANSPORT) == set(DEFAULT_CODECS)
    for transport, default in DEFAULT_CODECS.items():
        assert default in CODECS_BY_TRANSPORT[transport], transport
        assert codec_for(None, transport) is None  # left to the runtime's default
        assert codec_for(default.upper(), transport) == default
