"""The live panel in a real pseudo-terminal, driven by keystrokes, against the emulator."""

from __future__ import annotations

import os
import signal
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stream_pty import PtyProcess
from test_stream_cli import png_bytes

from decart_cli.emulator.server import EmulatorThread

pytestmark = pytest.mark.slow

LIVE = "● LIVE"
START_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def direct_transport(clean_environ: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """These runs share the host's network namespace, so they take the direct path (--transport webrtc);
    LiveKit media runs need the test namespace (test_stream_livekit.py)."""
    monkeypatch.setenv("DECART_TRANSPORT", "webrtc")


def messages(emu: EmulatorThread, kind: str) -> list[dict[str, Any]]:
    return [e for e in emu.events if e.get("event") == "message" and e.get("type") == kind]


@pytest.fixture
def panel(emulator_env: EmulatorThread, tmp_path: Path) -> Iterator[PtyProcess]:
    proc = PtyProcess(["stream", "--camera", "test", "--no-window"], dict(os.environ), cwd=str(tmp_path))
    try:
        proc.wait_text(LIVE, START_TIMEOUT)
        yield proc
    finally:
        proc.close()


def test_typing_enter_image_unknown_and_quit(panel: PtyProcess, emulator_env: EmulatorThread, tmp_path: Path) -> None:
    """Typing sends one prompt after the pause, Enter sends at once, /image sends one set_image with
    the current prompt, an unknown command sends nothing, /quit exits 0 and restores the terminal."""
    emu = emulator_env
    assert messages(emu, "prompt") == []

    # 1. Typing with short gaps: nothing until the pause, then exactly one prompt with the full text.
    panel.type_slowly("cyberpunk city", 0.02)
    panel.wait_for(lambda: len(messages(emu, "prompt")) >= 1, 10, "the debounced prompt")
    time.sleep(0.8)
    assert [m["data"]["prompt"] for m in messages(emu, "prompt")] == ["cyberpunk city"]

    # 2. Enter sends at once: keep typing afterwards (gaps shorter than the pause), so only Enter
    #    can have sent "anime" while the keys keep coming.
    panel.send("\x15")  # Ctrl-U: clear the line (a blank line sends nothing)
    panel.send("anime\r")
    for _ in range(20):
        panel.send("z")
        time.sleep(0.1)
        if len(messages(emu, "prompt")) >= 2:
            break
    sent = [m["data"]["prompt"] for m in messages(emu, "prompt")]
    assert sent[:2] == ["cyberpunk city", "anime"]
    assert all(set(p) == {"z"} for p in sent[2:])  # only if the machine stalled > 0.5 s between keys
    panel.send("\x15")  # clear "zzz" before its pause elapses
    time.sleep(0.3)
    current = [m["data"]["prompt"] for m in messages(emu, "prompt")][-1]

    # 3. An unknown command shows a message and sends nothing.
    before = len([e for e in emu.events if e.get("event") == "message"])
    panel.send("/frobnicate\r")
    panel.wait_text("unknown command /frobnicate", 10)

    # 4. /image sends one set_image carrying the current prompt.
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes(8, 8))
    panel.send(f"/image {image}\r")
    panel.wait_for(lambda: len(messages(emu, "set_image")) >= 2, 10, "the set_image")  # 1st = none: initial
    time.sleep(0.5)
    after = [e for e in emu.events if e.get("event") == "message"][before:]
    assert [m["type"] for m in after] == ["set_image"]
    assert current == "anime" or set(current) == {"z"}
    assert after[0]["data"]["prompt"] == current  # the image goes with the current prompt
    assert after[0]["data"]["image_data"]

    # 5. /quit: clean exit, terminal mode restored.
    panel.send("/quit\r")
    assert panel.wait_exit(15) == 0
    restored = termios.tcgetattr(panel.slave)
    assert restored[3] & (termios.ECHO | termios.ICANON) == panel.original_attrs[3] & (termios.ECHO | termios.ICANON)


def test_sigint_in_the_panel_exits_130_and_restores_the_terminal(panel: PtyProcess) -> None:
    """Ctrl-C (SIGINT) on the live panel disconnects, restores the terminal and exits 130."""
    panel.proc.send_signal(signal.SIGINT)
    assert panel.wait_exit(10) == 130
    restored = termios.tcgetattr(panel.slave)
    assert restored[3] & termios.ECHO and restored[3] & termios.ICANON


def connects(emu: EmulatorThread) -> list[dict[str, Any]]:
    return [e for e in emu.events if e.get("event") == "connect"]


def test_disconnected_panel_waits_for_reconnect_then_model_and_camera(make_emulator: Any, tmp_path: Path) -> None:
    """When the session is lost for good the panel says how to reconnect and waits; /reconnect,
    /model and /camera each reconnect (a new connection with the right model), /quit exits 0."""
    emu = make_emulator(drop_after=1.0)
    env = {**os.environ, "DECART_REALTIME_URL": emu.ws_url, "DECART_API_KEY": "test-key-123456"}
    proc = PtyProcess(
        ["stream", "--camera", "test", "--no-window", "--no-reconnect", "-p", "anime"], env, str(tmp_path)
    )
    try:
        proc.wait_text("disconnected — reconnect with /reconnect", START_TIMEOUT)
        time.sleep(0.5)
        assert proc.proc.poll() is None  # still waiting for the user
        assert len(connects(emu)) == 1

        proc.send("/reconnect\r")
        proc.wait_for(lambda: len(connects(emu)) == 2, 20, "the second connection")
        proc.wait_text("reconnected", 20)

        proc.send("/model lucy-2.5\r")
        proc.wait_for(lambda: len(connects(emu)) == 3, 20, "the lucy-2.5 connection")
        assert connects(emu)[-1]["model"] == "lucy-2.5"
        proc.wait_text("now streaming to lucy-2.5", 20)
        assert "asked 1280×720@30" in proc.text  # the source was reopened at the new model's size

        proc.send("/camera test\r")
        proc.wait_for(lambda: len(connects(emu)) == 4, 20, "the new-camera connection")
        assert connects(emu)[-1]["model"] == "lucy-2.5"
        proc.wait_text("camera switched to test pattern", 20)
        prompts = [m["data"]["prompt"] for m in emu.events if m.get("type") == "prompt" and "data" in m]
        assert prompts == ["anime"] * 4  # the prompt is replayed on every new connection, never lost

        proc.send("/quit\r")
        assert proc.wait_exit(15) == 0
    finally:
        proc.close()


def test_second_signal_forces_exit(panel: PtyProcess) -> None:
    """A second signal during the shutdown started by the first leaves at once (exit code of the
    first: 130 or 143, "forced exit") with the terminal restored. Both signals are queued while the process is stopped, so the
    second one always lands during the first one's shutdown (two SIGINTs would merge into one)."""
    panel.proc.send_signal(signal.SIGSTOP)
    panel.proc.send_signal(signal.SIGINT)
    panel.proc.send_signal(signal.SIGTERM)
    panel.proc.send_signal(signal.SIGCONT)
    assert panel.wait_exit(10) in (130, 143)  # the kernel picks which pending signal comes first
    panel.wait_text("forced exit", 5)
    restored = termios.tcgetattr(panel.slave)
    assert restored[3] & termios.ECHO and restored[3] & termios.ICANON


def test_sighup_disconnects_cleanly(panel: PtyProcess, emulator_env: EmulatorThread) -> None:
    """SIGHUP (the terminal was closed) gets the same clean shutdown: disconnect, exit 129 (128 + SIGHUP)."""
    panel.proc.send_signal(signal.SIGHUP)
    assert panel.wait_exit(10) == 129
    panel.wait_for(lambda: any(e.get("event") == "close" for e in emulator_env.events), 5, "the close")


def test_small_pane_keeps_the_input_line_and_short_keys_send_nothing(
    emulator_env: EmulatorThread, tmp_path: Path
) -> None:
    """In a 60×15 pane the typed text is visible on the input line; `?` shows the help and a lone `q`
    sent nothing after the pause (was: the input line cut off, `q` became the prompt); /quit exits 0."""
    proc = PtyProcess(
        ["stream", "--camera", "test", "--no-window", "-p", "anime"],
        dict(os.environ),
        cwd=str(tmp_path),
        columns=60,
        lines=15,
    )
    try:
        proc.wait_text(LIVE, START_TIMEOUT)
        proc.send("?")
        proc.wait_text("State generating", 10)
        proc.send("\x1b")  # Esc closes the help
        time.sleep(0.3)
        proc.send("q")
        time.sleep(1.2)  # well past the 0.5 s pause
        assert [m["data"]["prompt"] for m in messages(emulator_env, "prompt")] == ["anime"]  # the initial one only
        proc.send("\x15/frob")
        proc.wait_text("› /frob", 10)
        proc.send("\x15/quit\r")
        assert proc.wait_exit(15) == 0
    finally:
        proc.close()
