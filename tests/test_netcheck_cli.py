"""``decart netcheck`` end to end: every target redirected to loopback fakes through the override.

No test sends a packet beyond this machine: every name is either an IP literal or answered by the
override's ``hosts`` map, and the ICE probe only ever gets a 127.0.0.1 STUN server (or none).
Wall times are printed (run with ``-s`` to see them); they are measurements, not asserts, except the
contract that a run finishes within its ``--timeout`` plus interpreter start-up.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_netcheck_probes import (
    Certs,
    blackhole_tcp,
    closed_port,
    has_non_loopback_ipv4,
    make_certs,
    server_context,
    silent_udp,
    stun_responder,
    ws_server,
)

from decart_cli.app import main
from decart_cli.commands import netcheck
from decart_cli.core.netverdict import CheckResult, Result, verdict
from decart_cli.ui.netcheck_view import build_table, verdict_line

STARTUP_SLACK = 6.0  # interpreter + aiortc import on a loaded 2-core machine; measured ~1 s idle
BLOCKED: dict[str, Any] = {
    "api": {"host": "api.invalid"},
    "signaling": {"host": "api3.invalid"},
    "platform": {"host": "platform.invalid"},
    "turn": {"host": "turn.invalid"},
    "media": {"host": "lk.invalid"},
    "stun": {"host": "stun.invalid"},
    "hosts": {
        n: [] for n in ("api.invalid", "api3.invalid", "platform.invalid", "turn.invalid", "lk.invalid", "stun.invalid")
    },
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Certificates shared by the module."""
    return make_certs(tmp_path_factory.mktemp("certs"))


def loopback_endpoints(tcp_port: int, udp_port: int, media_udp: int | None = None, **extra: Any) -> dict[str, Any]:
    """Every target on 127.0.0.1: TCP/TLS/WS on ``tcp_port``, STUN on ``udp_port``."""
    hosts = {name: {"host": "127.0.0.1", "port": tcp_port} for name in ("api", "signaling", "platform")}
    return {
        **hosts,
        "turn": {"host": "127.0.0.1", "port": tcp_port, "udp_port": udp_port},
        "media": {"host": "127.0.0.1", "port": tcp_port, "udp_port": media_udp or udp_port},
        "stun": {"host": "127.0.0.1", "udp_port": udp_port},
        **extra,
    }


async def run_cli(args: list[str], endpoints: dict[str, Any], **env: str) -> tuple[int, str, str, float]:
    """Run ``decart netcheck`` in a subprocess with the override; returns (exit, stdout, stderr, seconds)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECART_") and "proxy" not in k.lower()}
    environ |= {
        "DECART_NETCHECK_ENDPOINTS": json.dumps(endpoints),
        "DECART_CONFIG_DIR": env.pop("cfg", "/nonexistent"),
        **env,
    }
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "decart_cli",
        "netcheck",
        *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode(), time.perf_counter() - start


def rows_of(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Rows keyed by (check, logical name)."""
    return {(r["check"], r["data"]["name"]): r for r in doc["checks"]}


@pytest.mark.slow
async def test_no_network_every_check_fails_within_timeout() -> None:
    """Like CI without network: nothing resolves, every network check fails with its reason, exit 1."""
    code, out, err, seconds = await run_cli(["--json", "--timeout", "8"], BLOCKED)
    print(f"\nmeasured: everything unresolvable, --timeout 8: {seconds:.2f} s wall (incl. start-up)")
    assert code == 1 and seconds < 8 + STARTUP_SLACK
    doc = json.loads(out)  # stdout holds the JSON document and nothing else
    assert doc["streaming_should_work"] is False and doc["verdict"]["quality"] == "critical"
    for row in doc["checks"]:
        if row["check"] == "proxy":
            continue
        assert row["result"] == "fail", row
        if row["check"] == "dns":
            assert row["detail"].startswith("does not resolve")
        elif row["check"] == "ice":
            assert row["detail"].startswith(("not tested: STUN server", "nothing works"))
        else:
            assert "not tried" in row["detail"] and (
                "did not resolve" in row["detail"] or "does not resolve" in row["detail"]
            )
    assert "streaming is blocked" in err and "error:" in err
    # The root cause, named once: not five DNS fixes and "relay needed".
    verdict_doc = doc["verdict"]
    assert verdict_doc["summary"].startswith("streaming is blocked: DNS does not work here: none of 6 names resolves")
    assert len(verdict_doc["fixes"]) == 1 and verdict_doc["fixes"][0].startswith("get DNS working on this machine")
    assert [r["fix"] for r in doc["checks"] if r["check"] == "dns"][1:] == ["", "", "", ""]
    assert "relay needed" not in out + err


def _unshare_works() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _unshare_works(), reason="needs 'unshare -rn' (user + network namespaces)")
async def test_real_defaults_in_empty_network_namespace() -> None:
    """The real defaults, run inside a network namespace with no interface up: nothing can leave the
    machine (unshare fails before exec otherwise), and every check fails with its reason, exit 1."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECART_") and "proxy" not in k.lower()}
    environ["DECART_CONFIG_DIR"] = "/nonexistent"
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "unshare",
        "-rn",
        sys.executable,
        "-m",
        "decart_cli",
        "netcheck",
        "--json",
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _err = await proc.communicate()
    seconds = time.perf_counter() - start
    print(f"\nmeasured: real defaults with no network at all (empty netns): {seconds:.2f} s wall (incl. start-up)")
    assert proc.returncode == 1 and seconds < netcheck.DEFAULT_TIMEOUT + STARTUP_SLACK
    doc = json.loads(out)
    rows = rows_of(doc)
    assert rows[("dns", "signaling")]["target"] == "api3.decart.ai"
    assert rows[("websocket", "signaling")]["target"] == "wss://api3.decart.ai/v1/stream?model=lucy-2.1"
    assert all(r["result"] == "fail" for k, r in rows.items() if k[0] != "proxy")
    assert rows[("ice", "ice")]["detail"].startswith("nothing works")
    assert doc["verdict"]["transport_words"] == "nothing works"


@pytest.mark.slow
async def test_silent_drops_bounded_by_timeout() -> None:
    """Everything silently dropped (TCP SYNs and UDP): the run still ends by --timeout, all failed."""
    with blackhole_tcp() as tcp_port, silent_udp() as udp_port:
        code, out, _err, seconds = await run_cli(["--json", "--timeout", "2"], loopback_endpoints(tcp_port, udp_port))
    print(f"\nmeasured: everything silently dropped, --timeout 2: {seconds:.2f} s wall (incl. start-up)")
    assert code == 1 and seconds < 2 + STARTUP_SLACK
    rows = rows_of(json.loads(out))
    assert rows[("tcp", "api")]["detail"].startswith("no answer within")
    assert "blocked or unverified" in rows[("stun", "turn")]["detail"]
    assert rows[("udp", "media")]["result"] == "warn"
    assert all(r["result"] != "ok" for k, r in rows.items() if k[0] != "proxy" and k[0] != "dns")


@pytest.mark.slow
@pytest.mark.skipif(not has_non_loopback_ipv4(), reason="aioice ignores 127.0.0.1; a srflx needs one non-loopback IPv4")
async def test_all_fakes_ok_exit_0(certs: Certs, tmp_path: Path) -> None:
    """TLS+WS fake signed by the test CA, STUN responder: every check ok (proxy warns), exit 0."""
    async with ws_server(server_context(certs.leaf, certs.leaf_key)) as tcp_port, stun_responder() as udp_port:
        endpoints = loopback_endpoints(tcp_port, udp_port, ca_bundle=str(certs.ca))
        code, out, err, seconds = await run_cli(["--json"], endpoints, HTTPS_PROXY="http://u:pw@127.0.0.1:1")
    print(f"\nmeasured: all loopback fakes answering: {seconds:.2f} s wall (incl. start-up)")
    assert code == 0, err
    doc = json.loads(out)
    rows = rows_of(doc)
    assert rows[("proxy", "proxy")]["result"] == "warn" and "pw" not in rows[("proxy", "proxy")]["detail"]
    bad = [r for k, r in rows.items() if k != ("proxy", "proxy") and r["result"] != "ok"]
    assert bad == []
    assert rows[("websocket", "signaling")]["detail"].startswith("server refused the anonymous upgrade with HTTP 401")
    assert rows[("ice", "ice")]["data"]["transport"] == "udp"
    assert doc["verdict"]["transport_words"] == "direct UDP works" and doc["streaming_should_work"] is True


@pytest.mark.slow
async def test_self_signed_closed_and_refused_udp(certs: Certs) -> None:
    """Self-signed TLS is reported as interception with the turn fix; a closed media port is refused."""
    tls = server_context(certs.selfsigned, certs.selfsigned_key)
    async with ws_server(tls) as tcp_port, stun_responder() as udp_port:
        endpoints = loopback_endpoints(
            tcp_port, udp_port, media_udp=closed_port(socket.SOCK_DGRAM), ca_bundle=str(certs.ca)
        )
        endpoints["platform"]["port"] = closed_port()
        code, out, _err, _s = await run_cli(["--json", "--timeout", "5"], endpoints)
    rows = rows_of(json.loads(out))
    assert code == 1
    turn = rows[("tls", "turn")]
    assert (
        turn["result"] == "fail"
        and "TLS inspection likely" in turn["detail"]
        and "Corp Inspection Proxy" in turn["detail"]
    )
    assert turn["fix"] == "exclude 127.0.0.1 from TLS inspection" and "breaks the connection" in turn["detail"]
    assert rows[("tcp", "platform")]["detail"].startswith("refused")
    assert rows[("udp", "media")]["detail"].startswith("ICMP port unreachable")
    assert rows[("stun", "turn")]["result"] == "ok"


@pytest.mark.slow
async def test_auth_variant(tmp_path: Path) -> None:
    """--auth opens the WebSocket with the key: accepted for a good key, rejected with the key fix for a bad one."""
    async with ws_server() as tcp_port, stun_responder() as udp_port:
        ws_url = f"ws://127.0.0.1:{tcp_port}/v1/stream?model=lucy-2.1"
        endpoints = loopback_endpoints(tcp_port, udp_port)
        endpoints["signaling"]["ws_url"] = ws_url
        (_c, good, _e, _s), (_c, bad, err, _s) = await asyncio.gather(  # two processes at once
            run_cli(["--json", "--auth", "--timeout", "4"], endpoints, DECART_API_KEY="good-key"),
            run_cli(["--json", "--auth", "--timeout", "4"], endpoints, DECART_API_KEY="bad"),
        )
    ok_row = rows_of(json.loads(good))[("websocket-auth", "signaling")]
    assert ok_row["result"] == "ok" and "good-key" not in good
    bad_row = rows_of(json.loads(bad))[("websocket-auth", "signaling")]
    assert bad_row["result"] == "fail" and "Invalid API key" in bad_row["detail"] and "API key" in bad_row["fix"]


def test_global_deadline_marks_stragglers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that overruns its own deadline is cut at --timeout and reported 'timed out'."""

    async def stubborn(host: str, port: int) -> list[str]:
        # Ignores cancellation for 1.5 s: a resolver stuck in C code behaves like this.
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.5
        while loop.time() < end:
            try:
                await asyncio.sleep(end - loop.time())
            except asyncio.CancelledError:
                pass
        raise socket.gaierror(socket.EAI_NONAME, "late")

    plan = netcheck.load_plan(endpoints=json.dumps({**BLOCKED, "hosts": {}}), timeout=0.6, resolver=stubborn)

    async def timed() -> tuple[list[CheckResult], float]:
        start = time.perf_counter()
        return await netcheck.run_checks(plan), time.perf_counter() - start

    rows, seconds = asyncio.run(timed())
    print(f"\nmeasured: stubborn resolver, --timeout 0.6: run_checks returned after {seconds:.2f} s")
    assert seconds < 1.2  # the report does not wait for the straggler (asyncio.run's teardown does)
    dns = [r for r in rows if r.check == "dns"]
    assert dns and all(r.result is Result.FAIL and "timed out" in r.detail for r in dns)


@pytest.mark.parametrize(
    ("args", "endpoints", "message"),
    [
        (["--timeout", "0"], None, "--timeout must be positive"),
        ([], "{not json", "not valid JSON"),
        ([], "[1]", "must be a JSON object"),
        ([], '{"api": {"hostname": "x"}}', "unknown key"),
        ([], '{"api": {"port": 0}}', "port number"),
        ([], '{"api": 3}', "must be an object"),
        ([], '{"nope": {}}', "unknown endpoints key"),
        ([], '{"hosts": {"a": "1.2.3.4"}}', "lists of addresses"),
        ([], "/nonexistent/endpoints.json", "cannot read endpoints file"),
        (["--ca-bundle", "/nonexistent.pem"], "{}", "cannot load CA bundle"),
        (["--auth"], "{}", "--auth needs a credential"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str],
    endpoints: str | None,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bad options or override exit 2 with one line naming the bad value, before any probe runs."""
    if endpoints is not None:
        monkeypatch.setenv("DECART_NETCHECK_ENDPOINTS", endpoints)
    with pytest.raises(SystemExit) as exit_info:
        main(["netcheck", *args])
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and message in captured.err and captured.out == ""


def test_default_and_staging_targets() -> None:
    """Defaults are the seed's hosts and ports; --staging swaps api/signaling/turn to stage-decart.com."""
    t = netcheck.DEFAULT_TARGETS
    assert [(x.host, x.port, x.udp_port) for x in t.values()] == [
        ("api.decart.ai", 443, None),
        ("api3.decart.ai", 443, None),
        ("platform.decart.ai", 443, None),
        ("turn.decart.ai", 443, 3478),
        ("lk.decart.ai", 443, 7882),
        ("stun.l.google.com", None, 19302),
    ]
    assert t["signaling"].ws_url == "wss://api3.decart.ai/v1/stream?model=lucy-2.1"
    plan = netcheck.load_plan(staging=True)
    assert plan.expect_public and plan.targets["api"].host == "api.stage-decart.com"
    assert plan.targets["signaling"].ws_url == "wss://api.stage-decart.com/v1/stream?model=lucy-2.1"
    assert plan.targets["turn"].host == "turn.stage-decart.com"


def test_override_file_and_ws_url_derivation(tmp_path: Path) -> None:
    """The override may be a file; a moved signaling host gets a matching ws_url; fakes skip the sink-hole test."""
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"signaling": {"host": "127.0.0.1", "port": 8443, "server_name": "localhost"}}))
    plan = netcheck.load_plan(endpoints=str(path))
    sig = plan.targets["signaling"]
    assert (sig.ws_url, sig.sni, plan.expect_public) == (
        "wss://127.0.0.1:8443/v1/stream?model=lucy-2.1",
        "localhost",
        False,
    )


def test_human_table_rendering() -> None:
    """The Rich table shows every column and the verdict line lists the fixes to request."""
    from rich.console import Console

    from decart_cli.core.netverdict import Observation, judge_stun, judge_tcp

    rows: list[CheckResult] = [
        judge_tcp("api", "api.decart.ai", 443, Observation("connected", 20.0, data={"address": "1.2.3.4"})),
        judge_stun("media", "lk.decart.ai", 7882, Observation("no_answer", 3000.0)),
    ]
    console = Console(width=160, color_system=None, record=True, file=io.StringIO())
    console.print(build_table(rows))
    text = console.export_text()
    for expected in ("Check", "Fix to request", "api.decart.ai:443", "allow outbound UDP 7882 to any address", "warn"):
        assert expected in text
    line = verdict_line(verdict(rows))
    assert line.startswith("verdict: streaming should work") and "ask IT for: allow outbound UDP 7882" in line


def test_piped_output_is_tab_separated(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a TTY the report is tab-separated lines plus the verdict line (easy to grep)."""
    monkeypatch.setenv("DECART_NETCHECK_ENDPOINTS", json.dumps(BLOCKED))
    with pytest.raises(SystemExit) as exit_info:
        main(["netcheck", "--timeout", "5"])
    out = capsys.readouterr().out.splitlines()
    assert exit_info.value.code == 1
    assert out[0] == "check\ttarget\tresult\tdetail\tfix to request"
    assert out[1].startswith("proxy\tenvironment\tok") and out[-1].startswith("verdict: streaming is blocked")
