"""The LiveKit stand-in with the real ``livekit`` SDK (1.2.1, unchanged), media both ways, in a namespace.

Each test runs tests/sdk/harness.py inside scripts/netns-run: ``decart serve --loopback-only`` plus
tests/sdk/livekit_driver.py (control socket by hand, then ``rtc.Room``). The driver publishes a
marker-stamped 1088×624 @ 30 track and reads every ``inference-server-*`` track.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from netns import run_scenario
from sdk_venvs import HARNESS, SDK_SCRIPTS

pytestmark = pytest.mark.slow


def run(*driver: str, serve: tuple[str, ...] = (), seconds: float = 3.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the livekit driver under the harness; ``(driver result, serve summary)``."""
    argv = [*(f"--serve={a}" for a in serve), "--", sys.executable, str(SDK_SCRIPTS / "livekit_driver.py")]
    argv += ["--url", "{http}", "--seconds", str(seconds), *driver]
    result = run_scenario(HARNESS, *argv, timeout=120).check().json()
    assert result["driver_rc"] == 0 and result["driver"] is not None, result["serve"]["stderr_tail"][-30:]
    return result["driver"], result["serve"]


def events(result: dict[str, Any], kind: str) -> list[list[Any]]:
    """The driver's room events of one kind."""
    return [e for e in result["events"] if e[1] == kind]


def check_joined_and_streamed(d: dict[str, Any], serve: dict[str, Any], mode: str) -> None:
    """Joined in ``mode``, published 1088×624, received the output at model size with markers (printed)."""
    print(
        f"\nlivekit 1.2.1 {mode}: join {d['join_s']} s, sent {d['sent']} at {d['send_fps']} fps, received "
        f"{d['received']} at {d['recv_fps']} fps, latency p50 {d['latency_ms_p50']} ms p95 {d['latency_ms_p95']} ms, "
        f"serve CPU {serve['cpu_per_second']} s/s"
    )
    counts = {k: d[k] for k in ("sent", "sent_since_first", "received", "marked", "events")}
    assert d["sizes"] == [[1088, 624]]
    assert d["received"] >= 0.8 * d["sent_since_first"], counts
    # A frame whose marker fails its checksum is one libwebrtc concealed after a lost packet (seen
    # under load: rows of two frames); it carries no id. Nearly all frames must carry theirs.
    assert d["marked"] >= 0.95 * d["received"], counts
    assert [e[2] for e in events(d, "track_subscribed")] == ["inference-server-1"]
    types = [m["type"] for m in d["control"]]
    assert types[:2] == ["session_id", "livekit_room_info"] and "generation_started" in types
    log = "\n".join(serve["stderr_tail"])
    assert f"lk_signal mode={mode}" in log and "lk_output action=published" in log


def test_livekit_sdk_joins_publishes_and_receives_the_model_output() -> None:
    """v1 (single PC): join, publish 1088×624, receive the output at model size with markers."""
    d, serve = run("--mode", "v1", "--prompt", "anime")
    check_joined_and_streamed(d, serve, "v1")


def test_livekit_sdk_falls_back_to_two_peer_connections_on_404() -> None:
    """--lk-single-pc off: livekit 1.2.1 asks /rtc/v1, gets 404, joins /rtc (v0: two peer connections) and
    streams as in v1 (join, publish 1088×624, the output at model size with markers): one run for the v0 path."""
    d, serve = run("--mode", "v1", "--prompt", "anime", serve=("--lk-single-pc", "off"))
    check_joined_and_streamed(d, serve, "v0")


@pytest.mark.parametrize("mode", ["v1", "v0"])
def test_republish_hands_the_client_a_new_track(mode: str) -> None:
    """--republish-after: the output track is unpublished, a new one is subscribed, and frames flow on it."""
    d, serve = run("--mode", mode, "--prompt", "noir", serve=("--republish-after", "1.0"), seconds=4.0)
    subscribed = [e[3] for e in events(d, "track_subscribed")]
    assert len(subscribed) == 2 and subscribed[0] != subscribed[1]
    assert [e[3] for e in events(d, "track_unpublished")] == [subscribed[0]]
    assert d["per_track"][subscribed[1]] >= 30
    assert "fault=republish_after" in "\n".join(serve["stderr_tail"])


def test_set_after_passthrough_republishes_the_output() -> None:
    """Passthrough join, then a prompt: generation restarts and the client subscribes to a new track."""
    d, _ = run("--mode", "v1", "--passthrough", "--set-at", "1.0:pencil sketch", seconds=4.0)
    subscribed = [e[3] for e in events(d, "track_subscribed")]
    assert len(subscribed) == 2
    assert d["per_track"][subscribed[1]] >= 30


@pytest.mark.parametrize("mode", ["v1", "v0"])
def test_lk_drop_after_fails_the_room_but_not_the_control_socket(mode: str) -> None:
    """--lk-drop-after: the client loses the room (resume refused: JOIN_FAILURE) while /v1/stream stays open."""
    d, serve = run("--mode", mode, "--wait-disconnect", "20", serve=("--lk-drop-after", "1.5"), seconds=3.0)
    [disconnected] = events(d, "disconnected")
    assert disconnected[2] == "JOIN_FAILURE"
    assert events(d, "reconnecting")
    assert d["control_open_at_end"]
    log = "\n".join(serve["stderr_tail"])
    assert "fault=lk_drop" in log and "status=403" in log


def test_leave_both_ways() -> None:
    """The client's leave is seen by the server; closing /v1/stream makes the server send leave ROOM_DELETED."""
    d, serve = run("--mode", "v1", seconds=1.5)
    assert "lk_client_leave" in "\n".join(serve["stderr_tail"])
    # No disconnect the server started. livekit 1.2.1 emits its own "disconnected" (CLIENT_INITIATED) only
    # when its state had not flipped yet: a connection_state_changed that lands first makes it emit none
    # (rtc/room.py Room.disconnect; seen once in a clean-clone CI run).
    assert [e[2] for e in events(d, "disconnected")] in ([], ["CLIENT_INITIATED"])
    d, serve = run("--mode", "v0", "--close-control-at", "1.0", "--wait-disconnect", "10", seconds=2.5)
    assert [e[2] for e in events(d, "disconnected")] == ["ROOM_DELETED"]
    assert "reason=ROOM_DELETED" in "\n".join(serve["stderr_tail"])


def test_frame_timing_is_echoed_only_when_the_join_asks() -> None:
    """Frame timing (2026-11 §6) with the unmodified livekit SDK: a client that publishes capture stamps
    (FMF_USER_TIMESTAMP) and joins with client_capabilities.frame_timing gets each stamp back on the output
    frame made from it (a plausible latency, within a few ms of the marker's); without the capability the
    stand-in still strips the client's trailers (frames decode, markers intact) but echoes nothing.
    Single peer connection only: trailers live in the track's frames, the same on either connection
    layout (the dual layout's media is covered by the other v0 runs here)."""
    mode = "v1"
    timed, serve = run("--mode", mode, "--prompt", "anime", "--publish-timestamps", "--frame-timing")
    print(
        f"\nframe timing {mode}: {timed['timed']} of {timed['received']} frames stamped, "
        f"p50 {timed['timing_ms_p50']} ms (marker p50 {timed['latency_ms_p50']} ms)"
    )
    assert timed["timed"] >= 0.9 * timed["received"] > 0, timed
    assert 0 < timed["timing_ms_p50"] < 2000, timed
    # Both clocks measure the same trip (wall clock vs perf_counter): within a frame or two.
    assert abs(timed["timing_ms_p50"] - timed["latency_ms_p50"]) < 40, timed
    assert "frame_timing=True" in "\n".join(serve["stderr_tail"])
    plain, _ = run("--mode", mode, "--prompt", "anime", "--publish-timestamps")
    assert plain["timed"] == 0 and plain["received"] > 30, plain
    assert plain["marked"] >= 0.95 * plain["received"], plain  # trailers stripped before decoding
