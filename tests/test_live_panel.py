"""The live panel rendering and the script-mode event output (pure, no sockets)."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from decart_cli.core import events as ev
from decart_cli.core.session import ConnectionState
from decart_cli.core.stats import StatsSnapshot
from decart_cli.ui.console import Streams
from decart_cli.ui.events_out import JsonEvents, PlainLog, describe, plain_line
from decart_cli.ui.live import STATE_ROWS, PanelSnapshot, render


def text_of(snap: PanelSnapshot) -> str:
    console = Console(width=100, color_system=None, record=True, file=io.StringIO())
    console.print(render(snap))
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
    extra={"Note": "extra row"},
)


def test_panel_shows_every_field() -> None:
    """Model, camera, sizes, mirror, prompt, enhance, image, billing, media figures and input appear."""
    text = text_of(FULL)
    for fragment in (
        "lucy-2.1 (1088×624@30) · session sess-1",
        "test pattern · mirror on",
        "asked 1088×624@30 · device 1088×624@30 · sent 1088×624@30",
        "anime style  [enhance off]",
        "face.png (12 KB)",
        "7 s this session · 19 s total · 01:15 elapsed",
        "↑ sent 29.9 fps 1500 kbps · ↓ received 28.4 fps 900 kbps · RTT 3 ms · loss 1.5%",
        "› cyber",
        "● LIVE",
        "anime style  [enhance off]  sending…",
        "Record  out.mp4 (120 frames)",
        "Note    extra row",
    ):
        assert fragment in text, fragment
    assert all(len(line) <= 100 for line in text.splitlines())


@pytest.mark.parametrize(("state", "meaning", "shown"), STATE_ROWS)
def test_state_table_marks_the_current_state(state: str, meaning: str, shown: str) -> None:
    """All five seed states are listed and exactly the current one carries the marker."""
    text = text_of(PanelSnapshot(state=state, model="lucy-2.1"))
    marked = [line for line in text.splitlines() if "▶" in line]
    assert len(marked) == 1
    assert state in marked[0] and meaning in marked[0] and shown in marked[0]
    for other, _, _ in STATE_ROWS:
        assert other in text


@pytest.mark.parametrize(("state", "meaning", "shown"), STATE_ROWS)
def test_compact_panel_fits_an_80x24_terminal(state: str, meaning: str, shown: str) -> None:
    """On a short terminal the state table is one line (current state marked) and everything,
    the input line included, fits in 24 lines of 80 columns."""
    snap = PanelSnapshot(**{**FULL.__dict__, "state": state, "message": "unknown command /foo"})
    console = Console(width=80, color_system=None, record=True, file=io.StringIO())
    console.print(render(snap, compact=True))
    lines = console.export_text().splitlines()
    assert len(lines) <= 23, "\n".join(lines)
    marked = [line for line in lines if "▶" in line]
    assert len(marked) == 1 and f"▶ {state}" in marked[0]
    banner = lines[lines.index(marked[0]) + 1]
    assert any(word in banner for word in ("loading", "ready", "LIVE", "reconnecting", "/reconnect"))
    assert any("› cyber" in line for line in lines)
    assert all(len(line) <= 80 for line in lines)


def test_banners_for_reconnecting_and_disconnected() -> None:
    """Reconnecting shows a banner with the attempt; disconnected says how to reconnect."""
    text = text_of(PanelSnapshot(state="reconnecting", reconnect_note="attempt 2/5 in 2.0 s"))
    assert "⟳ reconnecting — attempt 2/5 in 2.0 s" in text
    text = text_of(PanelSnapshot(state="disconnected", last_error="gave up after 5 attempts"))
    assert "disconnected — reconnect with /reconnect" in text
    assert "gave up after 5 attempts" in text


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
