"""core.netcause: a machine without DNS gets one root cause, not five DNS fixes and "relay needed"."""

from __future__ import annotations

from decart_cli.core import netcause
from decart_cli.core import netverdict as nv
from decart_cli.core.netverdict import Observation as Obs

DECART = ["api.decart.ai", "api3.decart.ai", "platform.decart.ai", "turn.decart.ai", "lk.decart.ai"]
NAMES = ["api", "signaling", "platform", "turn", "media"]


def _rows(dns_status: str, stun_status: str | None) -> list[nv.CheckResult]:
    rows = [nv.judge_proxy({})]
    for name, host in zip(NAMES, DECART, strict=True):
        error = {"nxdomain": "Name or service not known", "timeout": "no DNS answer"}[dns_status]
        rows.append(nv.judge_dns(name, host, Obs(dns_status, 2500.0 if dns_status == "timeout" else 1.0, error)))
        rows.append(nv.judge_tcp(name, host, 443, Obs("skipped", error=f"{host} did not resolve")))
    if stun_status is None:
        stun = Obs("answered", 20.0, data={"mapped": "203.0.113.5:4000", "rtt_ms": 20.0})
    else:
        stun = Obs("skipped", error="stun.l.google.com does not resolve", data={"dns_status": stun_status})
    rows.append(nv.judge_stun("stun", "stun.l.google.com", 19302, stun))
    rows.append(
        nv.judge_ice(
            "stun:stun.l.google.com:19302",
            Obs("gathered", 5.0, data={"host": 2, "stun_unresolved": "stun.l.google.com"}),
        )
    )
    return rows


def test_no_name_resolves_is_one_root_cause() -> None:
    """Every DNS row failed, the STUN server's name too: one fix, one summary, no 'relay needed'."""
    rows = netcause.consolidate(_rows("nxdomain", "nxdomain"))
    cause = netcause.dns_root_cause(rows)
    assert cause is not None and "none of 6 names resolves" in cause.summary
    verdict = nv.verdict(rows, root_cause=cause.summary)
    assert verdict.fixes == (cause.fix,) and "/etc/resolv.conf" in cause.fix
    assert (
        verdict.summary == "streaming is blocked: DNS does not work here: none of 6 names resolves, not only Decart's"
    )
    assert [r.fix for r in rows if r.check == "dns"] == [cause.fix, "", "", "", ""]
    assert "relay needed" not in " ".join(r.detail for r in rows) + verdict.summary


def test_resolver_that_never_answers_is_named_unreachable() -> None:
    """Only timeouts: the resolver is unreachable (said once)."""
    rows = netcause.consolidate(_rows("timeout", "timeout"))
    cause = netcause.dns_root_cause(rows)
    assert cause is not None and cause.summary.startswith("DNS is unreachable: no resolver answered")
    assert nv.verdict(rows, root_cause=cause.summary).fixes == (cause.fix,)


def test_a_filter_on_decart_names_only_stays_per_name() -> None:
    """Decart's names fail but the public STUN name resolves: a DNS filter, reported per name as before."""
    rows = _rows("nxdomain", None)
    assert netcause.dns_root_cause(rows) is None
    assert netcause.consolidate(rows) == rows
    fixes = nv.verdict(rows).fixes
    assert [f for f in fixes if f.startswith("allow DNS resolution of")] == [
        f"allow DNS resolution of {h} (check the VPN or DNS filter)" for h in DECART
    ]


def test_one_name_resolving_is_not_a_root_cause() -> None:
    """When any Decart name resolves, DNS works: no root cause."""
    rows = _rows("nxdomain", "nxdomain")
    rows[1] = nv.judge_dns("api", "api.decart.ai", Obs("resolved", 3.0, data={"addresses": ["203.0.113.9"]}))
    assert netcause.dns_root_cause(rows) is None
