"""Judging network probes: observations in, ok / warn / fail rows, fixes and one verdict out.

Pure: the probes (``transport/probes.py``, ``transport/ice_probe.py``) measure and return an
:class:`Observation`; the ``judge_*`` functions here turn it into a :class:`CheckResult` carrying
the one-line fix to ask IT for, and :func:`verdict` folds all rows into the answer "should
streaming work here". The rules follow Decart's firewall guidance (TCP 443 to api/api3/platform/
turn/lk.decart.ai, UDP 3478 and 7882 outbound, UDP never through an HTTP proxy, never TLS-intercept
turn.decart.ai) and the JS SDK preflight's words (client-behaviour.md G, decart-protocol.md §9):
any srflx candidate → "direct UDP works"; only host candidates → "relay needed"; none → "nothing works".

Essential rows — the ones whose failure makes :func:`verdict` say streaming is blocked — are the
REST API and signaling rows (DNS, TCP, TLS, WebSocket) and the ICE row: the direct-WebRTC path
this tool uses has no TURN fallback, so it needs direct UDP. Other rows (platform telemetry, TURN,
LiveKit media, proxy) still fail or warn with their fix, but do not block.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from decart_cli.core.server_errors import explain_refusal

__all__ = [
    "ESSENTIAL_TARGETS",
    "INSPECTION_VENDORS",
    "CheckResult",
    "Observation",
    "Result",
    "Transport",
    "Verdict",
    "judge_dns",
    "judge_ice",
    "judge_proxy",
    "judge_stun",
    "judge_tcp",
    "judge_tls",
    "judge_ws",
    "judge_ws_auth",
    "timed_out",
    "verdict",
]

ESSENTIAL_TARGETS: Final = frozenset({"api", "signaling"})
PROXY_VARS: Final = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
# Issuer names of TLS-inspection products (client-behaviour.md G.4). Matched case-insensitively.
INSPECTION_VENDORS: Final = (
    "zscaler",
    "netskope",
    "palo alto",
    "fortinet",
    "fortigate",
    "sophos",
    "cisco umbrella",
    "forcepoint",
    "blue coat",
    "symantec web",
    "mcafee web",
    "skyhigh",
    "avast",
    "kaspersky",
    "eset ssl filter",
    "bitdefender",
)
RTT_FAIR_MS: Final = 150.0  # SDK preflight bands (decart-protocol.md §9)
RTT_POOR_MS: Final = 300.0
NOT_INTERCEPTED: Final = "turn"  # the seed: decrypting turn.decart.ai breaks the connection


class Result(StrEnum):
    """Outcome of one row."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Transport(StrEnum):
    """The SDK preflight's media transport classification."""

    UDP = "udp"
    RELAY = "relay"
    FAILED = "failed"
    UNKNOWN = "unknown"  # not tested: the STUN server's name did not resolve

    @property
    def words(self) -> str:
        """The verdict words shown to people."""
        return {
            "udp": "direct UDP works",
            "relay": "relay needed",
            "failed": "nothing works",
            "unknown": "UDP not tested",
        }[self.value]


@dataclass(frozen=True)
class Observation:
    """What a probe measured, before judgement.

    Attributes:
        status: the probe's outcome word (e.g. ``resolved``, ``refused``, ``timeout``, ``skipped``).
        elapsed_ms: time the probe took, when meaningful.
        error: the error text for failures (already free of secrets), or why it was skipped.
        data: measured values (addresses, TLS version, issuer, HTTP status, mapped address, …).
    """

    status: str
    elapsed_ms: float | None = None
    error: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """One row of the report.

    Attributes:
        check: ``proxy``, ``dns``, ``tcp``, ``tls``, ``websocket``, ``websocket-auth``, ``stun``,
            ``udp`` or ``ice``.
        target: what was probed (``api3.decart.ai:443``).
        result: ok / warn / fail.
        detail: one human line with the measurement.
        fix: the one-line rule to request from IT ("" when nothing to ask).
        name: the logical target (``api``, ``signaling``, ``platform``, ``turn``, ``media``, ``stun``).
        essential: a failure here blocks streaming (module docstring).
    """

    check: str
    target: str
    result: Result
    detail: str
    fix: str = ""
    elapsed_ms: float | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    essential: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON row: check, target, result, detail, fix, elapsed_ms, data."""
        return {
            "check": self.check,
            "target": self.target,
            "result": self.result.value,
            "detail": self.detail,
            "fix": self.fix,
            "elapsed_ms": None if self.elapsed_ms is None else round(self.elapsed_ms, 1),
            "data": {"name": self.name, "essential": self.essential, **self.data},
        }


@dataclass(frozen=True)
class Verdict:
    """The overall answer."""

    streaming_should_work: bool
    quality: str  # good / fair / poor / critical, the SDK scale
    transport: Transport
    rtt_ms: float | None
    summary: str
    fixes: tuple[str, ...]
    blocking: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON ``verdict`` object."""
        return {
            "streaming_should_work": self.streaming_should_work,
            "quality": self.quality,
            "transport": self.transport.value,
            "transport_words": self.transport.words,
            "rtt_ms": self.rtt_ms,
            "summary": self.summary,
            "fixes": list(self.fixes),
            "blocking": list(self.blocking),
        }


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} ms"


def _row(check: str, target: str, name: str, obs: Observation, result: Result, detail: str, fix: str) -> CheckResult:
    essential = name in ESSENTIAL_TARGETS or check == "ice"
    return CheckResult(check, target, result, detail, fix, obs.elapsed_ms, dict(obs.data), name, essential)


def _not_tried(check: str, target: str, name: str, obs: Observation) -> CheckResult:
    return _row(check, target, name, obs, Result.FAIL, f"not tried: {obs.error}", "")


def _strip_userinfo(url: str) -> str:
    # Proxy URLs may carry user:password@; never echo credentials.
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable>"
    if parts.username or parts.password:
        netloc = parts.netloc.rsplit("@", 1)[1]
        return parts._replace(netloc=f"***@{netloc}").geturl()
    return url


def judge_proxy(env: Mapping[str, str]) -> CheckResult:
    """Warn when an HTTP proxy is configured: media (UDP) never passes one (the seed)."""
    found = {}
    for var in PROXY_VARS:
        value = env.get(var) or env.get(var.lower())
        if value:
            found[var] = _strip_userinfo(value) if var != "NO_PROXY" else value
    obs = Observation("read", data={"variables": found})
    proxies = {k: v for k, v in found.items() if k != "NO_PROXY"}
    if not proxies:
        return _row("proxy", "environment", "proxy", obs, Result.OK, "no proxy variables set", "")
    shown = ", ".join(f"{k}={v}" for k, v in proxies.items())
    return _row(
        "proxy",
        "environment",
        "proxy",
        obs,
        Result.WARN,
        f"{shown}: signaling may use it, but media (UDP) never passes an HTTP proxy; these checks connect directly",
        "let media bypass the proxy: allow outbound UDP 3478 and 7882 directly",
    )


def _sinkholed(addresses: Iterable[str]) -> str | None:
    addrs = list(addresses)
    bad = []
    for text in addrs:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if not ip.is_global:
            bad.append(text)
    return bad[0] if addrs and len(bad) == len(addrs) else None


def judge_dns(name: str, host: str, obs: Observation, *, expect_public: bool = True) -> CheckResult:
    """``resolved`` (data ``addresses``) / ``nxdomain`` / ``timeout`` / ``error``.

    A public Decart name answering only private, loopback or unspecified addresses is a DNS filter's
    sink-hole (or split horizon): warn. ``expect_public=False`` (loopback fakes) skips that test.
    """
    if obs.status == "resolved":
        addresses = list(obs.data.get("addresses", []))
        shown = ", ".join(addresses[:3]) + (" …" if len(addresses) > 3 else "")
        bad = _sinkholed(addresses) if expect_public else None
        if bad is not None:
            return _row(
                "dns",
                host,
                name,
                obs,
                Result.WARN,
                f"resolves to {bad}, not a public address: sink-holed by a DNS filter (or split horizon)",
                f"unblock {host} in the DNS filter",
            )
        return _row("dns", host, name, obs, Result.OK, f"{shown} in {_ms(obs.elapsed_ms)}", "")
    fix = f"allow DNS resolution of {host} (check the VPN or DNS filter)"
    obs = replace(obs, data={**obs.data, "dns_status": obs.status})
    if obs.status == "nxdomain":
        return _row("dns", host, name, obs, Result.FAIL, f"does not resolve ({obs.error})", fix)
    if obs.status == "timeout":
        return _row("dns", host, name, obs, Result.FAIL, f"no DNS answer within {_ms(obs.elapsed_ms)}", fix)
    return _row("dns", host, name, obs, Result.FAIL, f"DNS failed: {obs.error}", fix)


def judge_tcp(name: str, host: str, port: int, obs: Observation) -> CheckResult:
    """``connected`` / ``refused`` (active block) / ``timeout`` (silent drop) / ``unreachable`` / ``skipped``."""
    target = f"{host}:{port}"
    peer = obs.data.get("address", host)
    fix = f"allow outbound TCP {port} to {host}"
    if obs.status == "connected":
        return _row("tcp", target, name, obs, Result.OK, f"connected to {peer} in {_ms(obs.elapsed_ms)}", "")
    if obs.status == "refused":
        detail = f"refused by {peer} in {_ms(obs.elapsed_ms)}: an active block (firewall reject) or nothing listening"
        return _row("tcp", target, name, obs, Result.FAIL, detail, fix)
    if obs.status == "timeout":
        detail = f"no answer within {_ms(obs.elapsed_ms)}: packets silently dropped"
        return _row("tcp", target, name, obs, Result.FAIL, detail, fix)
    if obs.status == "unreachable":
        return _row("tcp", target, name, obs, Result.FAIL, f"no route: {obs.error}", fix)
    if obs.status == "skipped":
        return _not_tried("tcp", target, name, obs)
    return _row("tcp", target, name, obs, Result.FAIL, f"connect failed: {obs.error}", fix)


def _inspection_fix(host: str) -> str:
    return f"exclude {host} from TLS inspection"


def judge_tls(name: str, host: str, port: int, obs: Observation) -> CheckResult:
    """``verified`` / ``unverified`` (data ``verify_error``, ``issuer``) / ``reset`` / ``timeout`` / ``error``.

    A chain that does not verify against the public roots, or an issuer naming an inspection product,
    means "TLS inspection likely". For turn.decart.ai that is fatal for media (the seed).
    """
    target = f"{host}:{port}"
    issuer = str(obs.data.get("issuer") or "unknown issuer")
    turn_note = "; decrypting TURN traffic breaks the connection" if name == NOT_INTERCEPTED else ""
    if obs.status == "verified":
        version = obs.data.get("version", "TLS")
        vendor = next((v for v in INSPECTION_VENDORS if v in issuer.lower()), None)
        if vendor is not None:
            detail = f"{version}, issuer {issuer!r} is an inspection product: TLS inspection likely{turn_note}"
            return _row("tls", target, name, obs, Result.WARN, detail, _inspection_fix(host))
        detail = f"{version}, verified, issuer {issuer!r}, {_ms(obs.elapsed_ms)}"
        return _row("tls", target, name, obs, Result.OK, detail, "")
    if obs.status == "unverified":
        reason = obs.data.get("verify_error") or obs.error
        if obs.data.get("local_root"):
            detail = (
                f"certificate chains to a locally installed root, not a public one (issuer {issuer!r}): "
                f"TLS inspection{turn_note}"
            )
            return _row("tls", target, name, obs, Result.FAIL, detail, _inspection_fix(host))
        detail = f"certificate not trusted by the public roots ({reason}), issuer {issuer!r}: TLS inspection likely{turn_note}"
        return _row("tls", target, name, obs, Result.FAIL, detail, _inspection_fix(host))
    if obs.status == "skipped":
        return _not_tried("tls", target, name, obs)
    fix = f"allow TLS to {host}:{port} without interception"
    if obs.status == "timeout":
        return _row("tls", target, name, obs, Result.FAIL, f"no TLS handshake within {_ms(obs.elapsed_ms)}", fix)
    if obs.status == "reset":
        detail = f"handshake cut off ({obs.error}): a proxy or firewall interrupted it"
        return _row("tls", target, name, obs, Result.FAIL, detail, fix)
    return _row("tls", target, name, obs, Result.FAIL, f"TLS failed: {obs.error}", fix)


def _proxy_marker(data: Mapping[str, Any]) -> str | None:
    headers = {str(k).lower(): str(v) for k, v in dict(data.get("headers", {})).items()}
    status = int(data.get("status", 0))
    if status == 407:
        return "407 Proxy Authentication Required"
    for header in ("proxy-agent", "via", "x-squid-error"):
        if header in headers:
            return f"{header}: {headers[header]}"
    if status == 200:
        return "an HTTP 200 page instead of an upgrade (proxy or captive portal)"
    if "text/html" in headers.get("content-type", "") and status in (302, 303, 307):
        return f"an HTML redirect to {headers.get('location', '?')} (captive portal)"
    return None


def _ws_failure(check: str, target: str, name: str, obs: Observation, fix: str) -> CheckResult:
    if obs.status == "skipped":
        return _not_tried(check, target, name, obs)
    if obs.status == "reset":
        detail = f"connection cut during the upgrade ({obs.error}): blocked by a proxy or firewall"
    elif obs.status == "timeout":
        detail = f"no upgrade answer within {_ms(obs.elapsed_ms)}"
    else:
        detail = f"upgrade failed: {obs.error}"
    return _row(check, target, name, obs, Result.FAIL, detail, fix)


def judge_ws(name: str, host: str, obs: Observation) -> CheckResult:
    """``upgraded`` (101) / ``http`` (data ``status``, ``headers``) / ``reset`` / ``timeout`` / ``error``.

    Without credentials a 101 or an HTTP refusal (401, 403, 400…) both prove the path reaches the
    service; a proxy's answer (407, ``Via``/``Proxy-Agent``, a 200 page) or a reset means blocked.
    """
    fix = f"allow WebSocket upgrades to {host} (wss, TCP 443) through the proxy"
    target = str(obs.data.get("url", host))
    if obs.status == "upgraded":
        detail = f"upgrade accepted (101) in {_ms(obs.elapsed_ms)}: reachable"
        return _row("websocket", target, name, obs, Result.OK, detail, "")
    if obs.status == "http":
        marker = _proxy_marker(obs.data)
        status = obs.data.get("status")
        if marker is not None:
            detail = f"HTTP {status} from something in the way ({marker}): upgrade blocked"
            return _row("websocket", target, name, obs, Result.FAIL, detail, fix)
        detail = f"server refused the anonymous upgrade with HTTP {status}: reachable"
        return _row("websocket", target, name, obs, Result.OK, detail, "")
    return _ws_failure("websocket", target, name, obs, fix)


def judge_ws_auth(
    name: str, host: str, obs: Observation, *, credential_kind: str = "api key", model: str | None = None
) -> CheckResult:
    """``accepted`` / ``rejected`` (data ``message``) / ``http`` / failures as :func:`judge_ws`.

    A rejection is worded for the credential that was used (:func:`~decart_cli.core.server_errors.explain_refusal`):
    an expired or model-restricted client token says so and how to mint a new one, not "check the API key".
    """
    target = str(obs.data.get("url", host))

    def rejected(text: str, detail_prefix: str) -> CheckResult:
        refused = explain_refusal(text, client_token=credential_kind == "client token", model=model)
        words = refused.reason or text or "no reason given"
        detail = f"{detail_prefix} the {refused.subject}: {words}"
        fix = f"{refused.hint} (the {refused.subject}, not a network rule)"
        return _row("websocket-auth", target, name, obs, Result.FAIL, detail, fix)

    if obs.status == "accepted":
        detail = (
            f"credential accepted: upgraded in {_ms(obs.elapsed_ms)}, no rejection for {_ms(obs.data.get('waited_ms'))}"
        )
        return _row("websocket-auth", target, name, obs, Result.OK, detail, "")
    if obs.status == "rejected":
        return rejected(str(obs.data.get("message", obs.error)), "server rejected")
    if obs.status == "http":
        status = obs.data.get("status")
        if status in (401, 403) and _proxy_marker(obs.data) is None:
            return rejected(str(obs.data.get("message", "")), f"server refused (HTTP {status})")
        return replace(judge_ws(name, host, obs), check="websocket-auth")
    if obs.status == "upgraded":
        detail = f"upgrade accepted (101) in {_ms(obs.elapsed_ms)}"
        return _row("websocket-auth", target, name, obs, Result.OK, detail, "")
    return _ws_failure("websocket-auth", target, name, obs, f"allow WebSocket upgrades to {host} (wss, TCP 443)")


def judge_stun(name: str, host: str, port: int, obs: Observation) -> CheckResult:
    """UDP probes: ``answered`` / ``refused`` (ICMP) / ``no_answer`` / ``unreachable`` / ``skipped`` / ``error``.

    ``name`` ``media`` is the UDP 7882 probe (check ``udp``): silence there is only "unverified",
    because a media server may drop a Binding request that carries no ICE credentials.
    """
    check = "udp" if name == "media" else "stun"
    target = f"{host}:{port}/udp"
    if name == "stun":
        fix = "allow outbound UDP to any address (STUN and WebRTC media)"
    elif name == "media":
        fix = f"allow outbound UDP {port} to any address"
    else:
        fix = f"allow outbound UDP {port} to {host}"
    if obs.status == "answered":
        mapped = obs.data.get("mapped")
        seen = f"reflexive address {mapped}, " if mapped else ""
        detail = f"STUN answered: {seen}RTT {_ms(obs.data.get('rtt_ms'))}"
        return _row(check, target, name, obs, Result.OK, detail, "")
    if obs.status == "skipped":
        return _not_tried(check, target, name, obs)
    if obs.status == "no_answer":
        detail = f"no answer within {_ms(obs.elapsed_ms)}: UDP {port} blocked or unverified"
        if name == "media":
            detail += " (a media server may ignore STUN without ICE credentials)"
            return _row(check, target, name, obs, Result.WARN, detail, fix)
        return _row(check, target, name, obs, Result.FAIL, detail, fix)
    if obs.status == "refused":
        detail = f"ICMP port unreachable from {obs.data.get('address', host)}: UDP got there, nothing answers on {port}"
        result = Result.WARN if name == "media" else Result.FAIL
        return _row(check, target, name, obs, result, detail, fix)
    if obs.status == "unreachable":
        return _row(check, target, name, obs, Result.FAIL, f"no route: {obs.error}", fix)
    return _row(check, target, name, obs, Result.FAIL, f"UDP probe failed: {obs.error}", fix)


def judge_ice(target: str, obs: Observation) -> CheckResult:
    """ICE gathering (data ``host``, ``srflx``, ``relay`` counts, ``first_srflx_ms``) → SDK words.

    Statuses: ``gathered``; ``timeout`` (data may still hold the host-only count); ``unavailable``
    (aiortc missing); ``error``.
    """
    fix = "allow outbound UDP to any address (direct WebRTC media: STUN 3478/19302 and media ports)"
    host = int(obs.data.get("host", 0))
    srflx = int(obs.data.get("srflx", 0))
    relay = int(obs.data.get("relay", 0))
    rtt = obs.data.get("first_srflx_ms")
    transport = Transport.UDP if srflx else Transport.RELAY if host or relay else Transport.FAILED
    data = {**obs.data, "transport": transport.value, "quality": _quality(transport, rtt)}
    obs = Observation(obs.status, obs.elapsed_ms, obs.error, data)
    counts = f"{host} host, {srflx} srflx, {relay} relay candidate(s)"
    if obs.status in ("unavailable", "error") and transport is Transport.FAILED:
        return _row("ice", target, "ice", obs, Result.FAIL, f"nothing works: {obs.error}", fix)
    if transport is Transport.UDP:
        detail = f"{transport.words}: {counts}, first srflx after {_ms(rtt)} (gathering time, not RTT)"
        quality = data["quality"]
        return _row("ice", target, "ice", obs, Result.OK if quality == "good" else Result.WARN, detail, "")
    if obs.data.get("stun_unresolved") and (host or relay) and not srflx:
        # Without a STUN server only host candidates can appear: that says nothing about UDP.
        unknown = {**data, "transport": Transport.UNKNOWN.value, "quality": "critical"}
        obs = Observation(obs.status, obs.elapsed_ms, obs.error, unknown)
        detail = f"not tested: STUN server {obs.data['stun_unresolved']} did not resolve ({counts})"
        return _row("ice", target, "ice", obs, Result.FAIL, detail, "")
    why = "; gathering timed out" if obs.status == "timeout" else ""
    if obs.data.get("stun_unresolved"):
        why += f"; STUN server {obs.data['stun_unresolved']} did not resolve"
    if transport is Transport.RELAY:
        detail = f"{transport.words}: {counts}; direct UDP could not be confirmed{why}"
    else:
        detail = f"{transport.words}: no ICE candidates (no usable network interface){why}"
    return _row("ice", target, "ice", obs, Result.FAIL, detail, fix)


def _quality(transport: Transport, rtt_ms: Any) -> str:
    if transport in (Transport.FAILED, Transport.UNKNOWN):
        return "critical"
    if transport is Transport.RELAY:
        return "poor"
    if isinstance(rtt_ms, int | float):
        if rtt_ms > RTT_POOR_MS:
            return "poor"
        if rtt_ms > RTT_FAIR_MS:
            return "fair"
    return "good"


def timed_out(check: str, target: str, name: str, budget_s: float) -> CheckResult:
    """The row for a check still running when the global ``--timeout`` expired."""
    obs = Observation("timeout", budget_s * 1000.0)
    return _row(check, target, name, obs, Result.FAIL, f"timed out (still running at the {budget_s:g} s deadline)", "")


def verdict(results: Iterable[CheckResult], *, root_cause: str | None = None) -> Verdict:
    """Fold all rows into the overall answer: blocked when any essential row failed.

    Args:
        root_cause: one finding that explains every failure (``core.netcause``: no DNS at all),
            said instead of the count of failed checks.
    """
    rows = list(results)
    ice = next((r for r in rows if r.check == "ice"), None)
    transport = Transport(str(ice.data.get("transport", "failed"))) if ice else Transport.FAILED
    rtt = ice.data.get("first_srflx_ms") if ice else None
    blocking = tuple(f"{r.check} {r.target}" for r in rows if r.essential and r.result is Result.FAIL)
    ordered = [r for r in rows if r.result is Result.FAIL] + [r for r in rows if r.result is Result.WARN]
    fixes = tuple(dict.fromkeys(r.fix for r in ordered if r.fix))
    works = not blocking
    quality = _quality(transport, rtt) if works else "critical"
    failed = sum(r.result is Result.FAIL for r in rows)
    warned = sum(r.result is Result.WARN for r in rows)
    if works:
        extra = f"; {failed} non-essential check(s) failed, {warned} warning(s)" if failed or warned else ""
        summary = f"streaming should work: {transport.words} ({quality}){extra}"
    else:
        summary = f"streaming is blocked: {len(blocking)} essential check(s) failed ({transport.words})"
        if root_cause:
            summary = f"streaming is blocked: {root_cause}"
    return Verdict(works, quality, transport, rtt if isinstance(rtt, int | float) else None, summary, fixes, blocking)
