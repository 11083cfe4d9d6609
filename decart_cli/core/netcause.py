"""One root cause instead of many symptoms: a machine where no name resolves at all.

Without DNS every target fails its DNS row, every TCP/TLS/WebSocket/STUN row is "not tried", and
ICE can only gather host candidates. Reporting that as five "allow DNS resolution of …" fixes and
"relay needed" sends IT after five firewall rules and a relay that are not the problem.
:func:`dns_root_cause` recognises the pattern — every DNS row failed, including a name that is not
Decart's (the public STUN server), so it is not a filter aimed at Decart — and :func:`consolidate`
replaces the per-name fixes by one.

Pure: rows in, rows out (no I/O).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from decart_cli.core.netverdict import CheckResult, Result

__all__ = ["DnsRootCause", "consolidate", "dns_root_cause"]

THIRD_PARTY: Final = "stun"  # the logical target that is not a Decart name


@dataclass(frozen=True)
class DnsRootCause:
    """``summary`` for the verdict line and ``fix`` (the one rule to ask for)."""

    summary: str
    fix: str


def dns_root_cause(rows: Sequence[CheckResult]) -> DnsRootCause | None:
    """The root cause when DNS does not work at all on this machine, else ``None``.

    Needs at least two DNS rows, all failed, and the non-Decart name (the STUN server) failing too
    when it was looked up: a filter that blocks only Decart's names stays a per-name finding.
    """
    dns = [r for r in rows if r.check == "dns"]
    if len(dns) < 2 or any(r.result is not Result.FAIL for r in dns):
        return None
    third = [r for r in rows if r.name == THIRD_PARTY and r.check == "stun"]
    if third and not all(str(r.data.get("dns_status", "")) not in ("", "resolved") for r in third):
        return None
    statuses = {str(r.data.get("dns_status", "error")) for r in dns} | {
        str(r.data["dns_status"]) for r in third if "dns_status" in r.data
    }
    names = len(dns) + len(third)
    if statuses == {"timeout"}:
        summary = f"DNS is unreachable: no resolver answered for any of {names} names"
        fix = "get DNS working on this machine: the resolver does not answer (check the network connection and VPN)"
    else:
        summary = f"DNS does not work here: none of {names} names resolves, not only Decart's"
        fix = (
            "get DNS working on this machine: no name resolves "
            "(check the network connection, the VPN and the resolver in /etc/resolv.conf)"
        )
    return DnsRootCause(summary, fix)


def consolidate(rows: Sequence[CheckResult]) -> list[CheckResult]:
    """``rows`` with the per-name DNS fixes replaced by the root cause, named once (on the first DNS row)."""
    cause = dns_root_cause(rows)
    if cause is None:
        return list(rows)
    out: list[CheckResult] = []
    named = False
    for row in rows:
        if row.check == "dns":
            row = replace(row, fix="" if named else cause.fix)
            named = True
        out.append(row)
    return out
