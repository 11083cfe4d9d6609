"""The live panel rendering and the script-mode event output (pure, no sockets)."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest
from rich.console import Console

from decart_cli.core import events as ev
from decart_cli.core.session import ConnectionState
from decart_cli.core.stats import StatsSnapshot
from decart_cli.ui.console import Streams
from decart_cli.ui.events_out import JsonEvents, PlainLog, describe, plain_line
from decart_cli.ui.live import HELP_LINES, STATE_ROWS, PanelSnapshot, render


def text_of(snap: PanelSnapshot, width: int = 100, height: int = 30) -> str:
    console = Console(width=width, height=height, color_system=None, record=True, file=io.StringIO())
    console.print(render(snap, width=width, height=height))
    return console.export_text()


FULL = PanelSnapshot(
    state="generating",
    model="lucy-2.1",
    model_size="1088×624@30",
    session_id="sess-1",
    source="test pattern",
    size_asked="1088×624@30",
    size_device="1088×624@30",
    size_sent="1088×624@30",
    mirror="on",
    prompt="anime style",
    enhance=False,
    image="face.png (12 KB)",
    tick_seconds=7,
    total_seconds=19,
    elapsed=75,
    media=StatsSnapshot(
        fps_sent=29.9, fps_received=28.4, bitrate_sent_kbps=1500, bitrate_received_kbps=900, rtt_ms=3.2, loss=0.015
    ),
    input_text="cyber",
    cursor=2,
    update_status="sending…",
    recording="out.mp4 (120 frames)",
    transport="livekit",
    latency_ms=85.0,
    latency_source="marker",
    update_kind="prompt",
)


def test_panel_shows_every_field() -> None:
    """At 100×30: status strip, prompt (with which message a change sends), input, and every detail."""
    text = text_of(FULL)
    for fragment in (
        "● LIVE · lucy-2.1 · livekit · ↑29.9 ↓28.4 fps · 85 ms (marker) · billed 19 s",
        "Prompt  anime style  [enhance off]  sending… · sends prompt",
        "› cyber",
        "Media   ↑ 1500 kbps · ↓ 900 kbps · RTT 3 ms · loss 1.5%",
        "Image   face.png (12 KB)",
        "Record  out.mp4 (120 frames)",
        "Camera  test pattern · mirror on",
        "Sizes   asked 1088×624@30 · device 1088×624@30 · sent 1088×624@30",
        "lucy-2.1 (1088×624@30) · over livekit · session sess-1",
        "7 s this session · 19 s total · 01:15 elapsed",
    ):
        assert fragment in text, fragment
    assert all(len(line) <= 100 for line in text.splitlines())


def test_no_permanent_state_legend() -> None:
    """The seed's five-row state table is not on screen while streaming (it was 7 of 22 rows)."""
    text = text_of(FULL)
    for _name, meaning, _shown in STATE_ROWS:
        assert meaning not in text


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("connecting", "… loading: connecting to the model"),
        ("connected", "✔ ready: waiting for the first generated frame"),
        ("reconnecting", "⟳ reconnecting"),
        ("disconnected", "✖ disconnected — reconnect with /reconnect (or /quit)"),
    ],
)
def test_only_the_current_state_is_explained(state: str, words: str) -> None:
    """A state other than LIVE gets one line saying what it means; no other state is listed."""
    text = text_of(PanelSnapshot(state=state, model="lucy-2.1"))
    assert words in text
    others = [name for name, _m, _s in STATE_ROWS if name != state and name != "connected"]
    assert not any(f"▶ {name}" in text for name in others)


def test_help_shows_commands_keys_and_the_state_table() -> None:
    """On ? / F1 the details give way to the help: commands, keys and every state's meaning."""
    text = text_of(dataclasses.replace(FULL, show_help=True), 120, 40)
    for line in HELP_LINES:
        assert line[:60] in text
    for _name, meaning, _shown in STATE_ROWS:
        assert meaning in text


@pytest.mark.parametrize(("width", "height"), [(100, 30), (80, 24), (60, 15), (60, 10), (40, 6)])
@pytest.mark.parametrize("state", ["connecting", "generating", "reconnecting", "disconnected"])
def test_the_input_line_always_fits(width: int, height: int, state: str) -> None:
    """At any size the panel fits the terminal (one row spare), no line is wider than it, the status strip
    and the input line are visible (was: cut off at 60×15), and lines never wrap."""
    snap = dataclasses.replace(FULL, state=state, message="unknown command /foo", last_error="x" * 200)
    lines = text_of(snap, width, height).splitlines()
    assert len(lines) <= height - 1, "\n".join(lines)
    assert all(len(line) <= width for line in lines)
    assert any("› cyber" in line for line in lines)
    assert any(
        ("LIVE" in line or "connecting" in line or "reconnecting" in line or "disconnected" in line) for line in lines
    )


def test_details_drop_first_when_space_is_short() -> None:
    """At 60×12 the prompt and the last command's message stay; the lowest details go."""
    lines = text_of(dataclasses.replace(FULL, message="unknown command /foo"), 60, 12).splitlines()
    text = "\n".join(lines)
    assert "Prompt" in text and "unknown command /foo" in text and "› cyber" in text
    assert "Billed  " not in text and "Model   " not in text  # the last two details


def test_queue_and_unknown_latency_in_the_strip() -> None:
    """Waiting for capacity shows in the strip (and means something); an unknown latency shows as —."""
    text = text_of(PanelSnapshot(state="connecting", model="lucy-2.1", queue="waiting for capacity: 3 of 12"))
    assert "⧗ waiting for capacity: 3 of 12" in text and "latency —" in text
    assert "waiting for a free slot" in text


def test_plain_stats_line_with_unknown_bitrate() -> None:
    """A stats record whose bitrate is not measured yet (null) prints — kbps in plain mode."""
    record = {"event": "stats", "t": 1.0, "fps_sent": 30.0, "fps_received": 29.0, "rtt_ms": None}
    line = plain_line({**record, "bitrate_sent_kbps": None, "bitrate_received_kbps": None})
    assert line is not None and "—/— kbps" in line


def test_kbps_is_never_a_zero_while_frames_flow() -> None:
    """Before the transport's first byte sample the bitrate reads —, not 0 kbps, while fps > 0."""
    snap = PanelSnapshot(state="generating", media=StatsSnapshot(fps_sent=30.0, fps_received=29.0))
    text = text_of(snap)
    assert "↑ — kbps · ↓ — kbps" in text and "0 kbps" not in text
    idle = text_of(PanelSnapshot(state="connected"))
    assert "↑ 0 kbps · ↓ 0 kbps" in idle


def test_prompt_on_its_way_is_shown_next_to_the_applied_one() -> None:
    """The applied prompt is shown, with the one being typed or sent after an arrow."""
    text = text_of(PanelSnapshot(prompt="anime", next_prompt="cyber", update_status="typing…"))
    assert "anime  [enhance on]  → cyber  typing…" in text


def test_final_frame_says_the_session_ended() -> None:
    """The last frame left on screen says the run ended instead of inviting a /reconnect."""
    text = text_of(PanelSnapshot(state="disconnected", ended="quit"))
    assert "■ session ended: quit" in text
    assert "reconnect with /reconnect (or /quit)" not in text


def test_message_and_passthrough() -> None:
    """A command message is shown and no prompt reads as passthrough."""
    text = text_of(PanelSnapshot(message="unknown command /foo", prompt=None))
    assert "unknown command /foo" in text
    assert "(none: passthrough)" in text


def test_describe_session_events() -> None:
    """Session events become flat JSON records."""
    assert describe(ev.StateChanged(ConnectionState.CONNECTING, ConnectionState.CONNECTED)) == {
        "event": "state",
        "state": "connected",
        "previous": "connecting",
    }
    assert describe(ev.Tick(3, 10)) == {"event": "tick", "seconds": 3, "total_seconds": 10}
    assert describe(ev.Ack("prompt", "x", True, None))["kind"] == "prompt"  # type: ignore[index]
    assert describe(ev.ErrorEvent("boom", True, "server"))["permanent"] is True  # type: ignore[index]
    assert describe(ev.Reconnecting(1, 5, 1.0, "lost"))["attempt"] == 1  # type: ignore[index]
    assert describe(ev.Reconnected(2)) == {"event": "reconnected", "attempts": 2}
    assert describe(ev.SessionStarted("s")) == {"event": "session", "session_id": "s"}
    assert describe(ev.GenerationStarted()) == {"event": "generation_started"}
    assert describe(ev.StatsUpdated(StatsSnapshot())) is None  # stats go out on the runner's own clock


def test_json_sink_writes_one_line_per_record() -> None:
    """--json output is one compact JSON object per line on stdout, nothing on stderr."""
    out, err = io.StringIO(), io.StringIO()
    sink = JsonEvents(Streams(stdout=out, stderr=err))
    sink.emit({"event": "tick", "t": 1.0, "seconds": 1, "total_seconds": 1})
    sink.emit({"event": "state", "t": 1.5, "state": "generating", "previous": "connected"})
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["tick", "state"]
    assert err.getvalue() == ""


def test_plain_log_thins_periodic_records() -> None:
    """Plain mode writes human lines to stderr and at most one stats line per interval."""
    out, err = io.StringIO(), io.StringIO()
    sink = PlainLog(Streams(stdout=out, stderr=err), stats_interval=5.0)
    stats = {
        "event": "stats",
        "fps_sent": 30.0,
        "fps_received": 29.0,
        "bitrate_sent_kbps": 1.0,
        "bitrate_received_kbps": 2.0,
        "rtt_ms": None,
    }
    for t in (1.0, 2.0, 6.5):
        sink.emit({**stats, "t": t})
    sink.emit({"event": "state", "t": 7.0, "state": "generating", "previous": "connected"})
    lines = err.getvalue().splitlines()
    assert len(lines) == 3
    assert "state: generating" in lines[-1]
    assert out.getvalue() == ""


def test_plain_lines_for_every_record_kind() -> None:
    """Every documented record kind has a readable line."""
    records = [
        {
            "event": "source",
            "kind": "test",
            "name": "t",
            "asked": [1, 2, 30],
            "device": [1, 2, 30],
            "sent": [1, 2, 30],
            "mirrored": True,
            "note": "auto",
        },
        {"event": "update", "prompt": "p", "enhance": True, "image": "a.png"},
        {"event": "ack", "kind": "prompt", "success": False, "error": "nope"},
        {"event": "reconnecting", "attempt": 1, "max_attempts": 5, "delay": 1.0, "reason": "r"},
        {"event": "error", "source": "server", "message": "m"},
        {"event": "notice", "message": "no window: no GUI"},
        {"event": "session", "session_id": "s"},
        {"event": "generation_started"},
        {"event": "reconnected", "attempts": 1},
        {"event": "tick", "seconds": 1, "total_seconds": 2},
        {"event": "ack", "kind": "set_image", "success": True, "error": None},
        {
            "event": "summary",
            "reason": "duration",
            "frames_sent": 1,
            "frames_received": 1,
            "duration": 1.0,
            "billed_seconds": 1,
            "exit_code": 0,
        },
    ]
    for record in records:
        line = plain_line({**record, "t": 0.5})
        assert line is not None and line.startswith("[   0.50s]")
    assert plain_line({"event": "mystery"}) is None


def test_live_panel_draws_updates_and_stops() -> None:
    """LivePanel draws the snapshot it is given on refresh and leaves the last one on screen."""
    from decart_cli.ui.live import LivePanel

    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system=None)
    panel = LivePanel(console, PanelSnapshot(state="connecting", model="lucy-2.1"))
    panel.start()
    panel.update(PanelSnapshot(state="generating", model="lucy-2.1", prompt="neon"))
    panel.refresh()
    panel.stop()
    panel.stop()  # idempotent
    text = out.getvalue()
    assert "… loading" in text and "● LIVE" in text and "neon" in text


def test_a_resize_redraws_from_a_cleared_screen() -> None:
    """When the terminal size changes the panel clears the screen and draws afresh at the new size (a
    shrunk terminal re-wraps the old frame, which Live's cursor-up could not reach: stale lines)."""
    from decart_cli.ui.live import LivePanel

    out = io.StringIO()
    console = Console(file=out, width=100, height=30, force_terminal=True, color_system=None)
    panel = LivePanel(console, FULL)
    panel.start()
    panel.refresh()
    assert "\x1b[2J" not in out.getvalue()
    mark = len(out.getvalue())
    console.size = (60, 15)
    panel.refresh()
    after = out.getvalue()[mark:]
    panel.stop()
    assert after.count("\x1b[2J") == 1 and after.index("\x1b[2J") < after.index("LIVE")
    drawn = after[after.rindex("\x1b[2J") :]
    assert (
        "› cyber" in drawn
        and max(len(line) for line in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn).splitlines()) <= 60
    )
