"""core.netverdict: observations → ok/warn/fail rows, the fix to ask IT for, the overall verdict."""

from __future__ import annotations

import pytest

from decart_cli.core import netverdict as nv
from decart_cli.core.netverdict import Observation as Obs
from decart_cli.core.netverdict import Result


def test_exports_are_pinned() -> None:
    """The public names of the module are exactly these."""
    assert sorted(nv.__all__) == sorted(
        [
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
    )


def test_proxy_none() -> None:
    """No proxy variables: ok, nothing to ask."""
    row = nv.judge_proxy({})
    assert (row.result, row.fix) == (Result.OK, "")


def test_proxy_warns_and_hides_credentials() -> None:
    """A proxy (either case) warns that UDP never passes it; credentials in the URL are masked."""
    row = nv.judge_proxy({"https_proxy": "http://bob:s3cret@proxy.corp:3128", "NO_PROXY": "localhost"})
    assert row.result is Result.WARN
    assert "s3cret" not in row.detail and "***@proxy.corp:3128" in row.detail
    assert "UDP" in row.detail and "7882" in row.fix
    assert row.data["variables"]["NO_PROXY"] == "localhost"


def test_proxy_unparseable_url() -> None:
    """A proxy value urllib cannot parse is shown as a placeholder, never echoed raw."""
    row = nv.judge_proxy({"HTTP_PROXY": "http://[bad"})
    assert "<unparseable>" in row.detail


def test_dns_outcomes() -> None:
    """Resolved → ok; NXDOMAIN, timeout and other errors → fail with a DNS fix."""
    ok = nv.judge_dns("api", "api.decart.ai", Obs("resolved", 3.0, data={"addresses": ["1.1.1.1"] * 5}))
    assert ok.result is Result.OK and "…" in ok.detail and ok.essential
    for status in ("nxdomain", "timeout", "error"):
        row = nv.judge_dns("platform", "platform.decart.ai", Obs(status, 1.0, "boom"))
        assert row.result is Result.FAIL and row.fix.startswith("allow DNS resolution of platform.decart.ai")
        assert not row.essential


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "10.1.2.3", "100.64.0.1", "::1", "fe80::1%eth0"])
def test_dns_sinkhole(address: str) -> None:
    """A public name answering only private/loopback/CGNAT addresses is a sink-hole (warn)."""
    row = nv.judge_dns("api", "api.decart.ai", Obs("resolved", 1.0, data={"addresses": [address]}))
    assert row.result is Result.WARN and "sink-holed" in row.detail
    assert row.fix == "unblock api.decart.ai in the DNS filter"


def test_dns_sinkhole_not_for_fakes_or_mixed() -> None:
    """Loopback fakes (expect_public=False) and mixed public/private answers are fine."""
    fake = nv.judge_dns(
        "api", "127.0.0.1", Obs("resolved", 1.0, data={"addresses": ["127.0.0.1"]}), expect_public=False
    )
    mixed = nv.judge_dns("api", "x", Obs("resolved", 1.0, data={"addresses": ["10.0.0.1", "8.8.8.8", "junk"]}))
    assert fake.result is Result.OK and mixed.result is Result.OK


@pytest.mark.parametrize(
    ("status", "result", "words"),
    [
        ("connected", Result.OK, "connected"),
        ("refused", Result.FAIL, "active block"),
        ("timeout", Result.FAIL, "silently dropped"),
        ("unreachable", Result.FAIL, "no route"),
        ("error", Result.FAIL, "connect failed"),
        ("skipped", Result.FAIL, "not tried"),
    ],
)
def test_tcp(status: str, result: Result, words: str) -> None:
    """TCP: connected, refused (active block), timed out (silent drop), unreachable, skipped."""
    row = nv.judge_tcp("signaling", "api3.decart.ai", 443, Obs(status, 12.0, "why", {"address": "1.2.3.4"}))
    assert (row.result, row.target) == (result, "api3.decart.ai:443") and words in row.detail
    assert row.fix == ("" if status in ("connected", "skipped") else "allow outbound TCP 443 to api3.decart.ai")


def test_tls_verified_and_vendor_issuer() -> None:
    """A verified chain is ok; an inspection product's issuer warns even when it verifies."""
    good = nv.judge_tls(
        "api",
        "api.decart.ai",
        443,
        Obs("verified", 30.0, data={"version": "TLSv1.3", "issuer": "CN=R11, O=Let's Encrypt"}),
    )
    assert good.result is Result.OK and "TLSv1.3" in good.detail
    zs = nv.judge_tls(
        "turn", "turn.decart.ai", 443, Obs("verified", 30.0, data={"issuer": "CN=Zscaler Intermediate Root CA"})
    )
    assert zs.result is Result.WARN and zs.fix == "exclude turn.decart.ai from TLS inspection"
    assert "breaks the connection" in zs.detail


def test_tls_unverified_on_api() -> None:
    """An untrusted chain on another host asks to exclude that host from inspection."""
    row = nv.judge_tls(
        "api", "api.decart.ai", 443, Obs("unverified", 5.0, data={"verify_error": "self-signed certificate"})
    )
    assert row.result is Result.FAIL and "self-signed certificate" in row.detail and "unknown issuer" in row.detail
    assert row.fix == "exclude api.decart.ai from TLS inspection" and "breaks" not in row.detail


@pytest.mark.parametrize(
    ("status", "words"),
    [("timeout", "no TLS handshake"), ("reset", "cut off"), ("error", "TLS failed"), ("skipped", "not tried")],
)
def test_tls_failures(status: str, words: str) -> None:
    """Handshake timeouts, resets and errors fail; skipped rows carry no fix."""
    row = nv.judge_tls("platform", "platform.decart.ai", 443, Obs(status, 1.0, "x"))
    assert row.result is Result.FAIL and words in row.detail
    assert bool(row.fix) is (status != "skipped")


def _http(status: int, **headers: str) -> Obs:
    return Obs("http", 10.0, data={"status": status, "headers": headers, "url": "wss://h/v1/stream"})


@pytest.mark.parametrize(
    ("obs", "result"),
    [
        (Obs("upgraded", 5.0), Result.OK),
        (_http(401), Result.OK),
        (_http(403, **{"content-type": "application/json"}), Result.OK),
        (_http(407), Result.FAIL),
        (_http(403, via="1.1 proxy"), Result.FAIL),
        (_http(502, **{"proxy-agent": "BlueCoat"}), Result.FAIL),
        (_http(200, **{"content-type": "text/html"}), Result.FAIL),
        (_http(302, **{"content-type": "text/html", "location": "http://portal"}), Result.FAIL),
        (Obs("reset", 1.0, "EOF"), Result.FAIL),
        (Obs("timeout", 1.0), Result.FAIL),
        (Obs("error", 1.0, "boom"), Result.FAIL),
        (Obs("skipped", None, "no DNS"), Result.FAIL),
    ],
)
def test_ws(obs: Obs, result: Result) -> None:
    """A 101 or a plain HTTP refusal is reachable; proxy answers, portals and resets are blocked."""
    row = nv.judge_ws("signaling", "api3.decart.ai", obs)
    assert row.result is result and row.check == "websocket"
    if result is Result.FAIL and obs.status != "skipped":
        assert row.fix == "allow WebSocket upgrades to api3.decart.ai (wss, TCP 443) through the proxy"


@pytest.mark.parametrize(
    ("obs", "result", "key_fix"),
    [
        (Obs("accepted", 5.0), Result.OK, False),
        (Obs("upgraded", 5.0), Result.OK, False),
        (Obs("rejected", 5.0, data={"message": "Invalid API key"}), Result.FAIL, True),
        (_http(401), Result.FAIL, True),
        (_http(407), Result.FAIL, False),
        (_http(404), Result.OK, False),
        (Obs("timeout", 1.0), Result.FAIL, False),
    ],
)
def test_ws_auth(obs: Obs, result: Result, key_fix: bool) -> None:
    """With a key: accepted is ok; a rejection asks to check the key, not the network."""
    row = nv.judge_ws_auth("signaling", "api3.decart.ai", obs)
    assert row.result is result and row.check == "websocket-auth"
    assert ("API key" in row.fix) is key_fix


@pytest.mark.parametrize(
    ("name", "status", "result", "check"),
    [
        ("turn", "answered", Result.OK, "stun"),
        ("turn", "no_answer", Result.FAIL, "stun"),
        ("media", "no_answer", Result.WARN, "udp"),
        ("turn", "refused", Result.FAIL, "stun"),
        ("media", "refused", Result.WARN, "udp"),
        ("stun", "unreachable", Result.FAIL, "stun"),
        ("stun", "error", Result.FAIL, "stun"),
        ("media", "skipped", Result.FAIL, "udp"),
    ],
)
def test_stun(name: str, status: str, result: Result, check: str) -> None:
    """UDP: an answer is ok; silence fails (but only warns 'unverified' for the media port)."""
    obs = Obs(status, 500.0, "x", {"mapped": "203.0.113.5:4000", "rtt_ms": 21.0} if status == "answered" else {})
    row = nv.judge_stun(name, "h", {"turn": 3478, "media": 7882, "stun": 19302}[name], obs)
    assert (row.result, row.check) == (result, check)
    if status == "no_answer":
        assert "blocked or unverified" in row.detail
    if status == "answered":
        assert "203.0.113.5:4000" in row.detail and "21 ms" in row.detail


def test_stun_fixes() -> None:
    """Each UDP target asks for its own rule."""
    obs = Obs("no_answer", 3000.0)
    assert nv.judge_stun("media", "lk.decart.ai", 7882, obs).fix == "allow outbound UDP 7882 to any address"
    assert nv.judge_stun("turn", "turn.decart.ai", 3478, obs).fix == "allow outbound UDP 3478 to turn.decart.ai"
    assert "any address" in nv.judge_stun("stun", "stun.l.google.com", 19302, obs).fix


@pytest.mark.parametrize(
    ("data", "status", "transport", "quality", "result"),
    [
        ({"host": 2, "srflx": 1, "first_srflx_ms": 40.0}, "gathered", "udp", "good", Result.OK),
        ({"host": 2, "srflx": 1, "first_srflx_ms": 200.0}, "gathered", "udp", "fair", Result.WARN),
        ({"host": 2, "srflx": 1, "first_srflx_ms": 400.0}, "gathered", "udp", "poor", Result.WARN),
        ({"host": 2, "srflx": 1}, "gathered", "udp", "good", Result.OK),
        ({"host": 2}, "gathered", "relay", "poor", Result.FAIL),
        ({"host": 2}, "timeout", "relay", "poor", Result.FAIL),
        ({}, "gathered", "failed", "critical", Result.FAIL),
        ({}, "unavailable", "failed", "critical", Result.FAIL),
    ],
)
def test_ice(data: dict[str, float], status: str, transport: str, quality: str, result: Result) -> None:
    """The SDK's classification and bands: srflx → udp (150/300 ms), host only → relay, none → failed."""
    row = nv.judge_ice("stun:x", Obs(status, 100.0, "aiortc missing", data))
    assert (row.data["transport"], row.data["quality"], row.result) == (transport, quality, result)
    assert row.essential
    assert row.detail.startswith(nv.Transport(transport).words)


def test_ice_names_unresolved_stun_server() -> None:
    """When the STUN server's name did not resolve, host candidates prove nothing: UDP "not tested", no fix
    (the DNS rows carry it), never "relay needed"."""
    row = nv.judge_ice("stun:x", Obs("gathered", 10.0, data={"host": 1, "stun_unresolved": "stun.l.google.com"}))
    assert (
        row.detail
        == "not tested: STUN server stun.l.google.com did not resolve (1 host, 0 srflx, 0 relay candidate(s))"
    )
    assert row.result is Result.FAIL and row.fix == "" and row.data["transport"] == "unknown"
    assert "relay needed" not in row.detail
    nothing = nv.judge_ice("stun:x", Obs("gathered", 10.0, data={"stun_unresolved": "stun.l.google.com"}))
    assert nothing.detail.startswith("nothing works: no ICE candidates") and "did not resolve" in nothing.detail


def test_timed_out_row() -> None:
    """A check cut by the global deadline fails with 'timed out'."""
    row = nv.timed_out("tls", "h:443", "api", 8.0)
    assert row.result is Result.FAIL and "timed out" in row.detail and row.essential


def _ice(srflx: int) -> nv.CheckResult:
    return nv.judge_ice("stun:x", Obs("gathered", 10.0, data={"host": 1, "srflx": srflx, "first_srflx_ms": 20.0}))


def test_verdict_works_with_non_essential_failures() -> None:
    """Non-essential failures do not block; their fixes are still listed, failures first."""
    rows = [
        nv.judge_tcp("api", "api.decart.ai", 443, Obs("connected", 5.0)),
        nv.judge_stun("media", "lk.decart.ai", 7882, Obs("no_answer", 3000.0)),
        nv.judge_tcp("platform", "platform.decart.ai", 443, Obs("refused", 1.0)),
        _ice(1),
    ]
    v = nv.verdict(rows)
    assert v.streaming_should_work and v.quality == "good" and v.transport is nv.Transport.UDP
    assert v.fixes == ("allow outbound TCP 443 to platform.decart.ai", "allow outbound UDP 7882 to any address")
    assert "1 non-essential check(s) failed, 1 warning(s)" in v.summary and v.rtt_ms == 20.0
    doc = v.to_json()
    assert doc["transport_words"] == "direct UDP works" and doc["streaming_should_work"] is True


def test_verdict_blocked() -> None:
    """An essential failure blocks streaming: quality critical, blocking rows named."""
    rows = [nv.judge_tcp("signaling", "api3.decart.ai", 443, Obs("timeout", 3000.0)), _ice(0)]
    v = nv.verdict(rows)
    assert not v.streaming_should_work and v.quality == "critical"
    assert v.blocking == ("tcp api3.decart.ai:443", "ice stun:x")
    assert "relay needed" in v.summary


def test_verdict_without_ice_row() -> None:
    """Without an ICE row the transport is unknown ('failed') but other rows still decide."""
    v = nv.verdict([nv.judge_proxy({})])
    assert (
        v.transport is nv.Transport.FAILED and v.streaming_should_work and v.summary.startswith("streaming should work")
    )


def test_row_json_shape() -> None:
    """A row's JSON has check, target, result, detail, fix, elapsed_ms and data (with name/essential)."""
    doc = nv.judge_tcp("api", "api.decart.ai", 443, Obs("connected", 12.345, data={"address": "1.2.3.4"})).to_json()
    assert list(doc) == ["check", "target", "result", "detail", "fix", "elapsed_ms", "data"]
    assert doc["elapsed_ms"] == 12.3 and doc["data"] == {"name": "api", "essential": True, "address": "1.2.3.4"}
