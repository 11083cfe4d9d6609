"""Pure SDP text munging for the offer (RFC 8866 line format, RFC 8829/JSEP codec order).

Two edits, both as the JS SDK does for the direct protocol (§2.3 step 6):

* put the preferred video codec first on the ``m=video`` line (VP8 by default, H.264 with
  ``--codec h264``), keeping each codec's RTX payload (``a=fmtp:<rtx> apt=<pt>``) right after it;
  the answerer picks the first codec it supports;
* add ``x-google-min-bitrate=300;x-google-start-bitrate=600`` (kbps) to the VP8 ``a=fmtp`` line,
  inserting one after the last ``a=rtcp-fb`` of that payload type when there is none. Only
  libwebrtc peers honour these hints; they are harmless elsewhere.
"""

from __future__ import annotations

import re

__all__ = ["BITRATE_HINTS", "add_vp8_bitrate_hints", "munge_offer", "prefer_codec"]

BITRATE_HINTS = "x-google-min-bitrate=300;x-google-start-bitrate=600"
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/]+)/", re.IGNORECASE)
_APT = re.compile(r"^a=fmtp:(\d+) .*\bapt=(\d+)", re.IGNORECASE)


def _split(sdp: str) -> tuple[list[str], str]:
    eol = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(eol)
    return lines, eol


def _video_section(lines: list[str]) -> tuple[int, int] | None:
    """``(start, end)`` line indexes of the first ``m=video`` section, end exclusive."""
    for i, line in enumerate(lines):
        if line.startswith("m=video "):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("m=")), len(lines))
            return i, end
    return None


def _codecs(section: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``{pt: codec name upper}`` and ``{rtx pt: primary pt}`` of a media section."""
    names: dict[str, str] = {}
    apt: dict[str, str] = {}
    for line in section:
        if m := _RTPMAP.match(line):
            names[m.group(1)] = m.group(2).upper()
        elif m := _APT.match(line):
            apt[m.group(1)] = m.group(2)
    return names, apt


def prefer_codec(sdp: str, codec: str) -> str:
    """Reorder the ``m=video`` payload types so ``codec`` (e.g. ``"VP8"``, ``"H264"``) comes first.

    Each preferred payload is followed by its RTX payload; the relative order of everything else
    is kept. An SDP without video or without that codec is returned unchanged.
    """
    lines, eol = _split(sdp)
    span = _video_section(lines)
    if span is None:
        return sdp
    start, end = span
    names, apt = _codecs(lines[start + 1 : end])
    header = lines[start].split(" ")
    fixed, payloads = header[:3], header[3:]
    wanted = [pt for pt in payloads if names.get(pt) == codec.upper()]
    if not wanted:
        return sdp
    rtx_of = {primary: rtx for rtx, primary in apt.items()}
    first: list[str] = []
    for pt in wanted:
        first.append(pt)
        if pt in rtx_of and rtx_of[pt] in payloads:
            first.append(rtx_of[pt])
    rest = [pt for pt in payloads if pt not in first]
    lines[start] = " ".join(fixed + first + rest)
    return eol.join(lines)


def add_vp8_bitrate_hints(sdp: str) -> str:
    """Add :data:`BITRATE_HINTS` to every VP8 ``a=fmtp`` of the video section (idempotent)."""
    lines, eol = _split(sdp)
    span = _video_section(lines)
    if span is None:
        return sdp
    start, end = span
    names, _ = _codecs(lines[start + 1 : end])
    for pt in (p for p, name in names.items() if name == "VP8"):
        fmtp = f"a=fmtp:{pt} "
        index = next((i for i in range(start, end) if lines[i].startswith(fmtp)), None)
        if index is not None:
            if "x-google-min-bitrate" not in lines[index]:
                lines[index] = f"{lines[index]};{BITRATE_HINTS}"
            continue
        anchors = [i for i in range(start, end) if lines[i].startswith((f"a=rtcp-fb:{pt} ", f"a=rtpmap:{pt} "))]
        lines.insert(max(anchors) + 1, f"{fmtp}{BITRATE_HINTS}")
        end += 1
    return eol.join(lines)


def munge_offer(sdp: str, codec: str = "vp8") -> str:
    """Both edits: ``codec`` first, VP8 bitrate hints."""
    return add_vp8_bitrate_hints(prefer_codec(sdp, "H264" if codec.lower() == "h264" else "VP8"))
