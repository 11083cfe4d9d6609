"""StreamRunner in-process against the emulator, with the one allowed fake: a camera object."""

from __future__ import annotations

import asyncio
import functools
import io
import json

import pytest
from test_media_fakes import Factory, FakeCamera

from decart_cli.config import Secret, Settings, Timeouts
from decart_cli.core import catalog
from decart_cli.core.prompt_queue import PromptState
from decart_cli.emulator.server import EmulatorThread
from decart_cli.errors import ExitStatus, MediaError
from decart_cli.media.devices import CameraInfo
from decart_cli.media.source import MirrorMode, SourceSpec, open_source
from decart_cli.runtime import StreamOptions, StreamRunner
from decart_cli.ui.console import Streams

pytestmark = pytest.mark.slow


def options(emu: EmulatorThread, **changes: object) -> StreamOptions:
    settings = Settings(
        realtime_url=emu.ws_url,
        api_key=Secret("test-key-123456"),
        timeouts=Timeouts().scaled(0.3),
    )
    base: dict[str, object] = {
        "settings": settings,
        "model": catalog.resolve("lucy-2.1"),
        "spec": SourceSpec.parse("0", None),
        "mirror": MirrorMode.AUTO,
        "initial": PromptState(prompt="anime"),
        "ui": "json",
        "install_signals": False,
        "transport": "webrtc",  # in-process: LiveKit media needs the test namespace (test_stream_livekit.py)
    }
    base.update(changes)
    return StreamOptions(**base)  # type: ignore[arg-type]


async def test_camera_failure_is_a_clean_media_exit(emulator: EmulatorThread) -> None:
    """A camera that stops delivering ends the run with ExitStatus.MEDIA after a clean disconnect,
    and the device is released."""
    cam = FakeCamera([(1280, 720, 30.0)], frames=60)
    opener = functools.partial(open_source, camera_factory=Factory(cam), cameras=[])
    out = io.StringIO()
    runner = StreamRunner(options(emulator), Streams(stdout=out, stderr=io.StringIO()), open_source=opener)
    outcome = await runner.run()
    assert isinstance(outcome.error, MediaError)
    assert outcome.exit_status == ExitStatus.MEDIA
    assert outcome.reason == "source_error"
    assert cam.released.is_set()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["event"] == "source" and records[0]["device"][:2] == [1280, 720]
    assert records[0]["sent"][:2] == [1088, 624]
    assert records[-1]["event"] == "summary" and records[-1]["exit_code"] == int(ExitStatus.MEDIA)
    for _ in range(40):  # the emulator logs the close on its own thread
        if any(e.get("event") == "close" for e in emulator.events):
            break
        await asyncio.sleep(0.05)
    assert any(e.get("event") == "close" for e in emulator.events)


async def test_clean_end_releases_the_camera(emulator: EmulatorThread) -> None:
    """--duration ends with exit 0 and the camera released; the front camera is mirrored under auto."""
    cam = FakeCamera([(1088, 624, 30.0)])
    front = CameraInfo(0, "/dev/video0", "Integrated Camera", "front")
    opener = functools.partial(open_source, camera_factory=Factory(cam), cameras=[front])
    out = io.StringIO()
    runner = StreamRunner(
        options(emulator, duration=1.0, spec=SourceSpec.parse("front", None)),
        Streams(stdout=out, stderr=io.StringIO()),
        open_source=opener,
    )
    outcome = await runner.run()
    assert outcome.error is None, outcome
    assert outcome.exit_status == ExitStatus.OK
    assert cam.released.is_set()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["name"] == "Integrated Camera" and records[0]["mirrored"] is True
    assert records[-1]["reason"] == "duration"


async def test_a_crashed_task_ends_the_run_after_cleanup(emulator: EmulatorThread) -> None:
    """A bug in a background task is not swallowed: the run cleans up, then raises it."""
    runner = StreamRunner(
        options(emulator, spec=SourceSpec.parse("test", None)), Streams(stdout=io.StringIO(), stderr=io.StringIO())
    )

    async def broken() -> None:
        raise RuntimeError("bug in the update pump")

    runner.updates.run = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="bug in the update pump"):
        await runner.run()
    assert runner.source is not None and runner.source.closed
