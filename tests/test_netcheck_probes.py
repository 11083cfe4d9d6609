"""transport.probes / ice_probe against loopback fakes; no packet leaves this machine.

The fakes (also used by test_netcheck_cli.py): a UDP STUN responder, a silent UDP socket, TLS
servers with a test-CA certificate and with a self-signed one, a closed port, a port whose accept
backlog is full (SYNs are dropped: a connect times out), WebSocket servers, raw HTTP answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from decart_cli.core import stun
from decart_cli.core.netverdict import Result, judge_tls, judge_ws
from decart_cli.transport import probes
from decart_cli.transport.ice_probe import count_candidates, probe_ice

# -- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    """PEM paths: a test CA, a leaf it signed for 127.0.0.1/localhost, and a self-signed leaf."""

    ca: Path
    leaf: Path
    leaf_key: Path
    selfsigned: Path
    selfsigned_key: Path


def _write_pair(directory: Path, stem: str, cert: object, key: object) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))  # type: ignore[attr-defined]
    key_path.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def make_certs(directory: Path) -> Certs:
    """Generate the certificates with ``cryptography`` (an aiortc dependency); EC keys are fast."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, cn)]
        )

    def build(
        subject: x509.Name,
        issuer: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build(name("Netcheck Test Root"), name("Netcheck Test Root"), ca_key, ca_key, True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = build(name("localhost"), ca_cert.subject, leaf_key, ca_key, False)
    self_key = ec.generate_private_key(ec.SECP256R1())
    selfsigned = build(name("Corp Inspection Proxy"), name("Corp Inspection Proxy"), self_key, self_key, False)
    ca_path, _ = _write_pair(directory, "ca", ca_cert, ca_key)
    leaf_path, leaf_key_path = _write_pair(directory, "leaf", leaf, leaf_key)
    ss_path, ss_key_path = _write_pair(directory, "selfsigned", selfsigned, self_key)
    return Certs(ca_path, leaf_path, leaf_key_path, ss_path, ss_key_path)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Certificates shared by the module."""
    return make_certs(tmp_path_factory.mktemp("certs"))


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context for a fake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def client_context(ca: Path) -> ssl.SSLContext:
    """The "public roots" of a test: only the test CA."""
    return ssl.create_default_context(cafile=str(ca))


# -- fakes ---------------------------------------------------------------------------------------


class _Responder(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            tid = stun.parse_binding_request(data)
        except stun.StunError:
            return
        self.transport.sendto(stun.encode_binding_success(tid, addr), addr)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def stun_responder() -> AsyncIterator[int]:
    """A UDP STUN server on 127.0.0.1 answering every Binding request; yields its port."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(_Responder, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@contextlib.contextmanager
def silent_udp() -> Iterator[int]:
    """A bound UDP socket that never answers; yields its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago (nothing listens: TCP RST / ICMP port unreachable)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def blackhole_tcp() -> Iterator[int]:
    """A listener with a full accept backlog: the kernel drops further SYNs, so connects time out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


@contextlib.asynccontextmanager
async def raw_server(answer: bytes | None, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A TCP (optionally TLS) server that reads a request head then writes ``answer`` (None: reset)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # CancelledError too: a handler still waiting when the test ends is cancelled by the loop,
        # and asyncio 3.11's stream callback would log that as an unhandled error.
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            await reader.readuntil(b"\r\n\r\n")
            if answer is None:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                writer.transport.abort()
                return
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@contextlib.asynccontextmanager
async def ws_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A WebSocket server like the signaling host: 401 without api_key, an error message for 'bad'."""
    from websockets.asyncio.server import serve
    from websockets.http11 import Response

    def process_request(connection: object, request: object) -> Response | None:
        path = str(getattr(request, "path", ""))
        if "api_key=" not in path:
            return connection.respond(401, "missing api_key\n")  # type: ignore[attr-defined,no-any-return]
        return None

    async def handler(ws: object) -> None:
        path = str(ws.request.path)  # type: ignore[attr-defined]
        if "api_key=bad" in path:
            await ws.send(json.dumps({"type": "error", "error": "Invalid API key"}))  # type: ignore[attr-defined]
            await ws.close(1008, "auth")  # type: ignore[attr-defined]
            return
        with contextlib.suppress(Exception):
            await ws.wait_closed()  # type: ignore[attr-defined]

    async with serve(handler, "127.0.0.1", 0, ssl=tls, process_request=process_request) as server:
        yield next(iter(server.sockets)).getsockname()[1]


def has_non_loopback_ipv4() -> bool:
    """aioice skips 127.0.0.1, so a srflx candidate needs another IPv4 interface (a CI container has one)."""
    from aioice.ice import get_host_addresses

    return any(":" not in a for a in get_host_addresses(use_ipv4=True, use_ipv6=False))


# -- DNS -----------------------------------------------------------------------------------------


async def test_dns_unresolvable_name_via_static_map() -> None:
    """A name the override maps to [] is NXDOMAIN, answered locally without any query."""
    resolver = probes.static_resolver({"nowhere.invalid": []})
    obs = await probes.probe_dns("nowhere.invalid", 443, resolver, 1.0)
    assert obs.status == "nxdomain"


async def test_dns_ip_literal_needs_no_resolver() -> None:
    """IP literals resolve to themselves (getaddrinfo is never called)."""
    obs = await probes.probe_dns("127.0.0.1", 443, probes.system_resolve, 1.0)
    assert (obs.status, obs.data["addresses"]) == ("resolved", ["127.0.0.1"])


async def test_dns_hosts_file_name() -> None:
    """'localhost' is answered from /etc/hosts by the daemon-thread resolver (nsswitch: files first)."""
    obs = await probes.probe_dns("localhost", 443, probes.system_resolve, 2.0)
    assert obs.status == "resolved" and any(a in ("127.0.0.1", "::1") for a in obs.data["addresses"])


async def test_dns_timeout_and_errors() -> None:
    """A resolver that hangs is cut at the deadline; gaierror and OSError become observations."""

    async def hang(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return []

    async def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    async def empty(host: str, port: int) -> list[str]:
        return []

    assert (await probes.probe_dns("x.invalid", 443, hang, 0.1)).status == "timeout"
    obs = await probes.probe_dns("x.invalid", 443, broken, 1.0)
    assert (obs.status, obs.error) == ("error", "Temporary failure in name resolution")
    assert (await probes.probe_dns("x.invalid", 443, empty, 1.0)).status == "nxdomain"


# -- TCP / TLS -----------------------------------------------------------------------------------


async def test_tcp_refused() -> None:
    """A closed port is 'refused' (active block) and TLS is not tried."""
    tcp, tls = await probes.probe_tcp_tls(
        "h",
        closed_port(),
        ["127.0.0.1"],
        server_name="h",
        ssl_context=ssl.create_default_context(),
        tcp_deadline=1.0,
        tls_deadline=1.0,
    )
    assert (tcp.status, tls.status) == ("refused", "skipped")


async def test_tcp_timeout() -> None:
    """A port that never answers is 'timeout' (silent drop) after the TCP deadline."""
    with blackhole_tcp() as port:
        tcp, _ = await probes.probe_tcp_tls(
            "h",
            port,
            ["127.0.0.1"],
            server_name="h",
            ssl_context=ssl.create_default_context(),
            tcp_deadline=0.3,
            tls_deadline=0.3,
        )
    assert tcp.status == "timeout" and 250 <= (tcp.elapsed_ms or 0) < 2000


async def test_tls_verified(certs: Certs) -> None:
    """A certificate chaining to the trusted roots verifies; version and issuer are recorded."""
    async with raw_server(b"", tls=server_context(certs.leaf, certs.leaf_key)) as port:
        tcp, tls = await probes.probe_tcp_tls(
            "127.0.0.1",
            port,
            ["127.0.0.1"],
            server_name="127.0.0.1",
            ssl_context=client_context(certs.ca),
            tcp_deadline=2.0,
            tls_deadline=2.0,
        )
    assert (tcp.status, tls.status) == ("connected", "verified")
    assert tls.data["version"] in ("TLSv1.2", "TLSv1.3") and "Netcheck Test Root" in tls.data["issuer"]
    assert judge_tls("api", "127.0.0.1", port, tls).result is Result.OK


async def test_tls_self_signed_is_interception(certs: Certs) -> None:
    """A self-signed certificate does not verify: issuer named, 'TLS inspection likely', turn fix."""
    async with raw_server(b"", tls=server_context(certs.selfsigned, certs.selfsigned_key)) as port:
        _tcp, tls = await probes.probe_tcp_tls(
            "127.0.0.1",
            port,
            ["127.0.0.1"],
            server_name="127.0.0.1",
            ssl_context=client_context(certs.ca),
            tcp_deadline=2.0,
            tls_deadline=2.0,
        )
    assert tls.status == "unverified" and "Corp Inspection Proxy" in tls.data["issuer"]
    row = judge_tls("turn", "turn.decart.ai", 443, tls)
    assert row.result is Result.FAIL and "TLS inspection likely" in row.detail
    assert row.fix == "exclude turn.decart.ai from TLS inspection"


async def test_tls_local_root_is_inspection(certs: Certs) -> None:
    """A chain the public roots reject but the local store trusts is a locally installed root: inspection."""
    public = ssl.create_default_context()  # certifi/OS roots: the test CA is not among them
    async with raw_server(b"", tls=server_context(certs.leaf, certs.leaf_key)) as port:
        _tcp, tls = await probes.probe_tcp_tls(
            "127.0.0.1",
            port,
            ["127.0.0.1"],
            server_name="127.0.0.1",
            ssl_context=public,
            tcp_deadline=2.0,
            tls_deadline=2.0,
            local_context=client_context(certs.ca),
        )
    assert tls.status == "unverified" and tls.data["local_root"] is True
    row = judge_tls("api", "api.decart.ai", 443, tls)
    assert row.result is Result.FAIL and "locally installed root" in row.detail
    assert row.fix == "exclude api.decart.ai from TLS inspection"


async def test_tls_handshake_cut_and_timeout() -> None:
    """A plain-TCP server that closes is a 'reset'; one that stays silent is a TLS 'timeout'."""
    async with raw_server(b"HTTP/1.1 400 Bad\r\n\r\n") as port:
        # The server waits for a request head that a TLS ClientHello never completes: silence.
        _tcp, tls = await probes.probe_tcp_tls(
            "h",
            port,
            ["127.0.0.1"],
            server_name="h",
            ssl_context=ssl.create_default_context(),
            tcp_deadline=1.0,
            tls_deadline=0.3,
        )
    assert tls.status == "timeout"

    async def close_now(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close_now, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        _tcp, tls = await probes.probe_tcp_tls(
            "h",
            port,
            ["127.0.0.1"],
            server_name="h",
            ssl_context=ssl.create_default_context(),
            tcp_deadline=1.0,
            tls_deadline=1.0,
        )
    assert tls.status in ("reset", "error")


# -- WebSocket -----------------------------------------------------------------------------------


async def test_ws_refused_with_status_is_reachable(certs: Certs) -> None:
    """Over TLS, the signaling fake refuses an anonymous upgrade with 401: judged reachable."""
    async with ws_server(server_context(certs.leaf, certs.leaf_key)) as port:
        obs = await probes.probe_ws(
            f"wss://127.0.0.1:{port}/v1/stream?model=lucy-2.1",
            ["127.0.0.1"],
            ssl_context=client_context(certs.ca),
            deadline=2.0,
        )
    assert (obs.status, obs.data["status"]) == ("http", 401)
    assert judge_ws("signaling", "127.0.0.1", obs).result is Result.OK


async def test_ws_upgrade_and_auth() -> None:
    """A key the fake accepts stays open ('accepted'); a bad one gets an error message ('rejected')."""
    async with ws_server() as port:
        url = f"ws://127.0.0.1:{port}/v1/stream?model=lucy-2.1"
        ctx = ssl.create_default_context()
        plain = await probes.probe_ws(url + "&api_key=good", ["127.0.0.1"], ssl_context=ctx, deadline=2.0)
        good = await probes.probe_ws(url + "&api_key=good", ["127.0.0.1"], ssl_context=ctx, deadline=2.0, auth_wait=0.3)
        bad = await probes.probe_ws(url + "&api_key=bad", ["127.0.0.1"], ssl_context=ctx, deadline=2.0, auth_wait=2.0)
    assert plain.status == "upgraded"
    assert good.status == "accepted"
    assert bad.status == "rejected" and bad.data["message"] == "Invalid API key"
    assert "good" not in good.data["url"] and "api_key=***" in good.data["url"]


async def test_ws_proxy_page_and_reset_are_blocked() -> None:
    """An HTML 200 page with Via is a proxy (blocked); a reset mid-upgrade is blocked too."""
    page = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nVia: 1.1 squid\r\nContent-Length: 6\r\n\r\nnope!\n"
    ctx = ssl.create_default_context()
    async with raw_server(page) as port:
        obs = await probes.probe_ws(f"ws://127.0.0.1:{port}/v1/stream", ["127.0.0.1"], ssl_context=ctx, deadline=2.0)
    row = judge_ws("signaling", "127.0.0.1", obs)
    assert row.result is Result.FAIL and "via: 1.1 squid" in row.detail
    async with raw_server(None) as port:
        obs = await probes.probe_ws(f"ws://127.0.0.1:{port}/v1/stream", ["127.0.0.1"], ssl_context=ctx, deadline=2.0)
    assert obs.status == "reset"
    obs = await probes.probe_ws(f"ws://127.0.0.1:{closed_port()}/x", ["127.0.0.1"], ssl_context=ctx, deadline=2.0)
    assert obs.status == "refused"
    async with raw_server(b"garbage\r\n\r\n") as port:
        obs = await probes.probe_ws(f"ws://127.0.0.1:{port}/x", ["127.0.0.1"], ssl_context=ctx, deadline=2.0)
    assert obs.status == "error" and "not an HTTP answer" in obs.error
    assert judge_ws("signaling", "127.0.0.1", obs).result is Result.FAIL


# -- UDP -----------------------------------------------------------------------------------------


async def test_stun_answer() -> None:
    """The loopback responder answers: reflexive address and RTT recorded."""
    async with stun_responder() as port:
        obs = await probes.probe_stun("127.0.0.1", port, ["127.0.0.1"], 2.0)
    assert obs.status == "answered" and str(obs.data["mapped"]).startswith("127.0.0.1:")
    assert obs.data["attempts"] == 1 and obs.data["rtt_ms"] < 1000


async def test_stun_silence_is_no_answer() -> None:
    """A socket that never answers is 'no_answer' after retransmissions up to the deadline."""
    with silent_udp() as port:
        obs = await probes.probe_stun("127.0.0.1", port, ["127.0.0.1"], 0.8)
    assert obs.status == "no_answer" and obs.data["attempts"] == 2


async def test_stun_closed_port_is_refused() -> None:
    """ICMP port unreachable on the connected socket is reported as 'refused'."""
    obs = await probes.probe_stun("127.0.0.1", closed_port(socket.SOCK_DGRAM), ["127.0.0.1"], 2.0)
    assert obs.status == "refused"


# -- ICE -----------------------------------------------------------------------------------------


def test_count_candidates() -> None:
    """Candidate lines are counted by their typ."""
    sdp = "v=0\r\na=candidate:1 1 udp 1 10.0.0.2 5000 typ host\r\na=candidate:2 1 udp 1 1.2.3.4 6000 typ srflx raddr 10.0.0.2 rport 5000\r\n"
    assert count_candidates(sdp) == {"host": 1, "srflx": 1, "relay": 0}


async def test_ice_without_stun_server_is_host_only() -> None:
    """No ICE server at all: only host candidates (no packet sent), so the verdict is 'relay needed'."""
    from decart_cli.core.netverdict import judge_ice

    obs = await probe_ice([], 5.0)
    assert obs.status == "gathered" and "srflx" not in obs.data
    row = judge_ice("none", obs)
    assert row.data["transport"] in ("relay", "failed")  # "failed" only on a host without interfaces


@pytest.mark.skipif(not has_non_loopback_ipv4(), reason="aioice ignores 127.0.0.1; needs one non-loopback IPv4")
async def test_ice_with_loopback_stun_gives_srflx() -> None:
    """aioice queries a 127.0.0.1 STUN server from the host candidate: srflx → 'direct UDP works'."""
    from decart_cli.core.netverdict import judge_ice

    async with stun_responder() as port:
        obs = await probe_ice([f"stun:127.0.0.1:{port}"], 5.0)
    assert obs.data["srflx"] >= 1
    row = judge_ice("stun", obs)
    assert row.data["transport"] == "udp" and row.detail.startswith("direct UDP works")
