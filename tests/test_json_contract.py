"""The --json contract: every record carries event, t and schema, and exactly the documented fields."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from stream_proc import Stream

from decart_cli.emulator.server import EmulatorThread
from decart_cli.ui.console import Streams
from decart_cli.ui.events_out import COMMON_FIELDS, RECORD_FIELDS, SCHEMA_VERSION, JsonEvents

README = Path(__file__).resolve().parent.parent / "README.md"


def check_records(records: list[dict[str, object]]) -> None:
    """Each record has the common fields, schema 1, and exactly its event's documented fields."""
    for record in records:
        kind = str(record["event"])
        assert kind in RECORD_FIELDS, f"undocumented event {kind!r}"
        assert record["schema"] == SCHEMA_VERSION == 1
        assert set(record) == set(COMMON_FIELDS) | set(RECORD_FIELDS[kind]), (kind, sorted(record))


def test_json_sink_stamps_the_schema() -> None:
    """--json lines carry "schema": 1 next to event and t."""
    out = io.StringIO()
    JsonEvents(Streams(stdout=out, stderr=io.StringIO())).emit(
        {"event": "tick", "t": 1.0, "seconds": 1, "total_seconds": 1}
    )
    assert json.loads(out.getvalue()) == {"event": "tick", "t": 1.0, "seconds": 1, "total_seconds": 1, "schema": 1}


def test_readme_documents_every_event_and_field() -> None:
    """The README's JSON events table has a row per event kind naming each of its fields (and only those kinds)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("#### JSON events") :]
    section = section[: section.index("\n### ")]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z_]+)` \| (.*?) \| .*\|$", section, re.M)}
    rows.pop("event")  # the header row
    assert set(rows) == set(RECORD_FIELDS)
    for kind, fields in RECORD_FIELDS.items():
        for field in fields:
            assert f"`{field}`" in rows[kind], (kind, field)


@pytest.mark.slow
def test_a_real_run_keeps_the_contract(emulator_env: EmulatorThread, tmp_path: Path) -> None:
    """A --json run with prompts and a recording: every record matches the contract; the summary has error null."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("0 anime\n1 pencil sketch\n")
    s = Stream(
        ["--camera", "test", "--duration", "2", "--prompts", str(prompts), "--json", "--record", "o.mp4"], tmp_path
    )
    code, stderr = s.finish(60)
    assert code == 0, stderr
    check_records(s.records)
    kinds = {r["event"] for r in s.records}
    assert {"source", "state", "session", "generation_started", "update", "ack", "tick", "stats", "summary"} <= kinds
    summary = s.records[-1]
    assert summary["event"] == "summary" and summary["error"] is None and summary["recording"] == "o.mp4"
    for stats in s.of("stats"):  # never "0 kbps" while frames flow: a number, or null before the first sample
        for rate, fps in (("bitrate_sent_kbps", "fps_sent"), ("bitrate_received_kbps", "fps_received")):
            assert stats[rate] is None or stats[rate] > 0 or stats[fps] == 0, stats
    assert any(stats["bitrate_received_kbps"] for stats in s.of("stats"))


@pytest.mark.slow
def test_a_failed_run_keeps_the_same_summary_keys(make_emulator: object, tmp_path: Path) -> None:
    """A run that fails (server error) has the same summary keys, with error set."""
    emu = make_emulator(error_after=(1.0, "insufficient_credits"))  # type: ignore[operator]
    env = {"DECART_REALTIME_URL": emu.ws_url, "DECART_API_KEY": "test-key-123456"}
    s = Stream(["--camera", "test", "--json", "--no-reconnect"], tmp_path, {**os.environ, **env})
    code, stderr = s.finish(60)
    assert code != 0, stderr
    check_records(s.records)
    assert s.records[-1]["error"]
