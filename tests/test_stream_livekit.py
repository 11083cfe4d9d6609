"""`decart stream` over LiveKit (the default) against `decart serve`, inside the test namespace.

libwebrtc never gathers ICE candidates on a loopback interface, so every run here goes through
scripts/netns-run (a private namespace with lo + a veth carrying 127.0.0.2), and the client always
runs as its own process: a libwebrtc abort fails the test instead of killing pytest. Runs that need
the emulator's event log use livekit_stream_scenario.py (emulator in-process, stream as a child).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest
from netns import run_in_netns, run_scenario
from stream_proc import probe
from test_stream_cli import png_bytes

pytestmark = pytest.mark.slow

SCENARIO = Path(__file__).parent / "livekit_stream_scenario.py"
LUCY_21 = [1088, 624]
FPS_FLOOR = 20.0  # the figure is printed; the floor only catches a broken pipeline, not a busy machine


def of(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("event") == kind]


def scenario(
    tmp_path: Path,
    *stream_args: str,
    emulator: dict[str, Any] | None = None,
    signal: str | None = None,
    after_frames: int = 15,
    token: dict[str, Any] | None = None,
    globals_: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    """Run one stream against an in-process emulator in a fresh namespace; its JSON summary."""
    args = ["--emulator", json.dumps(emulator or {}), "--cwd", str(tmp_path)]
    if signal is not None:
        args += ["--signal", signal, "--after-frames", str(after_frames)]
    if token is not None:
        args += ["--token", json.dumps(token)]
    for item in globals_:
        args.append(f"--global={item}")
    for name, value in (env or {}).items():
        args += ["--env", f"{name}={value}"]
    result = run_scenario(SCENARIO, *args, "--", *stream_args, timeout=timeout)
    result.check()
    summary: dict[str, Any] = result.json()
    return summary


def messages(summary: dict[str, Any], conn: int | None = None) -> list[dict[str, Any]]:
    """Client messages the emulator received (on connection ``conn``), in order."""
    return [e for e in summary["events"] if e.get("event") == "message" and (conn is None or e.get("conn") == conn)]


def received_fps(records: list[dict[str, Any]]) -> float:
    stats = of(records, "stats")
    late = stats[len(stats) // 2 :]
    return statistics.mean(r["fps_received"] for r in late) if late else 0.0


def test_done_when_command_over_livekit(tmp_path: Path) -> None:
    """Issue 11's done-when command, 6 s instead of 10 (`decart stream --local --camera test --duration 6 --prompt
    anime --json --record out.mp4`, LiveKit by default): connecting → connected → generating, ticks, full-size
    frames at about 30 fps (printed; a tolerant floor asserted), a playable recording, exit 0. (The same over
    --transport webrtc: test_stream_e2e.py::test_duration_prompt_json_record.)"""
    argv = [sys.executable, "-m", "decart_cli", "stream", "--local", "--camera", "test", "--duration", "6"]
    argv += ["--prompt", "anime", "--json", "--record", "out.mp4"]
    result = run_in_netns(argv, timeout=120, cwd=tmp_path)
    result.check()
    records = result.json_lines()
    (chosen,) = of(records, "transport")
    assert chosen["transport"] == "livekit" and chosen["codec"] == "h264"
    states = [r["state"] for r in of(records, "state")]
    assert states[:3] == ["connecting", "connected", "generating"] and states[-1] == "disconnected"
    assert len(of(records, "tick")) >= 4
    summary = records[-1]
    assert summary["event"] == "summary" and summary["exit_code"] == 0 and summary["reason"] == "duration"
    assert summary["received_size"] == LUCY_21 and summary["reconnects"] == 0
    fps = received_fps(records)
    width, height, frames, seconds = probe(tmp_path / "out.mp4")
    print(
        f"\nlivekit: received {fps:.1f} fps at {summary['received_size']}, latency {summary['latency_ms']} ms, "
        f"recording {frames} frames / {seconds:.2f} s"
    )
    assert fps >= FPS_FLOOR, f"livekit received only {fps:.1f} fps"
    assert (width, height) == tuple(LUCY_21) and frames > 60 and 5.0 <= seconds <= 7.0
    assert summary["latency_ms"] is not None  # the emulator copies the marker: latency is measured
    assert "error" not in result.stderr.lower(), result.stderr[-2000:]
    assert "OpenH264" not in result.stderr  # native codec chatter goes to the log, not the terminal


def test_room_drop_reconnects_with_the_latest_prompt_and_image(tmp_path: Path) -> None:
    """The LiveKit room fails (the control socket lives on): the session reconnects, and the new join is
    followed by ONE set_image carrying the image AND the prompt changed after the start (a bare prompt
    kept the image), as the emulator's log shows; video flows again and the run ends with exit 0."""
    (tmp_path / "face.png").write_bytes(png_bytes(16, 16))
    (tmp_path / "p.txt").write_text("1 cyberpunk city\n")
    summary = scenario(
        tmp_path,
        *("--camera", "test", "--duration", "6", "--json", "--no-window"),
        *("--prompt", "anime", "--image", "face.png", "--prompts", "p.txt"),
        emulator={"lk_drop_after": 2.0},
    )
    records = summary["records"]
    assert summary["rc"] == 0, summary["stderr"][-2000:]
    assert of(records, "reconnected") and records[-1]["reconnects"] >= 1
    first = messages(summary, 1)
    assert [m["type"] for m in first[:2]] == ["livekit_join", "set_image"]
    update = [m for m in first if m["type"] == "prompt"]
    assert update and update[0]["data"]["prompt"] == "cyberpunk city"  # a bare prompt: the image stays
    second = messages(summary, 2)
    assert [m["type"] for m in second[:2]] == ["livekit_join", "set_image"], second
    state = second[1]["data"]
    assert state["prompt"] == "cyberpunk city" and state["image_data"] not in (None, "")
    after = [r for r in of(records, "stats") if r["_wall"] > of(records, "reconnected")[0]["_wall"] + 1]
    assert after and max(r["fps_received"] for r in after) > 10, "no video after the reconnect"


def test_republished_output_keeps_the_video_flowing(tmp_path: Path) -> None:
    """The output track is unpublished and re-published (a generation restart): a new reader attaches,
    frames keep coming, and no reconnect is needed."""
    summary = scenario(
        tmp_path, "--camera", "test", "--duration", "5", "--json", "--no-window", emulator={"republish_after": 1.5}
    )
    records = summary["records"]
    assert summary["rc"] == 0, summary["stderr"][-2000:]
    outputs = [e for e in summary["events"] if e.get("event") == "lk_output"]
    assert [e["action"] for e in outputs][:3] == ["published", "unpublished", "published"], outputs
    assert records[-1]["reconnects"] == 0 and not of(records, "reconnecting")
    republished = [e for e in summary["events"] if e.get("event") == "lk_output"][2]
    assert republished["track"] != outputs[0]["track"]
    stats = of(records, "stats")
    late = stats[-3:]
    print(f"\nafter the republish: {[r['fps_received'] for r in late]} fps")
    assert all(r["fps_received"] > 10 for r in late), late


def test_queue_updates_are_shown_and_pause_the_room_info_deadline(tmp_path: Path) -> None:
    """Waiting for capacity: queue and status events as the server sends them, and a wait longer than the
    room-info deadline (here 4.5 s: timeouts scaled by 0.3) does not fail while the queue moves."""
    summary = scenario(
        tmp_path,
        *("--camera", "test", "--duration", "1", "--json", "--no-window"),
        emulator={"queue": 6, "queue_interval": 1.0},
        env={"DECART_TIMEOUT_FACTOR": "0.3"},
    )
    records = summary["records"]
    assert summary["rc"] == 0, summary["stderr"][-2000:]
    queue = of(records, "queue")
    assert [(q["position"], q["queue_size"]) for q in queue] == [(n, 6) for n in range(6, 0, -1)]
    assert [s["status"] for s in of(records, "status")] == ["Entering queue", "Ready"]
    connected = next(r for r in of(records, "state") if r["state"] == "connected")
    waited = connected["_wall"] - queue[0]["_wall"]
    assert waited > 4.5, f"the queue lasted only {waited:.1f} s: the deadline was not put to the test"
    assert "generating" in [r["state"] for r in of(records, "state")]


def test_session_limit_ends_cleanly_with_one_connection(tmp_path: Path) -> None:
    """A client token with a 3 s session limit: generation_ended 'timeout' ends the run with exit 0 and one
    clear line, and no reconnect opens a second connection (that would defeat the limit)."""
    summary = scenario(
        tmp_path, "--camera", "test", "--no-window", "--prompt", "anime", token={"max_session_duration": 3}
    )
    assert summary["rc"] == 0, summary["stderr"][-2000:]
    connects = [e for e in summary["events"] if e.get("event") == "connect"]
    assert len(connects) == 1, connects
    lines = summary["stderr"].strip().splitlines()
    limit = [line for line in lines if "time limit" in line]
    assert len(limit) == 1 and "no reconnect" in limit[0], lines
    assert lines[-1].split("] ", 1)[-1].startswith("done (session_limit)"), lines
    assert "reconnecting" not in summary["stderr"]


def test_signal_is_clean_within_two_seconds_and_nothing_is_lost(tmp_path: Path) -> None:
    """SIGINT over LiveKit: the room is left, the .webm recording finalised and playable, exit 130, within 2 s of
    the signal (with a margin for a loaded machine). The process ends with os._exit (past libwebrtc's teardown),
    with stdout and stderr block-buffered (no PYTHONUNBUFFERED) and -vv --log-file: still every byte is out
    first — the summary is stdout's last line, the runner's leaving record ends both stderr and the log file,
    and the file holds every frame the summary counts as recorded. (SIGTERM → 143 with an .mp4, the same
    handler: over the direct path in test_stream_e2e.py::test_signal_finalises_the_recording.)"""
    sig, code, suffix = "SIGINT", 130, "webm"
    log = tmp_path / "debug.log"
    summary = scenario(
        tmp_path,
        *("--camera", "test", "--json", "--no-window", "--record", f"out.{suffix}"),
        signal=sig,
        after_frames=20,
        globals_=("-vv", f"--log-file={log}"),
        env={"PYTHONUNBUFFERED": ""},
    )
    assert summary["rc"] == code, summary["stderr"][-2000:]
    took = summary["signal_to_exit"]
    print(f"\n{sig}: exit {summary['rc']} {took:.2f} s after the signal")
    assert took < 2.0 * 1.5, f"{sig} took {took:.2f} s"
    last = summary["records"][-1]
    assert last["event"] == "summary" and last["exit_code"] == code
    assert any(e.get("event") == "lk_client_leave" for e in summary["events"]), "the client did not leave the room"
    leaving = f"leaving with exit {code}, skipping the native SDK's teardown"
    assert leaving in summary["stderr"].rstrip().splitlines()[-1], summary["stderr"][-1000:]
    assert leaving in log.read_text().rstrip().splitlines()[-1]
    width, height, frames, _ = probe(tmp_path / f"out.{suffix}")
    assert (width, height) == tuple(LUCY_21) and frames == last["frames_recorded"] > 0
