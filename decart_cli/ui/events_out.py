"""Script-mode output of ``decart stream``: JSON-lines events on stdout, or plain log lines on stderr.

Every record is a flat ``dict`` with an ``"event"`` name and ``"t"`` (seconds since the command
started). :func:`describe` turns a session event (:mod:`decart_cli.core.events`) into such a record;
the runner adds its own (``source``, ``update``, ``summary``, ...). Two sinks consume them:

* :class:`JsonEvents` — ``--json``: one compact JSON object per line on stdout and nothing else;
  every record also carries ``"schema": SCHEMA_VERSION``.
* :class:`PlainLog` — no TTY and no ``--json``: one human line per record on stderr (stats are
  thinned to one line every few seconds); stdout stays empty.

The contract (README "JSON events"): :data:`RECORD_FIELDS` lists, per event, the fields every record
of that event always has besides ``event``, ``t`` and ``schema`` (``null`` when unknown, never
missing). Adding an event or a field keeps ``schema`` at 1; renaming or removing one, or changing a
field's meaning, bumps it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from decart_cli.core import events as ev
from decart_cli.core.stats import StatsSnapshot
from decart_cli.ui.console import Streams

__all__ = [
    "COMMON_FIELDS",
    "RECORD_FIELDS",
    "SCHEMA_VERSION",
    "EventSink",
    "JsonEvents",
    "NullSink",
    "PlainLog",
    "describe",
    "plain_line",
]

STATS_LOG_INTERVAL = 5.0  # seconds between stats lines in plain-log mode
SCHEMA_VERSION = 1
COMMON_FIELDS = ("event", "t", "schema")
STATS_FIELDS = tuple(f.name for f in dataclasses.fields(StatsSnapshot))
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "source": ("kind", "name", "facing", "asked", "device", "sent", "mirrored", "note"),
    "transport": ("transport", "codec", "speed"),  # livekit|webrtc, h264|vp8|vp9, fast|null
    "state": ("state", "previous"),
    "session": ("session_id",),
    "queue": ("position", "queue_size"),  # waiting for capacity (LiveKit era)
    "status": ("status",),  # the server's status text, e.g. "Entering queue"
    "generation_started": (),
    "update": ("prompt", "enhance", "image", "via"),  # via: the message sent, prompt|set_image
    "ack": ("kind", "prompt", "success", "error"),
    "tick": ("seconds", "total_seconds"),
    # latency_ms: glass-to-glass, null when nothing measures it; latency_source: marker|frame_timing|null
    "stats": (*STATS_FIELDS, "latency_ms", "latency_source"),
    "reconnecting": ("attempt", "max_attempts", "delay", "reason"),
    "reconnected": ("attempts",),
    # the server ended generation (reason "timeout": the token's limit); final: the session ends with it
    "generation_ended": ("seconds", "reason", "final"),
    "error": ("message", "permanent", "source", "hint"),  # message in words, the server's text in brackets
    "notice": ("message",),
    "summary": (
        "reason",
        "frames_sent",
        "frames_received",
        "frames_recorded",
        "frames_lost",
        "recording",
        "recording_error",
        "duration",
        "elapsed",
        "billed_seconds",
        "reconnects",
        "updates_sent",
        "exit_status",
        "exit_code",
        "error",
        "received_size",
        "transport",
        "latency_ms",
        "latency_source",
        "connect_s",
        "first_frame_s",
    ),
}


def describe(event: ev.Event) -> dict[str, Any] | None:
    """The output record for a session event (without ``"t"``); ``None`` for none."""
    if isinstance(event, ev.StateChanged):
        return {"event": "state", "state": event.new.value, "previous": event.old.value}
    if isinstance(event, ev.SessionStarted):
        return {"event": "session", "session_id": event.session_id}
    if isinstance(event, ev.GenerationStarted):
        return {"event": "generation_started"}
    if isinstance(event, ev.GenerationEnded):
        return {"event": "generation_ended", "seconds": event.seconds, "reason": event.reason, "final": event.final}
    if isinstance(event, ev.Queued):
        return {"event": "queue", "position": event.position, "queue_size": event.size}
    if isinstance(event, ev.ServiceStatus):
        return {"event": "status", "status": event.status}
    if isinstance(event, ev.Tick):
        return {"event": "tick", "seconds": event.seconds, "total_seconds": event.total_seconds}
    if isinstance(event, ev.Ack):
        return {"event": "ack", **dataclasses.asdict(event)}
    if isinstance(event, ev.ErrorEvent):
        return {"event": "error", **dataclasses.asdict(event)}
    if isinstance(event, ev.Reconnecting):
        return {"event": "reconnecting", **dataclasses.asdict(event)}
    if isinstance(event, ev.Reconnected):
        return {"event": "reconnected", "attempts": event.attempts}
    if isinstance(event, ev.StatsUpdated):
        return None  # the runner emits stats on its own 1 s clock
    return None


def _fmt_size(value: Any) -> str:
    if isinstance(value, list | tuple) and len(value) == 3:
        return f"{value[0]}×{value[1]}@{value[2]:g}"
    return str(value)


def plain_line(record: dict[str, Any]) -> str | None:
    """One human-readable log line for ``record`` (``None`` to skip)."""
    kind = record.get("event")
    t = f"[{record.get('t', 0.0):7.2f}s]"
    if kind == "state":
        return f"{t} state: {record['state']}"
    if kind == "session":
        return f"{t} session {record['session_id']}"
    if kind == "generation_started":
        return f"{t} generation started"
    if kind == "generation_ended":
        if record["reason"] == "timeout":
            return f"{t} the session reached its time limit after {record['seconds']:g} s: ending (no reconnect)"
        return f"{t} generation ended ({record['reason']}) after {record['seconds']:g} s"
    if kind == "queue":
        return f"{t} waiting for capacity: {record['position']} of {record['queue_size']}"
    if kind == "status":
        return f"{t} service status: {record['status']}"
    if kind == "transport":
        speed = f", speed {record['speed']}" if record.get("speed") else ""
        return f"{t} media over {record['transport']} ({record['codec']}{speed})"
    if kind == "source":
        return (
            f"{t} source: {record['kind']} {record['name']!r} asked {_fmt_size(record['asked'])}, "
            f"device {_fmt_size(record['device'])}, sent {_fmt_size(record['sent'])}, "
            f"mirrored {'yes' if record['mirrored'] else 'no'}" + (f" ({record['note']})" if record.get("note") else "")
        )
    if kind == "update":
        image = f" + image {record['image']}" if record.get("image") else ""
        return f"{t} sending prompt {record['prompt']!r}{image} (enhance {'on' if record['enhance'] else 'off'})"
    if kind == "ack":
        if record["success"]:
            return f"{t} {record['kind']} acknowledged"
        return f"{t} {record['kind']} rejected: {record['error']}"
    if kind == "tick":
        return f"{t} billed {record['seconds']} s (total {record['total_seconds']} s)"
    if kind == "stats":
        rtt = "—" if record["rtt_ms"] is None else f"{record['rtt_ms']:.0f} ms"
        up, down = (
            "—" if record[k] is None else f"{record[k]:.0f}" for k in ("bitrate_sent_kbps", "bitrate_received_kbps")
        )
        return (
            f"{t} fps sent {record['fps_sent']:.1f} received {record['fps_received']:.1f}, {up}/{down} kbps, RTT {rtt}"
        )
    if kind == "reconnecting":
        return (
            f"{t} reconnecting: attempt {record['attempt']}/{record['max_attempts']} "
            f"in {record['delay']:.1f} s ({record['reason']})"
        )
    if kind == "reconnected":
        return f"{t} reconnected after {record['attempts']} attempt(s)"
    if kind == "error":
        hint = f" — {record['hint']}" if record.get("hint") else ""
        return f"{t} error ({record['source']}): {record['message']}{hint}"
    if kind == "notice":
        return f"{t} {record['message']}"
    if kind == "summary":
        recorded = ""
        if record.get("recording"):
            lost = f", {record['frames_lost']} lost" if record.get("frames_lost") else ""
            recorded = f", {record.get('frames_recorded', 0)} recorded{lost}"
        return (
            f"{t} done ({record['reason']}): {record['frames_sent']} frames sent, "
            f"{record['frames_received']} received{recorded}, {record['duration']:.1f} s, "
            f"billed {record['billed_seconds']} s, exit {record['exit_code']}"
        )
    return None


class EventSink(Protocol):
    """Consumes output records."""

    def emit(self, record: dict[str, Any]) -> None:
        """Write one record (already carrying ``"t"``)."""


class NullSink:
    """Drops everything (the live panel shows the same information)."""

    def emit(self, record: dict[str, Any]) -> None:
        """Ignore ``record``."""


class JsonEvents:
    """``--json``: every record as one JSON line on stdout (redacted by ``Streams.json_line``)."""

    def __init__(self, streams: Streams) -> None:
        self._streams = streams

    def emit(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line, stamped with ``"schema": SCHEMA_VERSION``."""
        self._streams.json_line({**record, "schema": SCHEMA_VERSION})


class PlainLog:
    """Plain log lines on stderr for non-TTY runs without ``--json``; stats thinned out."""

    def __init__(self, streams: Streams, *, stats_interval: float = STATS_LOG_INTERVAL) -> None:
        self._streams = streams
        self._stats_interval = stats_interval
        self._last: dict[str, float] = {}

    def emit(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line on stderr (periodic stats and ticks are thinned out)."""
        kind = str(record.get("event"))
        if kind in ("stats", "tick"):
            t = float(record.get("t", 0.0))
            last = self._last.get(kind)
            if last is not None and t - last < self._stats_interval:
                return
            self._last[kind] = t
        line = plain_line(record)
        if line is not None:
            self._streams.info(line)
