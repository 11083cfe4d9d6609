"""Pure SDP edits the stand-in needs between libwebrtc offers and aiortc answers.

Simulcast (livekit-local.md §5.4): ``livekit`` and the Decart SDK publish with simulcast on. When a
video section of the client's offer negotiates simulcast (``a=simulcast`` / ``a=rid``), libwebrtc
refuses its own offer unless the answer also negotiates the RID header extensions, and aiortc's answer
leaves them out. :func:`copy_rid_extmaps` copies the offer's ``rtp-stream-id`` and
``repaired-rtp-stream-id`` ``a=extmap`` lines into the matching video sections of the answer; the
client then sends a single layer (816×468 of a 1088×624 source), which aiortc decodes.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["RID_EXTENSIONS", "candidates", "copy_rid_extmaps", "sections"]

RID_EXTENSIONS: Final = (
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
)
_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")
_MID = re.compile(r"^a=mid:(\S+)")
_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ (\w+) \d+ (\S+) (\d+) typ (\w+)", re.IGNORECASE)


def sections(sdp: str) -> list[list[str]]:
    """The SDP split into the session part followed by one list of lines per ``m=`` section."""
    parts: list[list[str]] = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            parts.append([])
        parts[-1].append(line)
    return parts


def _mid(section: list[str]) -> str | None:
    for line in section:
        match = _MID.match(line)
        if match:
            return match.group(1)
    return None


def copy_rid_extmaps(offer: str, answer: str) -> str:
    """``answer`` with the offer's RID ``a=extmap`` lines added to each video section (matched by mid).

    A section that already has an extension with the same URI, or whose offer section has none, is
    left unchanged; an extmap id the answer section already uses for another URI is not copied.
    The line ending of ``answer`` (CRLF for aiortc) is kept.
    """
    wanted: dict[str, list[tuple[str, str]]] = {}
    for section in sections(offer)[1:]:
        if not section[0].startswith("m=video"):
            continue
        mid = _mid(section)
        rid = [(m.group(1), line) for line in section if (m := _EXTMAP.match(line)) and m.group(2) in RID_EXTENSIONS]
        if mid is not None and rid:
            wanted[mid] = rid
    if not wanted:
        return answer
    newline = "\r\n" if "\r\n" in answer else "\n"
    out: list[str] = []
    for index, section in enumerate(sections(answer)):
        if index == 0 or not section[0].startswith("m=video") or _mid(section) not in wanted:
            out.extend(section)
            continue
        used = {m.group(1): m.group(2) for line in section if (m := _EXTMAP.match(line))}
        extra = [
            line
            for ext_id, line in wanted[_mid(section) or ""]
            if ext_id not in used and (m := _EXTMAP.match(line)) and m.group(2) not in used.values()
        ]
        last = max((i for i, line in enumerate(section) if line.startswith("a=extmap:")), default=None)
        if last is None:  # no extmap yet: put them after the connection / mid lines
            last = max((i for i, line in enumerate(section) if line.startswith(("c=", "a=mid:"))), default=0)
        out.extend(section[: last + 1] + extra + section[last + 1 :])
    return newline.join(out) + newline


def candidates(sdp: str) -> list[tuple[str, str, int, str]]:
    """Every ``a=candidate`` as ``(transport, address, port, type)``, in order."""
    found: list[tuple[str, str, int, str]] = []
    for line in sdp.splitlines():
        match = _CANDIDATE.match(line)
        if match:
            found.append((match.group(1).lower(), match.group(2), int(match.group(3)), match.group(4)))
    return found
