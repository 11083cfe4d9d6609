"""`decart stream` end to end against the emulator, as a subprocess (JSON events, recording, signals)."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from stream_proc import Stream, free_port, probe

from decart_cli.emulator.server import EmulatorThread

pytestmark = pytest.mark.slow

LUCY_21 = (1088, 624)
FPS_FLOOR = 20.0  # the figure is printed; the floor only catches a broken pipeline, not a busy machine


def test_duration_prompt_json_record(emulator_env: EmulatorThread, tmp_path: Path) -> None:
    """`decart stream --camera test --duration 6 --prompt anime --json --record out.mp4 --transport webrtc` (issue
    11's done-when over the direct path, 6 s instead of 10; over LiveKit: test_stream_livekit.py): states through
    generating, ticks, stats, full-size frames at about 30 fps (printed; a tolerant floor asserted), glass-to-glass
    latency measured, summary, exit 0, and a playable ~6 s recording at the model's size; the test pattern is not
    mirrored and the prompt was sent once."""
    s = Stream(["--camera", "test", "--duration", "6", "--prompt", "anime", "--json", "--record", "out.mp4"], tmp_path)
    code, stderr = s.finish()
    assert code == 0, stderr
    assert "error" not in stderr.lower(), stderr
    (chosen,) = s.of("transport")
    assert chosen["transport"] == "webrtc" and chosen["codec"] == "vp8"
    states = [r["state"] for r in s.of("state")]
    assert states[:3] == ["connecting", "connected", "generating"]
    assert states[-1] == "disconnected"
    assert s.records[0]["event"] == "source" and s.records[0]["sent"][:2] == list(LUCY_21)
    assert len(s.of("tick")) >= 4
    stats = s.of("stats")
    assert len(stats) >= 5
    summary = s.records[-1]
    assert summary["event"] == "summary" and summary["exit_code"] == 0 and summary["reason"] == "duration"
    assert summary["frames_sent"] > 0 and summary["frames_received"] > 0
    assert summary["received_size"] == list(LUCY_21) and summary["reconnects"] == 0
    assert summary["latency_ms"] is not None  # the emulator copies the marker: latency is measured
    assert 0 < summary["connect_s"] <= summary["first_frame_s"] < 10  # the session's own timings
    assert [m["data"]["prompt"] for m in emulator_env.events if m.get("type") == "prompt" and "data" in m] == ["anime"]
    assert s.records[0]["mirrored"] is False  # --mirror auto never flips the test pattern
    assert red_side(emulator_env.input_frames(1)[-1]) == "left"
    width, height, frames, seconds = probe(tmp_path / "out.mp4")
    late = stats[len(stats) // 2 :]
    fps = float(np.mean([r["fps_received"] for r in late]))
    print(
        f"\nwebrtc, lucy-2.1 test camera: fps sent {np.mean([r['fps_sent'] for r in late]):.1f}, received "
        f"{fps:.1f}, latency {summary['latency_ms']} ms; recording {frames} frames, {seconds:.2f} s"
    )
    assert fps >= FPS_FLOOR, f"webrtc received only {fps:.1f} fps"
    assert (width, height) == LUCY_21 and frames > 60
    assert 5.0 <= seconds <= 7.0, seconds


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_finalises_the_recording(
    emulator_env: EmulatorThread, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """SIGTERM / SIGINT while recording: clean disconnect, a playable file, exit 143 / 130."""
    s = Stream(["--camera", "test", "--json", "--record", "out.webm" if sig == signal.SIGINT else "out.mp4"], tmp_path)
    s.wait_event(lambda r: r.get("state") == "generating")
    s.wait_event(lambda r: r["event"] == "stats" and r["frames_received"] > 15)
    sent = time.monotonic()
    s.proc.send_signal(sig)
    exit_code, stderr = s.finish(10)
    took = time.monotonic() - sent
    assert exit_code == code, stderr
    assert f"interrupted by {sig.name}" in stderr
    assert s.records[-1]["event"] == "summary" and s.records[-1]["exit_code"] == code
    assert any(e.get("event") == "close" for e in emulator_env.events)
    path = tmp_path / ("out.webm" if sig == signal.SIGINT else "out.mp4")
    width, height, frames, _ = probe(path)
    assert (width, height) == LUCY_21 and frames > 0
    print(f"\n{sig.name}: exit {exit_code} {took:.2f} s after the signal, {frames} frames recorded")


def red_side(frame: np.ndarray) -> str:
    """Which edge carries the synthetic pattern's red bar (BGR; rows below the marker strip)."""
    body = frame[40:-40].astype(np.int32)
    left, right = body[:, :12], body[:, -12:]

    def redness(strip: np.ndarray) -> float:
        return float(np.mean(strip[..., 2] - strip[..., 0]))

    return "left" if redness(left) > redness(right) else "right"


def test_file_end_is_a_clean_end(emulator_env: EmulatorThread, tmp_path: Path) -> None:
    """--input FILE without --loop ends cleanly (exit 0, reason input_end) when the file ends."""
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:
        st = out.add_stream("mpeg4", rate=30)
        st.width, st.height, st.pix_fmt = 320, 240, "yuv420p"
        for i in range(45):
            img = np.full((240, 320, 3), (i * 5) % 255, np.uint8)
            for packet in st.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in st.encode():
            out.mux(packet)
    s = Stream(["--input", str(clip), "--json"], tmp_path)
    code, stderr = s.finish(40)
    assert code == 0, stderr
    assert s.records[0]["kind"] == "file"
    assert s.records[-1]["reason"] == "input_end"


def test_lost_for_good_without_tty_exits_nonzero(make_emulator: Any, tmp_path: Path) -> None:
    """Without a TTY a session lost for good (--no-reconnect) exits 1; plain log lines go to stderr."""
    emu = make_emulator(drop_after=1.0)
    env = {**os.environ, "DECART_REALTIME_URL": emu.ws_url, "DECART_API_KEY": "test-key-123456"}
    s = Stream(["--camera", "test", "--no-reconnect"], tmp_path, env)
    code, stderr = s.finish(40)
    assert code == 1, stderr
    assert s.stdout_lines == []
    assert "state: generating" in stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].split("] ", 1)[-1].startswith("done (session_error)")  # the closing line comes last
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines.index(errors[0]) < len(lines) - 1, stderr  # said once, before it


def test_local_starts_an_emulator_and_plays_prompts(tmp_path: Path) -> None:
    """--local with nothing listening starts a child `decart serve`, plays --prompts (the 0 s line is the initial state), stops the child."""
    port = free_port()
    prompts = tmp_path / "p.txt"
    prompts.write_text("# demo\n0 anime style\n1 cyberpunk city\n")
    env = {**os.environ, "DECART_LOCAL_ADDRESS": f"127.0.0.1:{port}"}
    s = Stream(
        [
            "--local",
            "--camera",
            "test",
            "--duration",
            "2",
            "--prompts",
            str(prompts),
            "--record",
            "d.mp4",
            "--no-window",
            "--json",
        ],
        tmp_path,
        env,
    )
    code, stderr = s.finish(60)
    assert code == 0, stderr
    assert [u["prompt"] for u in s.of("update")] == ["cyberpunk city"]
    assert [a["prompt"] for a in s.of("ack")] == ["anime style", "cyberpunk city"]
    assert probe(tmp_path / "d.mp4")[2] > 0
    match = re.search(r"started a local emulator on http://127\.0\.0\.1:(\d+)", stderr)
    assert match, stderr
    with pytest.raises(OSError):  # the child emulator is gone with the session
        socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=1).close()


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_local_child_emulator_dies_with_a_killed_stream(tmp_path: Path) -> None:
    """`stream --local` killed outright (SIGKILL: none of its own clean-up runs, as in a native crash) takes its
    child `decart serve` with it instead of leaving an emulator running for nobody."""
    env = {**os.environ, "DECART_LOCAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    s = Stream(["--local", "--camera", "test", "--json", "--no-window"], tmp_path, env)
    s.wait_event(lambda r: r["event"] == "state" and r["state"] == "connected")
    children = Path(f"/proc/{s.proc.pid}/task/{s.proc.pid}/children").read_text().split()
    assert len(children) == 1, children  # the emulator (its own session, so no group kill reaches it)
    child = int(children[0])
    s.proc.kill()
    s.proc.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the child emulator outlived the killed stream"


def test_initial_image_with_prompt_h264_and_mirror(emulator_env: EmulatorThread, tmp_path: Path) -> None:
    """--image with --prompt is one initial set_image carrying both; --codec h264 streams too; --mirror on flips
    the outgoing frames: the red bar arrives on the right at the server (unmirrored it arrives on the left:
    checked in test_duration_prompt_json_record)."""
    from test_stream_cli import png_bytes

    (tmp_path / "face.png").write_bytes(png_bytes(16, 16))
    s = Stream(
        [
            "--camera",
            "test",
            "-p",
            "anime",
            "--image",
            "face.png",
            "--no-enhance",
            "--codec",
            "h264",
            "--mirror",
            "on",
            "--duration",
            "1",
            "--json",
        ],
        tmp_path,
    )
    code, stderr = s.finish()
    assert code == 0, stderr
    first = [e for e in emulator_env.events if e.get("event") == "message"][0]
    assert first["type"] == "set_image"
    assert first["data"]["prompt"] == "anime" and first["data"]["enhance_prompt"] is False
    assert first["data"]["image_data"]
    assert s.of("transport")[0]["codec"] == "h264" and s.records[-1]["frames_received"] > 0
    assert s.records[0]["mirrored"] is True
    frames = emulator_env.input_frames(1)
    assert frames, "the emulator kept no input frames"
    assert red_side(frames[-1]) == "right"


def test_auto_reconnect_keeps_streaming(make_emulator: Any, tmp_path: Path) -> None:
    """A dropped connection is re-established automatically; the run still ends cleanly with exit 0,
    the prompt replayed on the new connection, and billing totals kept across sessions."""
    emu = make_emulator(drop_after=1.0, tick_interval=0.2)
    env = {**os.environ, "DECART_REALTIME_URL": emu.ws_url, "DECART_API_KEY": "test-key-123456"}
    s = Stream(["--camera", "test", "-p", "anime", "--duration", "2.5", "--json"], tmp_path, env)
    code, stderr = s.finish(60)
    assert code == 0, stderr
    assert s.of("reconnecting") and s.of("reconnected")
    assert "reconnecting" in [r["state"] for r in s.of("state")]
    assert s.records[-1]["reconnects"] == 1
    assert len({r["session_id"] for r in s.of("session")}) == 2
    ticks = s.of("tick")
    assert ticks[-1]["total_seconds"] > ticks[-1]["seconds"]
    prompts = [e["data"]["prompt"] for e in emu.events if e.get("type") == "prompt" and "data" in e]
    assert prompts == ["anime", "anime"]


def test_local_uses_a_running_emulator_and_speed_fast_without_the_tier(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    """--local connects to the `decart serve` already answering on DECART_LOCAL_ADDRESS (no child); --speed fast
    with a model that has no such tier (lucy-2.1) is still sent as speed=fast, with a notice."""
    env = {**os.environ, "DECART_LOCAL_ADDRESS": f"127.0.0.1:{emulator.port}"}
    s = Stream(["--local", "--camera", "test", "--speed", "fast", "--duration", "1", "--json"], tmp_path, env)
    code, stderr = s.finish(40)
    assert code == 0, stderr
    assert "started a local emulator" not in stderr
    assert [e["event"] for e in emulator.events if e.get("event") == "connect"] == ["connect"]
    assert "warning: model 'lucy-2.1' has no 'fast' speed tier" in stderr
    queries = [e["query"] for e in emulator.events if e.get("event") == "connect"]
    assert [(q.get("speed"), q["model"]) for q in queries] == [("fast", "lucy-2.1")]


@pytest.mark.parametrize("json_mode", [True, False])
def test_server_error_mid_session_is_said_once_in_words(make_emulator: Any, tmp_path: Path, json_mode: bool) -> None:
    """A permanent server error while streaming ends the run with exit 1: said ONCE on stderr, in words with
    the server's text and a next step (hint), and the closing summary / done line still comes last."""
    emu = make_emulator(error_after=(1.0, "insufficient_credits"))
    env = {**os.environ, "DECART_REALTIME_URL": emu.ws_url, "DECART_API_KEY": "test-key-123456"}
    s = Stream(["--camera", "test", *(["--json"] if json_mode else [])], tmp_path, env)
    code, stderr = s.finish(40)
    assert code == 1, stderr
    lines = stderr.strip().splitlines()
    assert stderr.count("insufficient_credits") == 1, stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == ["error: the account is out of credits (server: insufficient_credits)"], stderr
    hint = lines[lines.index(errors[0]) + 1]
    assert hint.startswith("hint: add credits"), stderr
    if json_mode:
        assert [r["message"] for r in s.of("error")] == ["the account is out of credits (server: insufficient_credits)"]
        assert s.of("error")[0]["hint"].startswith("add credits") and s.of("error")[0]["permanent"] is True
        assert s.records[-1]["event"] == "summary" and s.records[-1]["exit_code"] == 1
        assert s.records[-1]["error"] == errors[0].removeprefix("error: ")
    else:
        assert lines[-1].split("] ", 1)[-1].startswith("done (session_error)"), stderr


def test_speed_fast_is_sent(emulator_env: EmulatorThread, tmp_path: Path) -> None:
    """--speed fast goes out as speed=fast for a model with the tier (lucy-2.6), without a notice (a model without
    it: test_local_uses_a_running_emulator_and_speed_fast_without_the_tier)."""
    s = Stream(["--camera", "test", "--model", "lucy-2.6", "--speed", "fast", "--duration", "1", "--json"], tmp_path)
    code, stderr = s.finish()
    assert code == 0, stderr
    assert s.of("transport")[0]["speed"] == "fast" and "speed tier" not in stderr
    queries = [e["query"] for e in emulator_env.events if e.get("event") == "connect"]
    assert [(q.get("speed"), q["model"]) for q in queries] == [("fast", "lucy-2.6")]
